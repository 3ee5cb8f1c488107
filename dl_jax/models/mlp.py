"""The multilayer perceptron: dense layers with one activation between them.

Shape key: B batch, D features of the current layer, K classes (the last layer's width).
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_jax.activations import get_activation, resolve


class MLP(nn.Module):
    """Dense layers of widths `features`; `activation` after each but the last, which gives logits.

    Inputs of any trailing shape are flattened, so MNIST images [B, 28, 28, 1] go in as they are.
    The slides' network is `MLP((128, 64, 10), activation="sigmoid"|"tanh"|"relu", use_bias=False)`
    with a softmax on the logits.

    Attributes:
      features: width of each dense layer; the last one is the number of classes K.
      activation: the hidden activation: a key of `dl_jax.activations.ACTIVATIONS`, or a
        function (the grid sweep passes one that picks the activation at run time).
      use_bias: whether the dense layers add a bias.
      kernel_init: initializer of the weight matrices (flax's default, LeCun normal).
      dtype: the compute dtype (bfloat16 for TPUs and recent GPUs); parameters stay float32,
        and the logits are returned in float32, for the loss and the softmax.
    """

    features: Sequence[int] = (128, 64, 10)
    activation: str | Callable[[jax.Array], jax.Array] = "tanh"
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    def __post_init__(self):
        if isinstance(self.activation, str):
            get_activation(self.activation)  # an unknown name fails here, listing the valid ones
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Logits [B, K] for inputs [B, ...]; `train` is unused (no dropout or batch norm)."""
        act = resolve(self.activation)
        x_BD = jnp.reshape(x, (x.shape[0], -1))
        for i, width in enumerate(self.features):
            dense = nn.Dense(width, self.use_bias, self.dtype, kernel_init=self.kernel_init)
            x_BD = dense(x_BD)
            if i < len(self.features) - 1:
                x_BD = act(x_BD)
        return x_BD.astype(jnp.float32)
