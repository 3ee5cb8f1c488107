"""LeNet-5 and the CNN: their sizes, the two conv implementations, dropout, and build by name."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import models
from dl_jax.config import ModelConfig
from dl_jax.errors import ConfigError
from dl_jax.models import CNN, LeNet5
from dl_jax.models.cnn import im2col_conv


def count(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def images(n=4, seed=1):
    return jax.random.uniform(jax.random.key(seed), (n, 28, 28, 1))


def test_lenet5_parameter_count():
    params = LeNet5().init(jax.random.key(0), images())["params"]
    assert (
        count(params)
        == (
            (5 * 5 * 1 + 1) * 6  # C1: 156
            + (5 * 5 * 6 + 1) * 16  # C3: 2,416
            + (5 * 5 * 16 + 1) * 120  # C5: 48,120
            + (120 + 1) * 84  # F6: 10,164
            + (84 + 1) * 10  # output: 850
        )
        == 61_706
    )
    shapes = {name: layer["kernel"].shape for name, layer in params.items()}
    assert shapes == {
        "C1": (5, 5, 1, 6),
        "C3": (5, 5, 6, 16),
        "C5": (5, 5, 16, 120),
        "F6": (120, 84),
        "output": (84, 10),
    }


def test_cnn_parameter_count():
    params = CNN().init(jax.random.key(0), images())["params"]
    assert (
        count(params)
        == (
            (3 * 3 * 1 + 1) * 32  # conv 32: 320
            + (3 * 3 * 32 + 1) * 64  # conv 64: 18,496
            + (7 * 7 * 64 + 1) * 256  # dense 256 on 28 / 2 / 2 = 7: 803,072
            + (256 + 1) * 10  # dense 10: 2,570
        )
        == 824_458
    )


def test_slide_layer_sizes():
    # Seed 001: 10 filters of 5x5 on a 32x32x1 input, stride 1: 28x28x10 with 10 * (25 + 1)
    # parameters; 2x2 pooling halves it to 14x14x10; a dense 200 on those 1,960 features.
    x = jnp.zeros((1, 32, 32, 1))
    conv = nn.Conv(10, (5, 5), padding="VALID")
    params = conv.init(jax.random.key(0), x)
    y = conv.apply(params, x)
    assert y.shape == (1, 28, 28, 10) and count(params) == 260
    pooled = nn.max_pool(y, (2, 2), strides=(2, 2))
    assert pooled.shape == (1, 14, 14, 10)
    dense = nn.Dense(200).init(jax.random.key(0), pooled.reshape(1, -1))
    assert count(dense) == 1960 * 200 + 200 == 392_200


@pytest.mark.parametrize("model", [LeNet5(), CNN(), CNN((8, 16), (32, 10), 5, pooling="max")])
def test_im2col_equals_lax_conv(model):
    x = images()
    params = model.init(jax.random.key(0), x)
    fast = model.clone(conv_impl="im2col")
    assert jax.tree.structure(fast.init(jax.random.key(0), x)) == jax.tree.structure(params)
    np.testing.assert_allclose(fast.apply(params, x), model.apply(params, x), atol=1e-5)

    def loss(params, model):
        return jnp.sum(model.apply(params, x) ** 2)

    grads = jax.grad(loss)(params, model)
    fast_grads = jax.grad(loss)(params, fast)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), fast_grads, grads
    )


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1))])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
def test_im2col_conv_equals_lax_with_strides_and_padding(padding, strides):
    x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    expected = jax.lax.conv_general_dilated(
        x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(im2col_conv(x, kernel, strides, padding), expected, atol=1e-5)


def test_dropout_is_the_identity_at_eval_and_scales_the_kept_units_in_training():
    rate, x = 0.25, jnp.ones((1000, 64))
    dropout = nn.Dropout(rate)
    np.testing.assert_array_equal(dropout.apply({}, x, deterministic=True), x)
    y = dropout.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(float(kept.mean()) - (1 - rate)) < 0.01


def test_cnn_dropout_needs_train_and_a_key():
    model, x = CNN(dropout_rate=0.5), images()
    params = model.init(jax.random.key(0), x)
    np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x, train=False))
    a = model.apply(params, x, train=True, rngs={"dropout": jax.random.key(1)})
    b = model.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(a, b)


def test_build_by_name():
    assert models.build(ModelConfig()) == models.MLP((128, 64, 10), "relu", True)
    lenet = models.build(ModelConfig(name="lenet5", conv_impl="lax"))
    assert lenet == LeNet5("tanh", "avg", conv_impl="lax")
    cnn = models.build(ModelConfig(name="cnn", dropout_rate=0.5, pooling="max"), backend="cpu")
    assert cnn == CNN(activation="relu", pooling="max", dropout_rate=0.5, conv_impl="im2col")
    assert models.build(ModelConfig(name="cnn"), backend="gpu").conv_impl == "lax"
    assert models.build(ModelConfig(name="cnn"), backend="tpu").conv_impl == "lax"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (ModelConfig(name="resnet"), r"unknown model 'resnet'; valid: cnn, lenet5, mlp"),
        (ModelConfig(name="cnn", conv_impl="fft"), r"unknown conv implementation 'fft'"),
        (ModelConfig(name="cnn", pooling="min"), r"unknown pooling 'min'; valid: avg, max"),
        (ModelConfig(name="lenet5", activation="nope"), r"unknown activation 'nope'"),
    ],
)
def test_bad_model_configs_are_one_line_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        models.build(cfg)
