import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import perceptron
from dl_jax.errors import ConfigError

# Three examples, two features each; augmented with x0 = 1 they are (1,1,2), (1,2,-1), (1,-1,-1).
X_HAND = jnp.array([[1.0, 2.0], [2.0, -1.0], [-1.0, -1.0]])


def test_sign_updates_match_hand_computation():
    # eta = 0.5, labels -1, +1, +1, w = (w0, w1, w2) from 0; an update is 0.5 * (y - y_hat) * x:
    # 1: z = 0 -> y_hat = +1 (z >= 0), y = -1: w += 0.5 * -2 * (1,1,2)  -> w = (-1, -1, -2)
    # 2: z = -1 - 2 + 2 = -1 -> y_hat = -1, y = +1: w += 1 * (1,2,-1)  -> w = (0, 1, -3)
    # 3: z = 0 - 1 + 3 = 2 -> y_hat = +1 = y: no update               -> w = (0, 1, -3)
    result = perceptron.train(X_HAND, jnp.array([-1, 1, 1]), epochs=1, learning_rate=0.5)
    np.testing.assert_array_equal(result.w_A, [0.0, 1.0, -3.0])
    np.testing.assert_array_equal(result.w_EA, [[0.0, 1.0, -3.0]])
    np.testing.assert_array_equal(result.mistakes_E, [2])


def test_step_updates_match_hand_computation():
    # eta = 0.5, labels 0, 1, 1; the step output is 1 only where z > 0:
    # 1: z = 0 -> y_hat = 0 = y: no update                          -> w = (0, 0, 0)
    # 2: z = 0 -> y_hat = 0, y = 1: w += 0.5 * 1 * (1,2,-1)          -> w = (0.5, 1, -0.5)
    # 3: z = 0.5 - 1 + 0.5 = 0 -> y_hat = 0, y = 1: w += 0.5 * (1,-1,-1) -> w = (1, 0.5, -1)
    result = perceptron.train(X_HAND, jnp.array([0, 1, 1]), 1, learning_rate=0.5, output="step")
    np.testing.assert_array_equal(result.w_A, [1.0, 0.5, -1.0])
    np.testing.assert_array_equal(result.mistakes_E, [2])


def test_augment_puts_the_bias_input_first():
    np.testing.assert_array_equal(perceptron.augment(X_HAND)[:, 0], [1, 1, 1])
    np.testing.assert_array_equal(perceptron.augment(X_HAND)[:, 1:], X_HAND)


def test_epochs_continue_from_w_init():
    x_NF, y_N, _ = perceptron.separable(50, 2, margin=0.05, seed=3)
    whole = perceptron.train(x_NF, y_N, epochs=3)
    first = perceptron.train(x_NF, y_N, epochs=2)
    rest = perceptron.train(x_NF, y_N, epochs=1, w_init=first.w_A)
    np.testing.assert_array_equal(whole.w_EA, jnp.concatenate([first.w_EA, rest.w_EA]))
    np.testing.assert_array_equal(whole.mistakes_E, [*first.mistakes_E, *rest.mistakes_E])


def test_separable_data_keeps_its_margin():
    x_NF, y_N, w_star_A = perceptron.separable(200, 3, margin=0.1, seed=0)
    assert x_NF.shape == (200, 3) and y_N.shape == (200,)
    assert np.abs(x_NF).max() <= 1.0
    assert set(np.unique(y_N)) == {-1.0, 1.0}
    # ||w_star[1:]|| = 1, so y (w_star . x_aug) is each point's distance to the hyperplane.
    assert jnp.linalg.norm(w_star_A[1:]) == pytest.approx(1.0)
    assert (y_N * (perceptron.augment(x_NF) @ w_star_A)).min() >= 0.1 - 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("learning_rate", [1.0, 0.1])
def test_converges_on_separable_data_within_the_bound(seed, learning_rate):
    x_NF, y_N, w_star_A = perceptron.separable(200, 2, margin=0.05, seed=seed)
    result = perceptron.train(x_NF, y_N, epochs=10, learning_rate=learning_rate)
    mistakes_E = np.asarray(result.mistakes_E)
    assert (mistakes_E == 0).any()
    first_clean = np.argmax(mistakes_E == 0)
    assert (mistakes_E[first_clean:] == 0).all()
    assert mistakes_E.sum() <= perceptron.mistake_bound(x_NF, y_N, w_star_A)
    np.testing.assert_array_equal(perceptron.predict(result.w_A, x_NF), y_N)


def test_mistake_bound_by_hand():
    # x_aug = (1,1,0) and (1,0,1), y = +1, -1; w_star = (0, 1, -1): R = sqrt 2,
    # gamma = min(1, 1) / sqrt 2, so (R / gamma)^2 = 2 / (1/2) = 4.
    x_NF, y_N = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([1.0, -1.0])
    assert perceptron.mistake_bound(x_NF, y_N, jnp.array([0.0, 1.0, -1.0])) == pytest.approx(4)
    assert perceptron.mistake_bound(x_NF, -y_N, jnp.array([0.0, 1.0, -1.0])) == float("inf")


@pytest.mark.parametrize("output", perceptron.OUTPUTS)
def test_never_converges_on_xor(output):
    x_NF, y_N = perceptron.xor()
    if output == "step":
        y_N = (y_N + 1) / 2
    result = perceptron.train(x_NF, y_N, epochs=100, output=output)
    assert (result.mistakes_E >= 1).all()


def test_unknown_output_names_the_valid_ones():
    with pytest.raises(ConfigError, match="'tanh'; valid: sign, step"):
        perceptron.train(X_HAND, jnp.array([-1, 1, 1]), epochs=1, output="tanh")
    with pytest.raises(ConfigError, match="valid: sign, step"):
        perceptron.predict(jnp.zeros(3), X_HAND, output="tanh")
