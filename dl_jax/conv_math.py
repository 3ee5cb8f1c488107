"""The slides' mathematics of convolution: convolution and cross-correlation, the FFT route,
pooling, and the output-size and parameter-count formulas.

Two operations share the name "convolution":

- true convolution, (x * k)[i] = sum_j x[j] k[i - j]: the kernel is flipped. This is the
  signal-processing operation (`np.convolve`, `jnp.convolve`, `scipy.signal.fftconvolve`), and
  the one the convolution theorem turns into a product of Fourier transforms.
- cross-correlation, (x ⋆ k)[i] = sum_j x[i + j] k[j]: the kernel slides over the input without
  a flip. This is what every CNN layer computes: `jax.lax.conv_general_dilated`, flax `nn.Conv`,
  and `conv_layer` below. A learned kernel makes the flip immaterial, so the name stuck.

The direct functions are the O(n·m) sliding dot product written out; `conv_layer` and the
pooling functions call the library (lax, flax), as a model would.

Shape key: H height, W width, C input channels, F filters (output channels); lowercase h, w
are a kernel's height and width.
"""

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from dl_jax.errors import ConfigError, unknown_name

MODES = ("full", "same", "valid")


def output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """(n - f + 2p) / s + 1: the output length of an f-wide filter over n inputs, p zeros on
    each side, stride s. Raises ConfigError when the filter does not fit a whole number of times.
    """
    where = f"n={n}, f={f}, p={p}, s={s}"
    if f < 1 or s < 1:
        raise ConfigError(f"{where}: the filter size f and stride s must be at least 1")
    if p < 0:
        raise ConfigError(f"{where}: the padding p must be 0 or more")
    if n + 2 * p < f:
        raise ConfigError(f"{where}: the filter does not fit, n + 2p = {n + 2 * p} < f")
    span = n - f + 2 * p
    if span % s:
        raise ConfigError(
            f"{where}: n - f + 2p = {span} does not fit a whole number of strides of {s}"
        )
    return span // s + 1


def conv_output_shape(
    shape_HWC: tuple[int, int, int], filters: int, f: int, p: int = 0, s: int = 1
) -> tuple[int, int, int]:
    """(H', W', filters) after a layer of `filters` f x f filters with padding p and stride s."""
    height, width, _ = shape_HWC
    return output_size(height, f, p, s), output_size(width, f, p, s), filters


def conv_params(f: int, c_in: int, filters: int, bias: bool = True) -> int:
    """filters * (f*f*c_in + 1): each filter has f*f weights per input channel and one bias."""
    return filters * (f * f * c_in + int(bias))


def _pads_1d(n: int, m: int, mode: str) -> tuple[int, int]:
    """Zeros to add (left, right) to an n-long signal for an m-long kernel in `mode`."""
    if mode not in MODES:
        raise unknown_name("mode", mode, MODES)
    if mode != "full" and m > n:
        raise ConfigError(
            f"mode {mode!r} needs a kernel no longer than the signal (got {m} > {n}); "
            "use mode='full'"
        )
    if mode == "full":
        return m - 1, m - 1
    if mode == "same":  # centred as numpy centres it: output length n
        return m // 2, m - 1 - m // 2
    return 0, 0


@partial(jax.jit, static_argnames="mode")
def correlate1d(x: jax.Array, k: jax.Array, mode: str = "full") -> jax.Array:
    """Cross-correlation, out[i] = sum_j x[i + j] k[j] (no flip): what a CNN layer computes.

    The direct sliding dot product, O(len(x) * len(k)), summed one kernel tap at a time: len(k)
    multiply-adds over the whole output, which vectorizes and keeps memory O(len(x)). Modes as
    `np.correlate`: "full" (every overlap), "same" (length len(x)), "valid" (full overlaps only).
    """
    x, k = jnp.asarray(x), jnp.asarray(k)
    left, right = _pads_1d(x.shape[0], k.shape[0], mode)
    x_padded = jnp.pad(x, (left, right))
    n_out = x_padded.shape[0] - k.shape[0] + 1
    dtype = jnp.result_type(x, k)

    def add_tap(j, out):
        return out + k[j] * lax.dynamic_slice_in_dim(x_padded, j, n_out)

    return lax.fori_loop(0, k.shape[0], add_tap, jnp.zeros(n_out, dtype))


@partial(jax.jit, static_argnames="mode")
def convolve1d(x: jax.Array, k: jax.Array, mode: str = "full") -> jax.Array:
    """True convolution, out[i] = sum_j x[j] k[i - j]: the cross-correlation with the kernel
    flipped (not what a CNN layer computes). Direct, O(len(x) * len(k)); modes as `np.convolve`.
    """
    return correlate1d(x, jnp.flip(jnp.asarray(k)), mode=mode)


@partial(jax.jit, static_argnames=("mode", "stride", "padding"))
def correlate2d(
    x_HW: jax.Array, k_hw: jax.Array, mode: str = "valid", stride: int = 1, padding: int = 0
) -> jax.Array:
    """2-D cross-correlation (no flip), strided and zero-padded: the slides' conv layer on one
    channel, and what a CNN layer computes.

    `padding` zeros go on each side of both axes; mode "full" adds h - 1 (w - 1) more, so that
    every overlap counts. The output is output_size(H, h, p, stride) x output_size(W, w, p,
    stride), and a stride that does not fit raises ConfigError. Direct: one strided slice of the
    input per kernel tap, weighted and summed.
    """
    if mode not in ("full", "valid"):
        raise unknown_name("2-D mode", mode, ("full", "valid"))
    x_HW, k_hw = jnp.asarray(x_HW), jnp.asarray(k_hw)
    (height, width), (h, w) = x_HW.shape, k_hw.shape
    pad_h, pad_w = (padding + h - 1, padding + w - 1) if mode == "full" else (padding, padding)
    out_h, out_w = output_size(height, h, pad_h, stride), output_size(width, w, pad_w, stride)
    x_padded = jnp.pad(x_HW, ((pad_h, pad_h), (pad_w, pad_w)))
    out = jnp.zeros((out_h, out_w), jnp.result_type(x_HW, k_hw))
    for i in range(h):
        for j in range(w):
            end = (i + stride * (out_h - 1) + 1, j + stride * (out_w - 1) + 1)
            out = out + k_hw[i, j] * lax.slice(x_padded, (i, j), end, (stride, stride))
    return out


@partial(jax.jit, static_argnames=("mode", "stride", "padding"))
def convolve2d(
    x_HW: jax.Array, k_hw: jax.Array, mode: str = "valid", stride: int = 1, padding: int = 0
) -> jax.Array:
    """2-D true convolution: `correlate2d` with the kernel flipped on both axes (not what a CNN
    layer computes); mode "full" matches `scipy.signal.convolve2d`."""
    return correlate2d(x_HW, jnp.flip(jnp.asarray(k_hw)), mode, stride, padding)


@partial(jax.jit, static_argnames=("stride", "padding"))
def conv_layer(
    x_HWC: jax.Array,
    kernel_hwCF: jax.Array,
    bias_F: jax.Array | None = None,
    stride: int = 1,
    padding: int = 0,
) -> jax.Array:
    """A multi-channel conv layer, y[:, :, f] = sum_c (x[:, :, c] ⋆ kernel[:, :, c, f]) + bias[f]:
    a strided, zero-padded cross-correlation through `jax.lax.conv_general_dilated`, as flax
    `nn.Conv` computes it. Returns y_H'W'F with H', W' from `conv_output_shape`.
    """
    h, w, _, _ = kernel_hwCF.shape
    output_size(x_HWC.shape[0], h, padding, stride)  # raise ConfigError if it does not fit
    output_size(x_HWC.shape[1], w, padding, stride)
    y_1HWF = lax.conv_general_dilated(
        x_HWC[None],
        kernel_hwCF,
        window_strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    y_HWF = y_1HWF[0]
    return y_HWF if bias_F is None else y_HWF + bias_F


@jax.jit
def fft_convolve(x: jax.Array, k: jax.Array) -> jax.Array:
    """Full 1-D true convolution by the convolution theorem: both signals zero-padded to
    len(x) + len(k) - 1, rfft, multiplied, irfft. O(n log n) against the direct O(n·m);
    `jax.scipy.signal.fftconvolve(x, k)` is the library's equivalent."""
    n_full = x.shape[-1] + k.shape[-1] - 1
    return jnp.fft.irfft(jnp.fft.rfft(x, n=n_full) * jnp.fft.rfft(k, n=n_full), n=n_full)


@jax.jit
def fft_convolve2d(x_HW: jax.Array, k_hw: jax.Array) -> jax.Array:
    """Full 2-D true convolution through rfft2/irfft2 on the (H + h - 1) x (W + w - 1) grid."""
    shape = (x_HW.shape[0] + k_hw.shape[0] - 1, x_HW.shape[1] + k_hw.shape[1] - 1)
    product = jnp.fft.rfft2(x_HW, s=shape) * jnp.fft.rfft2(k_hw, s=shape)
    return jnp.fft.irfft2(product, s=shape)


def _pool_shape_check(x_HW: jax.Array, size: int, stride: int) -> None:
    """Raise ConfigError unless size x size windows at `stride` tile x_HW exactly."""
    output_size(x_HW.shape[0], size, 0, stride)
    output_size(x_HW.shape[1], size, 0, stride)


@partial(jax.jit, static_argnames=("size", "stride"))
def max_pool2d(x_HW: jax.Array, size: int = 2, stride: int = 2) -> jax.Array:
    """The maximum of each size x size window, windows `stride` apart (flax `nn.max_pool`)."""
    _pool_shape_check(x_HW, size, stride)
    return nn.max_pool(x_HW[:, :, None], (size, size), (stride, stride))[:, :, 0]


@partial(jax.jit, static_argnames=("size", "stride"))
def avg_pool2d(x_HW: jax.Array, size: int = 2, stride: int = 2) -> jax.Array:
    """The mean of each size x size window, windows `stride` apart (flax `nn.avg_pool`)."""
    _pool_shape_check(x_HW, size, stride)
    return nn.avg_pool(x_HW[:, :, None], (size, size), (stride, stride))[:, :, 0]
