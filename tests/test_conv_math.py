"""The slides' convolution arithmetic: worked examples, output sizes, and FFT against direct."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax.conv_math import (
    avg_pool2d,
    conv_layer,
    conv_output_shape,
    conv_params,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
    fft_convolve,
    fft_convolve2d,
    max_pool2d,
    output_size,
)
from dl_jax.errors import ConfigError

X, K = jnp.array([1.0, 2, 3]), jnp.array([4.0, 5, 6])


def lax_correlate1d(x, k, pad):
    """The same 1-D cross-correlation through lax.conv_general_dilated (one batch, one channel)."""
    return jax.lax.conv_general_dilated(x[None, None], k[None, None], (1,), [(pad, pad)])[0, 0]


def test_slides_convolution_1d():
    # [1,2,3] * [4,5,6]: 1*4, 1*5+2*4, 1*6+2*5+3*4, 2*6+3*5, 3*6
    np.testing.assert_array_equal(convolve1d(X, K), [4, 13, 28, 27, 18])
    np.testing.assert_allclose(fft_convolve(X, K), [4, 13, 28, 27, 18], atol=1e-5)
    np.testing.assert_array_equal(convolve1d([1, 2, 3], [4, 5, 6]), [4, 13, 28, 27, 18])


def test_cross_correlation_1d_is_what_lax_computes():
    # no flip: 1*6, 1*5+2*6, 1*4+2*5+3*6, 2*4+3*5, 3*4
    np.testing.assert_array_equal(correlate1d(X, K), [6, 17, 32, 23, 12])
    np.testing.assert_array_equal(lax_correlate1d(X, K, pad=2), [6, 17, 32, 23, 12])
    np.testing.assert_array_equal(correlate1d(X, K, "valid"), [32])
    np.testing.assert_array_equal(correlate1d(X, K, "same"), [17, 32, 23])


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("m", [3, 4])
def test_direct_1d_matches_numpy(mode, m):
    rng = np.random.default_rng(m)
    x, k = rng.standard_normal(9).astype(np.float32), rng.standard_normal(m).astype(np.float32)
    np.testing.assert_allclose(convolve1d(x, k, mode), np.convolve(x, k, mode), atol=1e-5)
    np.testing.assert_allclose(correlate1d(x, k, mode), np.correlate(x, k, mode), atol=1e-5)


@pytest.mark.parametrize("n, m", [(1, 1), (17, 5), (64, 64), (300, 129)])
def test_fft_equals_direct(n, m):
    kx, kk = jax.random.split(jax.random.key(n))
    x, k = jax.random.normal(kx, (n,)), jax.random.normal(kk, (m,))
    direct = convolve1d(x, k)
    scale = float(jnp.abs(direct).max())  # rtol on values near zero is meaningless
    np.testing.assert_allclose(fft_convolve(x, k), direct, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(
        fft_convolve(x, k), jax.scipy.signal.fftconvolve(x, k), rtol=1e-4, atol=1e-5 * scale
    )


def test_fft_convolve2d_equals_direct():
    kx, kk = jax.random.split(jax.random.key(0))
    x, k = jax.random.normal(kx, (9, 7)), jax.random.normal(kk, (3, 4))
    direct = convolve2d(x, k, "full")
    np.testing.assert_allclose(fft_convolve2d(x, k), direct, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        fft_convolve2d(x, k), jax.scipy.signal.fftconvolve(x, k), rtol=1e-4, atol=1e-5
    )


IMAGE = jnp.array(
    [
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
    ]
)
X_KERNEL = jnp.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def test_slides_binary_image_feature_map():
    expected = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    np.testing.assert_array_equal(correlate2d(IMAGE, X_KERNEL), expected)
    # the kernel is symmetric under a flip, so convolution gives the same map here
    np.testing.assert_array_equal(convolve2d(IMAGE, X_KERNEL), expected)
    layer = conv_layer(IMAGE[:, :, None], X_KERNEL[:, :, None, None], bias_F=jnp.array([1]))
    np.testing.assert_array_equal(layer[:, :, 0], np.array(expected) + 1)


def test_strided_padded_correlate2d_equals_lax():
    kx, kk = jax.random.split(jax.random.key(1))
    x, k = jax.random.normal(kx, (9, 11)), jax.random.normal(kk, (3, 3))
    ours = correlate2d(x, k, stride=2, padding=1)  # (9 - 3 + 2) / 2 + 1 = 5, (11 - 3 + 2) / 2 + 1
    assert ours.shape == (5, 6)
    expected = jax.lax.conv_general_dilated(x[None, None], k[None, None], (2, 2), [(1, 1)] * 2)
    np.testing.assert_allclose(ours, expected[0, 0], rtol=1e-5, atol=1e-5)
    # mode "full": h - 1 = w - 1 = 2 zeros on each side
    expected = jax.lax.conv_general_dilated(x[None, None], k[None, None], (1, 1), [(2, 2)] * 2)
    np.testing.assert_allclose(correlate2d(x, k, "full"), expected[0, 0], rtol=1e-5, atol=1e-5)


def test_conv_layer_sums_channels():
    kx, kk, kb = jax.random.split(jax.random.key(2), 3)
    x_HWC = jax.random.normal(kx, (7, 7, 3))
    kernel_hwCF = jax.random.normal(kk, (3, 3, 3, 4))
    bias_F = jax.random.normal(kb, (4,))
    y_HWF = conv_layer(x_HWC, kernel_hwCF, bias_F, stride=2, padding=1)
    assert y_HWF.shape == conv_output_shape(x_HWC.shape, 4, f=3, p=1, s=2) == (4, 4, 4)
    by_channel = sum(
        correlate2d(x_HWC[:, :, c], kernel_hwCF[:, :, c, 1], stride=2, padding=1) for c in range(3)
    )
    np.testing.assert_allclose(y_HWF[:, :, 1], by_channel + bias_F[1], rtol=1e-5, atol=1e-5)


def test_slides_max_pooling():
    x = jnp.array([[8, 1, 3, 6], [3, 2, 2, 1], [5, 0, 7, 1], [2, 4, 9, 7]], jnp.float32)
    np.testing.assert_array_equal(max_pool2d(x), [[8, 6], [5, 9]])


def test_slides_max_and_average_pooling():
    x = jnp.array(
        [[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]], jnp.float32
    )
    np.testing.assert_array_equal(max_pool2d(x, size=2, stride=2), [[20, 30], [112, 37]])
    # (12+20+8+12)/4 = 13, (30+0+2+0)/4 = 8, (34+70+112+100)/4 = 79, (37+4+25+12)/4 = 19.5
    np.testing.assert_array_equal(avg_pool2d(x, size=2, stride=2), [[13, 8], [79, 19.5]])


def test_slides_output_sizes():
    assert output_size(12, 3) == 10  # (12 - 3 + 0) / 1 + 1
    assert conv_output_shape((12, 12, 1), 1, f=3) == (10, 10, 1)
    # 39x39x3 -> 37x37x10 -> 17x17x20 -> 7x7x40, flattened to 1960 features
    shape = (39, 39, 3)
    for filters, f, s in ((10, 3, 1), (20, 5, 2), (40, 5, 2)):
        shape = conv_output_shape(shape, filters, f, s=s)
    assert shape == (7, 7, 40)
    assert np.prod(shape) == 1960
    # 32x32x1, 10 filters of 5x5 stride 1 -> 28x28x10; 2x2 pooling at stride 2 -> 14x14x10
    conv = conv_output_shape((32, 32, 1), 10, f=5)
    assert conv == (28, 28, 10)
    assert conv_output_shape(conv, 10, f=2, s=2) == (14, 14, 10)
    assert max_pool2d(jnp.zeros(conv[:2])).shape == (14, 14)
    assert output_size(5, 3, p=1) == 5  # "same" padding p = (f - 1) / 2


def test_slides_parameter_count():
    assert conv_params(5, 1, 10) == 10 * (5 * 5 * 1 + 1) == 260
    assert conv_params(5, 1, 10, bias=False) == 250
    assert conv_params(3, 3, 10) == 10 * (3 * 3 * 3 + 1) == 280


@pytest.mark.parametrize(
    "args, message",
    [
        ((3, 5), r"n=3, f=5, p=0, s=1: the filter does not fit, n \+ 2p = 3 < f"),
        ((7, 3, 0, 3), r"n=7, f=3, p=0, s=3: n - f \+ 2p = 4 does not fit a whole number of stri"),
        ((7, 3, 0, 0), r"n=7, f=3, p=0, s=0: the filter size f and stride s must be at least 1"),
        ((7, 0), r"n=7, f=0, p=0, s=1: the filter size f and stride s must be at least 1"),
        ((7, 3, -1), r"n=7, f=3, p=-1, s=1: the padding p must be 0 or more"),
    ],
)
def test_impossible_sizes_raise(args, message):
    with pytest.raises(ConfigError, match=message):
        output_size(*args)


def test_impossible_shapes_raise_in_the_operations():
    with pytest.raises(ConfigError, match="n=28, f=3, p=0, s=2: n - f"):
        conv_output_shape((28, 28, 1), 8, f=3, s=2)
    with pytest.raises(ConfigError, match="does not fit a whole number of strides of 2"):
        max_pool2d(jnp.zeros((5, 5)))
    with pytest.raises(ConfigError, match="does not fit a whole number of strides of 2"):
        correlate2d(jnp.zeros((6, 6)), jnp.zeros((3, 3)), stride=2)
    with pytest.raises(ConfigError, match=r"needs a kernel no longer than the signal \(got 3 > 2"):
        correlate1d(jnp.zeros(2), jnp.zeros(3), "valid")
    with pytest.raises(ConfigError, match="unknown mode 'circular'; valid: full, same, valid"):
        convolve1d(X, K, "circular")
