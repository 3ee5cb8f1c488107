"""Convolutional networks: LeNet-5 and a configurable modern CNN, with a choice of convolution.

Every convolution is a flax `nn.Conv`. Its arithmetic is one of two implementations (`conv_impl`):

- `lax`: `jax.lax.conv_general_dilated`, what `nn.Conv` uses by default. The fast path on GPU/TPU.
- `im2col`: the kh*kw shifted slices of the input stacked on the channel axis, then one matmul
  with the kernel reshaped to [kh*kw*C, F]. On XLA:CPU a conv net's train step inside `lax.scan`
  compiles its backward convolutions as slow plain loops; im2col has no convolution to compile,
  so the step stays fast (../BENCHMARKS.md has the numbers).

Both read the same `kernel` [kh, kw, C, F] and `bias` [F] parameters, so a checkpoint made with
one restores into the other. Like every CNN layer, both compute cross-correlation: the kernel is
not flipped (dl_jax/conv_math.py has both operations, by name).

Shape key: B batch, H height, W width, C input channels, F filters (output channels), K classes,
D dense features.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_jax.activations import resolve
from dl_jax.errors import unknown_name

CONV_IMPLS = ("lax", "im2col")
POOLINGS = ("avg", "max")


def im2col_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
) -> jax.Array:
    """`lax.conv_general_dilated` for NHWC inputs and HWIO kernels, as im2col plus one matmul.

    It has the signature `nn.Conv(conv_general_dilated=...)` calls with; dilation and feature
    groups are not supported. lhs [B, H, W, C], rhs [kh, kw, C, F] -> [B, H', W', F].
    """
    del dimension_numbers  # nn.Conv always passes NHWC / HWIO / NHWC
    if any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))) or (
        feature_group_count != 1
    ):
        raise NotImplementedError("im2col_conv supports neither dilation nor feature groups")
    kh, kw, c, f = rhs.shape
    sh, sw = window_strides
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
    x_BHWC = jnp.pad(lhs, ((0, 0), *padding, (0, 0)))
    out_h = (x_BHWC.shape[1] - kh) // sh + 1
    out_w = (x_BHWC.shape[2] - kw) // sw + 1
    slices = [
        x_BHWC[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    cols_BHWP = jnp.concatenate(slices, axis=-1)  # P = kh*kw*C, ordered (i, j, c) like rhs
    return jnp.dot(cols_BHWP, rhs.reshape(kh * kw * c, f), precision=precision)


def conv(features: int, kernel_size: int, padding: str, impl: str, kernel_init, dtype, name=None):
    """An `nn.Conv` of `features` square `kernel_size` filters, computed by `impl` in `dtype`."""
    if impl not in CONV_IMPLS:
        raise unknown_name("conv implementation", impl, CONV_IMPLS)
    kwargs = {"conv_general_dilated": im2col_conv} if impl == "im2col" else {}
    size = (kernel_size, kernel_size)
    return nn.Conv(
        features, size, padding=padding, kernel_init=kernel_init, dtype=dtype, name=name, **kwargs
    )


def pool(x_BHWC: jax.Array, kind: str) -> jax.Array:
    """2x2 pooling with stride 2, `avg` or `max`."""
    if kind not in POOLINGS:
        raise unknown_name("pooling", kind, POOLINGS)
    fn = nn.avg_pool if kind == "avg" else nn.max_pool
    return fn(x_BHWC, (2, 2), strides=(2, 2))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) on 28x28 MNIST: C1-S2-C3-S4-C5-F6-output.

    Layers and shapes for a [B, 28, 28, 1] input:
      C1  6 filters 5x5, 'SAME' padding  -> [B, 28, 28, 6]  (the paper pads the digit to 32x32,
          which gives the same 28x28 maps)
      S2  2x2 pooling                    -> [B, 14, 14, 6]
      C3  16 filters 5x5, 'VALID'        -> [B, 10, 10, 16]
      S4  2x2 pooling                    -> [B, 5, 5, 16]
      C5  120 filters 5x5, 'VALID'       -> [B, 1, 1, 120]  (a dense layer on the 400 features)
      F6  dense 84, then the output dense K = 10
    The activation follows every layer but the output (tanh by default).

    Deviations from the paper: subsampling is plain average (or max) pooling, without its
    trainable coefficient and bias per map; C3 connects to all six S2 maps instead of the paper's
    connection table; the output is a dense layer giving logits for softmax cross-entropy
    instead of Euclidean RBF units; the activation is plain tanh, not the scaled 1.7159
    tanh(2x/3); weights use flax's LeCun-normal initialization (by default).

    `dtype` is the compute dtype; parameters stay float32 and the logits come out in float32.
    """

    activation: str | Callable[[jax.Array], jax.Array] = "tanh"
    pooling: str = "avg"
    num_classes: int = 10
    conv_impl: str = "lax"
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BHWC: jax.Array, *, train: bool = False) -> jax.Array:
        """Logits [B, K]; `train` is unused (no dropout or batch norm)."""
        act, init = resolve(self.activation), self.kernel_init
        layer = functools.partial(conv, impl=self.conv_impl, kernel_init=init, dtype=self.dtype)
        x = act(layer(6, 5, "SAME", name="C1")(x_BHWC))
        x = pool(x, self.pooling)
        x = act(layer(16, 5, "VALID", name="C3")(x))
        x = pool(x, self.pooling)
        x = act(layer(120, 5, "VALID", name="C5")(x))
        x_BD = x.reshape(x.shape[0], -1)
        x_BD = act(nn.Dense(84, dtype=self.dtype, kernel_init=init, name="F6")(x_BD))
        output = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=init, name="output")
        return output(x_BD).astype(jnp.float32)


class CNN(nn.Module):
    """Conv layers, each followed by the activation and 2x2 pooling, then dense layers.

    The defaults are the flax MNIST example's network: conv 32 and conv 64 (3x3, 'SAME'), ReLU,
    2x2 average pooling, dense 256, dense 10. Dropout at `dropout_rate` comes after every hidden
    dense layer (after its activation), active only when `train=True`; it then needs a "dropout"
    rng in `apply`.

    Attributes:
      conv_features: filters of each conv layer.
      dense_features: widths of the dense layers after the convs; the last is the class count K.
      kernel_size: side of the square conv kernels.
      activation: a key of `dl_jax.activations.ACTIVATIONS`, or a function.
      pooling: `avg` or `max`.
      dropout_rate: the probability of dropping a hidden dense unit in training.
      conv_impl: `lax` or `im2col` (see the module docstring).
      kernel_init: initializer of every conv and dense kernel (flax's default, LeCun normal).
      dtype: the compute dtype; parameters stay float32 and the logits come out in float32.
    """

    conv_features: Sequence[int] = (32, 64)
    dense_features: Sequence[int] = (256, 10)
    kernel_size: int = 3
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    pooling: str = "avg"
    dropout_rate: float = 0.0
    conv_impl: str = "lax"
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BHWC: jax.Array, *, train: bool = False) -> jax.Array:
        """Logits [B, K] for images [B, H, W, C]."""
        act, impl, init = resolve(self.activation), self.conv_impl, self.kernel_init
        x = x_BHWC
        for features in self.conv_features:
            layer = conv(features, self.kernel_size, "SAME", impl, init, self.dtype)
            x = pool(act(layer(x)), self.pooling)
        x_BD = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.dense_features):
            x_BD = nn.Dense(width, dtype=self.dtype, kernel_init=init)(x_BD)
            if i < len(self.dense_features) - 1:
                x_BD = nn.Dropout(self.dropout_rate, deterministic=not train)(act(x_BD))
        return x_BD.astype(jnp.float32)


def conv_outputs(model: nn.Module, variables, x_BHWC: jax.Array) -> dict[str, jax.Array]:
    """The output of every `nn.Conv` of `model` on `x` (before its activation), by layer path,
    in the order the network computes them (flax's `capture_intermediates`)."""
    _, state = model.apply(
        variables, x_BHWC, capture_intermediates=lambda m, _: isinstance(m, nn.Conv),
        mutable=["intermediates"],
    )  # fmt: skip
    flat = flax.traverse_util.flatten_dict(state["intermediates"], sep="/")
    return {path.removesuffix("/__call__"): outputs[0] for path, outputs in flat.items()}


def first_conv_kernel(params) -> jax.Array:
    """The kernel [kh, kw, C, F] of the first conv layer in a parameter tree."""
    return next(layer["kernel"] for layer in params.values() if layer["kernel"].ndim == 4)
