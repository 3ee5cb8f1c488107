import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import recipes
from dl_jax.errors import ConfigError
from dl_jax.models import MLP


def slide_net(seed=0):
    """The slides' 784-128-64-10 net without biases, initialized the slides' way."""
    model = MLP((128, 64, 10), "tanh", use_bias=False, kernel_init=recipes.slide_init("tanh"))
    return model, model.init(jax.random.key(seed), jnp.zeros((1, 784)))["params"]


def one_example(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, 784), dtype=np.uint8), np.array([3])


def test_seed_exact_gradient_is_the_slides_update():
    # The slides' backward pass, written here from its formulas, in float64 numpy:
    #   error3 = 2 (z3 - y) / 10 * s (1 - s), s = softmax(z3)    (z3, not a3; the diagonal only)
    #   change_W3 = outer(error3, a2); error2 = W3^T error3 * tanh'(z2); and so on down.
    model, params = slide_net()
    image, label = one_example()
    grads = jax.grad(
        lambda p: recipes.slide_exact_cost(
            model.apply({"params": p}, recipes.slide_inputs(image)), label
        ).sum()
    )(params)

    w = [np.asarray(params[f"Dense_{i}"]["kernel"], np.float64).T for i in range(3)]  # [out, in]
    a0 = image[0] / 255.0 * 0.99 + 0.01
    y = np.full(10, 0.01)
    y[label[0]] = 0.99
    z1 = w[0] @ a0
    a1 = np.tanh(z1)
    z2 = w[1] @ a1
    a2 = np.tanh(z2)
    z3 = w[2] @ a2
    s = np.exp(z3 - z3.max()) / np.exp(z3 - z3.max()).sum()
    error3 = 2 * (z3 - y) / 10 * s * (1 - s)
    error2 = w[2].T @ error3 * (1 - a2**2)
    error1 = w[1].T @ error2 * (1 - a1**2)
    changes = [np.outer(error1, a0), np.outer(error2, a1), np.outer(error3, a2)]
    for i, change in enumerate(changes):
        np.testing.assert_allclose(grads[f"Dense_{i}"]["kernel"].T, change, rtol=2e-4, atol=1e-9)


def test_seed_gradient_is_jax_grad_of_the_squared_error():
    model, params = slide_net(1)
    image, label = one_example(1)

    def recipe_loss(p):  # what the `seed` recipe differentiates
        recipe = recipes.get_recipe("seed")
        return recipe.loss(model.apply({"params": p}, recipe.preprocess(image)), label).mean()

    def squared_error(p):  # the slides' cost, written out: sum_j (softmax(z3)_j - y_j)^2
        x = jnp.asarray(image, jnp.float32) / 255.0 * 0.99 + 0.01
        y = jnp.full(10, 0.01).at[label[0]].set(0.99)
        return jnp.sum((jax.nn.softmax(model.apply({"params": p}, x)[0]) - y) ** 2)

    # float32: the targets 0.98 * one_hot + 0.01 and a literal 0.99 round differently.
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-8),
        jax.grad(recipe_loss)(params),
        jax.grad(squared_error)(params),
    )
    exact = jax.grad(
        lambda p: recipes.slide_exact_cost(
            model.apply({"params": p}, recipes.slide_inputs(image)), label
        ).sum()
    )(params)
    true = jax.grad(recipe_loss)(params)
    assert not np.allclose(exact["Dense_2"]["kernel"], true["Dense_2"]["kernel"])  # not the same


def test_slide_inputs_targets_and_init():
    x = recipes.slide_inputs(jnp.array([0, 255], jnp.uint8))
    np.testing.assert_allclose(x, [0.01, 1.0], rtol=1e-6)
    np.testing.assert_allclose(recipes.slide_targets(jnp.array([1]), 3), [[0.01, 0.99, 0.01]])
    _, params = slide_net()
    # N(0, 1) * sqrt(1 / fan_out): the first layer has 128 outputs, so std 1/sqrt(128) = 0.088
    assert np.std(params["Dense_0"]["kernel"]) == pytest.approx(1 / np.sqrt(128), rel=0.02)
    assert np.std(params["Dense_2"]["kernel"]) == pytest.approx(1 / np.sqrt(10), rel=0.1)
    assert "bias" not in params["Dense_0"]


def test_recipe_table():
    assert recipes.get_recipe("seed").batch_size == 1 and not recipes.get_recipe("seed").shuffle
    modern = recipes.get_recipe("modern")
    assert (modern.batch_size, modern.shuffle, modern.use_bias) == (128, True, True)
    with pytest.raises(
        ConfigError, match="unknown recipe 'keras'; valid: modern, seed, seed_exact"
    ):
        recipes.get_recipe("keras")
