import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax.activations import ACTIVATIONS, get_activation
from dl_jax.errors import ConfigError


def test_slides_neuron_output():
    # sigma(w.x + b) with w=[0.2,0.3,0.9], b=0.5, x=[0.5,0.6,0.1]: z = 0.87, output .70
    w, b, x = jnp.array([0.2, 0.3, 0.9]), 0.5, jnp.array([0.5, 0.6, 0.1])
    z = w @ x + b
    assert z == pytest.approx(0.87)
    assert get_activation("sigmoid")(z) == pytest.approx(0.70, abs=0.005)


def test_slides_logistic_probability():
    # P(y=1|x) for X=[1, 1.4, 2.5] (the 1 carries the bias) and w=[0.4, 0.3, 0.5]: 0.888
    z = jnp.array([1, 1.4, 2.5]) @ jnp.array([0.4, 0.3, 0.5])
    assert get_activation("sigmoid")(z) == pytest.approx(0.888, abs=5e-4)


def test_slides_softmax():
    out = get_activation("softmax")(jnp.array([1.0, 2, 3, 4, 1, 2, 3]))
    np.testing.assert_allclose(out, [0.024, 0.064, 0.175, 0.475, 0.024, 0.064, 0.175], atol=5e-4)
    assert out.sum() == pytest.approx(1.0)


Z = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sigmoid", 1 / (1 + np.exp(-Z))),
        ("tanh", (np.exp(Z) - np.exp(-Z)) / (np.exp(Z) + np.exp(-Z))),
        ("relu", [0, 0, 0, 0.5, 2]),
        ("leaky_relu", [-0.02, -0.005, 0, 0.5, 2]),
        ("softplus", np.log1p(np.exp(Z))),
        ("linear", Z),
        ("step", [0, 0, 1, 1, 1]),
        ("sign", [-1, -1, 1, 1, 1]),
    ],
)
def test_activation_values(name, expected):
    np.testing.assert_allclose(get_activation(name)(Z), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name, derivative",
    [  # the slides' derivatives, written in terms of the output f(z)
        ("sigmoid", lambda z, f: f * (1 - f)),
        ("tanh", lambda z, f: 1 - f**2),
        ("relu", lambda z, f: (z > 0).astype(z.dtype)),
    ],
)
def test_slide_derivatives(name, derivative):
    f = get_activation(name)
    z = jnp.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(z), derivative(z, f(z)), rtol=1e-6)


def test_table_names():
    assert set(ACTIVATIONS) == {
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "softplus",
        "linear",
        "softmax",
        "step",
        "sign",
    }


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown activation 'swish'; valid: .*relu.*tanh"):
        get_activation("swish")


@pytest.mark.parametrize(
    "name, derivative",
    [  # the slides' closed forms; softplus' is the sigmoid
        ("sigmoid", lambda z, f: f * (1 - f)),
        ("tanh", lambda z, f: 1 - f**2),
        ("relu", lambda z, f: (z > 0).astype(z.dtype)),
        ("softplus", lambda z, f: jax.nn.sigmoid(z)),
    ],
)
def test_grad_equals_closed_form_on_a_dense_grid(name, derivative):
    f = get_activation(name)
    z = jnp.linspace(-6.0, 6.0, 240)  # an even count: z = 0, where relu has no derivative, is out
    assert not (z == 0).any()
    # atol: in the tails of tanh, 1 - f**2 cancels to a few float32 ulps of 1 (about 6e-8)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(z), derivative(z, f(z)), rtol=1e-6, atol=1e-7)
