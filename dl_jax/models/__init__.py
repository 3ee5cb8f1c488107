"""Models as flax.linen modules with pure `init` / `apply`, and `build`, which makes one by name."""

import flax.linen as nn
import jax

from dl_jax.activations import get_activation
from dl_jax.config import ModelConfig
from dl_jax.errors import unknown_name
from dl_jax.models.cnn import CNN, CONV_IMPLS, POOLINGS, LeNet5
from dl_jax.models.mlp import MLP
from dl_jax.models.rnn import CELLS, RNNClassifier

MODELS = ("mlp", "lenet5", "cnn", "rnn")
DEFAULT_ACTIVATIONS = {"mlp": "relu", "lenet5": "tanh", "cnn": "relu", "rnn": "tanh"}


def conv_impl(cfg: ModelConfig, backend: str | None = None) -> str:
    """The conv implementation to run: `auto` is im2col on CPU and lax elsewhere (GPU, TPU)."""
    if cfg.conv_impl != "auto":
        if cfg.conv_impl not in CONV_IMPLS:
            raise unknown_name("conv implementation", cfg.conv_impl, ("auto", *CONV_IMPLS))
        return cfg.conv_impl
    return "im2col" if (backend or jax.default_backend()) == "cpu" else "lax"


def build(cfg: ModelConfig, *, activation=None, kernel_init=None, backend=None) -> nn.Module:
    """The flax module that `cfg` describes.

    `activation` (a name or a function) and `kernel_init` (of every layer) override the
    model's own, for the grid, whose cells and recipes pick them (the rnn's activation is its
    Elman cell's; its cells keep flax's initializers). `backend` resolves `conv_impl=auto`
    (default: JAX's backend). An unknown model, activation, pooling, conv implementation or
    recurrent cell is a one-line ConfigError.
    """
    if cfg.name not in MODELS:
        raise unknown_name("model", cfg.name, MODELS)
    if activation is None:
        activation = cfg.activation if cfg.activation != "auto" else DEFAULT_ACTIVATIONS[cfg.name]
    if isinstance(activation, str):
        get_activation(activation)  # an unknown name fails here, listing the valid ones
    impl = conv_impl(cfg, backend)  # refuses an unknown implementation, for every model
    if cfg.pooling not in POOLINGS:
        raise unknown_name("pooling", cfg.pooling, POOLINGS)
    if cfg.cell not in CELLS:
        raise unknown_name("recurrent cell", cfg.cell, CELLS)
    init = {} if kernel_init is None else {"kernel_init": kernel_init}
    if cfg.name == "mlp":
        return MLP(cfg.features, activation, cfg.use_bias, **init)
    if cfg.name == "lenet5":
        return LeNet5(activation, cfg.pooling, conv_impl=impl, **init)
    if cfg.name == "rnn":
        return RNNClassifier(cfg.cell, cfg.hidden, cfg.num_classes, activation=activation)
    return CNN(
        cfg.conv_features,
        cfg.dense_features,
        activation=activation,
        pooling=cfg.pooling,
        dropout_rate=cfg.dropout_rate,
        conv_impl=impl,
        **init,
    )


__all__ = ["CNN", "MLP", "MODELS", "LeNet5", "RNNClassifier", "build", "conv_impl"]
