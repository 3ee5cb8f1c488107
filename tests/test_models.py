import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import losses, models
from dl_jax.config import ModelConfig
from dl_jax.errors import ConfigError
from dl_jax.models import MLP, build


def count(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def test_slides_linear_classifier():
    # c = f W + b with f = [1, 2]; c1 = 1*3 + 2*4 + 0.5 = 11.5 and c2 = 1*7 + 2*1 + 0.3 = 9.3.
    kernel = jnp.array([[3.0, 7.0], [4.0, 1.0]])  # [in, out]: column j holds class j's weights
    c = nn.Dense(2).apply(
        {"params": {"kernel": kernel, "bias": jnp.array([0.5, 0.3])}}, jnp.array([[1.0, 2.0]])
    )
    np.testing.assert_allclose(c, [[11.5, 9.3]], rtol=1e-6)


def test_slides_network_parameter_count():
    params = MLP((128, 64, 10), "tanh", use_bias=False).init(
        jax.random.key(0), jnp.zeros((1, 28, 28, 1))
    )["params"]
    assert count(params) == 784 * 128 + 128 * 64 + 64 * 10 == 109_184
    with_bias = MLP((128, 64, 10)).init(jax.random.key(0), jnp.zeros((1, 784)))["params"]
    assert count(with_bias) == 109_184 + 128 + 64 + 10 == 109_386


def test_mlp_flattens_and_gives_logits():
    x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
    model = MLP((16, 10), "relu")
    params = model.init(jax.random.key(0), x)
    logits = model.apply(params, x)
    assert logits.shape == (3, 10)
    np.testing.assert_allclose(logits, model.apply(params, x.reshape(3, -1)), rtol=1e-6)


def test_unknown_activation_fails_at_construction():
    with pytest.raises(ConfigError, match="unknown activation 'gelu'"):
        MLP((10,), "gelu")


def test_grad_equals_the_slides_backprop_chain():
    # A tiny 3-4-2 net with sigmoid hidden and output units and the cost C = sum (a - y)^2.
    # The slides' chain rule, layer by layer: delta = f'(z) * dC/da, dC/dW = a_prev (x) delta,
    # dC/db = delta, and dC/da_prev = W delta.
    model = MLP((4, 2), "sigmoid")
    x = jnp.array([[0.5, -0.2, 0.9]])
    y = jnp.array([[0.01, 0.99]])
    params = model.init(jax.random.key(3), x)["params"]

    def cost(params):
        return jnp.sum((jax.nn.sigmoid(model.apply({"params": params}, x)) - y) ** 2)

    grads = jax.grad(cost)(params)

    p = jax.tree.map(np.asarray, params)
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a0 = np.asarray(x[0])
    z1 = a0 @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    a1 = s(z1)
    z2 = a1 @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    a2 = s(z2)
    delta2 = s(z2) * (1 - s(z2)) * 2 * (a2 - np.asarray(y[0]))
    delta1 = (p["Dense_1"]["kernel"] @ delta2) * s(z1) * (1 - s(z1))
    expected = {
        "Dense_0": {"kernel": np.outer(a0, delta1), "bias": delta1},
        "Dense_1": {"kernel": np.outer(a1, delta2), "bias": delta2},
    }
    jax.tree.map(lambda g, e: np.testing.assert_allclose(g, e, rtol=1e-5), grads, expected)


def test_softmax_output_gradient_uses_the_full_jacobian():
    # With a3 = softmax(z3) the output layer's f'(z) is the Jacobian diag(s) - s s^T, not its
    # diagonal: dC/dz3 = J^T 2 (a3 - y).
    z = jnp.array([[0.3, -1.2, 2.0]])
    label = jnp.array([2])
    grad = jax.grad(lambda z: losses.softmax_squared_error(z, label).sum())(z)[0]
    s = np.asarray(jax.nn.softmax(z[0]))
    jacobian = np.diag(s) - np.outer(s, s)
    np.testing.assert_allclose(grad, jacobian.T @ (2 * (s - np.eye(3)[2])), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(name="mlp"),
        dict(name="lenet5", conv_impl="im2col"),
        dict(name="cnn", conv_impl="lax"),
        dict(name="rnn", cell="simple"),
        dict(name="rnn", cell="lstm"),
        dict(name="rnn", cell="slide_gru"),
    ],  # fmt: skip
    ids=lambda kwargs: "-".join(kwargs.values()),
)
def test_every_model_computes_in_bfloat16_with_float32_parameters_and_logits(kwargs):
    model = build(ModelConfig(dtype="bfloat16", **kwargs))
    x = jnp.ones((2, 28, 28, 1))
    variables = model.init(jax.random.key(0), x)
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype("float32")}
    assert model.apply(variables, x).dtype == jnp.float32
    assert "bf16[" in str(jax.make_jaxpr(model.apply)(variables, x))


def test_an_unknown_dtype_is_a_one_line_error():
    with pytest.raises(
        ConfigError, match="--model.dtype='float16' is invalid: expected float32 or bfloat16"
    ):
        ModelConfig(dtype="float16")


@pytest.mark.parametrize(
    "cfg, x",
    [(ModelConfig(features=(16, 10)), np.ones((2, 28, 28, 1), np.float32)),
     (ModelConfig(name="lenet5"), np.ones((2, 28, 28, 1), np.float32)),
     (ModelConfig(name="cnn", conv_features=(4, 8), dense_features=(16, 10), dropout_rate=0.5),
      np.ones((2, 28, 28, 1), np.float32)),
     (ModelConfig(name="rnn", cell="gru", hidden=8), np.ones((2, 28, 28, 1), np.float32))],
    ids=["mlp", "lenet5", "cnn", "rnn"],
)  # fmt: skip
def test_every_model_runs_from_nnx_code_with_its_linen_parameters(cfg, x):
    module = models.build(cfg)
    params = module.init(jax.random.key(1), x)["params"]
    params = jax.tree.map(lambda p: p + 0.01, params)  # not the bridge's own initial values
    bridged = models.to_nnx(module, params, x)
    np.testing.assert_allclose(bridged(x), module.apply({"params": params}, x), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
