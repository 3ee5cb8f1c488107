"""Models as flax.linen modules with pure `init` / `apply`, and `build`, which makes one by name."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_jax.activations import get_activation
from dl_jax.config import ModelConfig
from dl_jax.errors import ConfigError, unknown_name
from dl_jax.models.cnn import CNN, CONV_IMPLS, POOLINGS, LeNet5
from dl_jax.models.mlp import MLP
from dl_jax.models.rnn import CELLS, KEEP_GATES, Decoder, RNNClassifier, Seq2SeqRNN

MODELS = ("mlp", "lenet5", "cnn", "rnn")
DEFAULT_ACTIVATIONS = {"mlp": "relu", "lenet5": "tanh", "cnn": "relu", "rnn": "tanh"}
# What a task needs a model to output: one label per input, one per step, or generated tokens.
OUTPUTS = ("class", "step", "sequence")


def conv_impl(cfg: ModelConfig, backend: str | None = None) -> str:
    """The conv implementation to run: `auto` is im2col on CPU and lax elsewhere (GPU, TPU)."""
    if cfg.conv_impl != "auto":
        if cfg.conv_impl not in CONV_IMPLS:
            raise unknown_name("conv implementation", cfg.conv_impl, ("auto", *CONV_IMPLS))
        return cfg.conv_impl
    return "im2col" if (backend or jax.default_backend()) == "cpu" else "lax"


def build(
    cfg: ModelConfig,
    *,
    activation=None,
    kernel_init=None,
    backend=None,
    outputs: str = "class",
    classes: int | None = None,
) -> nn.Module:
    """The flax module that `cfg` describes, for a task that needs `outputs` (see `OUTPUTS`).

    `classes` (per label, or the vocabulary's size) replaces the rnn's `cfg.num_classes`: a
    generated task knows its own. The rnn serves every kind of output: `RNNClassifier` with the
    last step's head for "class", with every step's for "step", and `Seq2SeqRNN` for
    "sequence"; the other models output classes only.

    `activation` (a name or a function) and `kernel_init` (of every layer) override the
    model's own, for the grid, whose cells and recipes pick them (the rnn's activation is its
    Elman cell's; its cells keep flax's initializers). `backend` resolves `conv_impl=auto`
    (default: JAX's backend). An unknown model, activation, pooling, conv implementation or
    recurrent cell is a one-line ConfigError, and so is a model that cannot give `outputs`.
    """
    if cfg.name not in MODELS:
        raise unknown_name("model", cfg.name, MODELS)
    if outputs not in OUTPUTS:
        raise unknown_name("model output", outputs, OUTPUTS)
    if outputs != "class" and cfg.name != "rnn":
        wanted = "a label per step" if outputs == "step" else "a token sequence"
        raise ConfigError(f"--model.name={cfg.name} cannot output {wanted}; valid: rnn")
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
    dtype = jnp.dtype(cfg.dtype)
    if cfg.name == "mlp":
        return MLP(cfg.features, activation, cfg.use_bias, **init, dtype=dtype)
    if cfg.name == "lenet5":
        return LeNet5(activation, cfg.pooling, conv_impl=impl, **init, dtype=dtype)
    if cfg.name == "rnn":
        classes = classes or cfg.num_classes
        if outputs == "sequence":
            return Seq2SeqRNN(cfg.cell, cfg.hidden, classes, dtype=dtype)
        head = "last" if outputs == "class" else "every"
        if cfg.gate_bias and cfg.cell not in KEEP_GATES:
            raise ConfigError(
                f"--model.gate_bias={cfg.gate_bias} is invalid for --model.cell={cfg.cell}: "
                f"it has no gate; gated cells: {', '.join(KEEP_GATES)}"
            )
        return RNNClassifier(
            cfg.cell, cfg.hidden, classes, head, activation, cfg.gate_bias, dtype=dtype
        )
    return CNN(
        cfg.conv_features,
        cfg.dense_features,
        activation=activation,
        pooling=cfg.pooling,
        dropout_rate=cfg.dropout_rate,
        conv_impl=impl,
        **init,
        dtype=dtype,
    )


__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "OUTPUTS",
    "Decoder",
    "LeNet5",
    "RNNClassifier",
    "Seq2SeqRNN",
    "build",
    "conv_impl",
]


def to_nnx(module: nn.Module, params, *inputs):
    """`module` as a `flax.nnx` module holding `params` (flax's linen-to-NNX bridge, `ToNNX`),
    for NNX code: called on the same `inputs`, it returns what `module.apply` does. `inputs`
    are example model inputs (a batch of one will do), from which the bridge learns the
    shapes."""
    from flax import nnx

    bridged = nnx.bridge.ToNNX(module, rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(bridged, *inputs)
    state = nnx.state(bridged, nnx.Param)
    nnx.replace_by_pure_dict(state, params)
    nnx.update(bridged, state)
    return bridged
