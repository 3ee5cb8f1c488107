import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_jax import losses, optim
from dl_jax.errors import ConfigError


@pytest.mark.parametrize("f1, expected", [(4, 0.6444), (5, 0.2873), (6, 0.1155), (10, 0.0022)])
def test_slides_cross_entropy_table(f1, expected):
    # The classifier c1 = f1, c2 = f2 + f3 with f2 = 2, f3 = 1.9; the true class is c = 0.
    logits = jnp.array([[f1, 2 + 1.9]])
    loss = losses.softmax_cross_entropy(logits, jnp.array([0]))
    assert loss[0] == pytest.approx(expected, abs=5e-5)


def test_slides_gradient_descent_on_a_bowl():
    # J = theta1^2 + theta2^2 from (1, 3) with alpha = 0.1, through the library's SGD.
    theta = jnp.array([1.0, 3.0])
    tx = optim.make_optimizer("sgd", 0.1)
    state = tx.init(theta)
    path = []
    for _ in range(3):
        updates, state = tx.update(jax.grad(lambda t: jnp.sum(t**2))(theta), state)
        theta = optax.apply_updates(theta, updates)
        path.append(theta)
    np.testing.assert_allclose(path, [[0.8, 2.4], [0.64, 1.92], [0.512, 1.536]], rtol=1e-6)


def test_slides_one_step_on_x_squared_plus_3():
    loss = lambda x: x**2 + 3  # noqa: E731
    x = 2.0 - 0.01 * jax.grad(loss)(2.0)
    assert loss(2.0) == 7
    assert x == pytest.approx(1.96)
    assert loss(x) == pytest.approx(6.8416)


def test_softmax_squared_error_is_the_slides_cost():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = jnp.array([1, 2])
    a3 = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.eye(3)[labels]
    np.testing.assert_allclose(
        losses.softmax_squared_error(logits, labels), ((a3 - y) ** 2).sum(-1), rtol=1e-6
    )


def test_binary_cross_entropy():
    logits = jnp.array([[2.0, -1.0], [0.5, 0.0]])
    labels = jnp.array([0, 1])
    p, y = 1 / (1 + np.exp(-np.asarray(logits))), np.eye(2)[labels]
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
    np.testing.assert_allclose(losses.binary_cross_entropy(logits, labels), expected, rtol=1e-6)
    # A single output: the label is the target. -log(sigmoid(2)) and -log(1 - sigmoid(2)).
    one = losses.binary_cross_entropy(jnp.array([[2.0], [2.0]]), jnp.array([1, 0]))
    np.testing.assert_allclose(one, [np.log1p(np.exp(-2)), np.log1p(np.exp(2))], rtol=1e-6)


def test_accuracy():
    logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    np.testing.assert_array_equal(losses.accuracy(logits, jnp.array([1, 1, 1])), [1, 0, 1])


def test_unknown_loss():
    with pytest.raises(ConfigError, match="unknown loss 'mse'; valid: binary_cross_entropy"):
        losses.get_loss("mse")
