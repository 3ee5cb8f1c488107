"""Recurrent networks: one cell applied at every time step, always scanned with flax's `nn.RNN`.

The slides' Elman RNN is h_t = f(W_hh h_{t-1} + W_xh x_t + b). flax's cells, by name (`CELLS`):

- `simple`: `nn.SimpleCell`, exactly the Elman form: h_t = tanh(W_i x_t + b + W_h h_{t-1}),
  with one bias (on the input side).
- `lstm` / `optimized_lstm`: `nn.LSTMCell` / `nn.OptimizedLSTMCell` (the same equations, the
  four gate matmuls fused): the slides' f_t, i_t, o_t gates, C_t = f_t*C_{t-1} + i_t*C~_t and
  h_t = o_t*tanh(C_t). `nn.LSTMCell` keeps separate input (`i*`, without bias) and recurrent
  (`h*`, with the bias) kernels per gate where the slides write one W on [h_{t-1}, x_t]: the
  same function, the weight split in two. Its carry is (C, h).
- `gru`: `nn.GRUCell`, which differs from the slides in two ways: the reset gate multiplies
  the recurrent matmul's result, n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), where the slides
  multiply h before it, h~ = tanh(W [r*h, x]); and the update gate is swapped,
  h_t = (1 - z)*n + z*h_{t-1}, where the slides write h_t = (1 - z)*h_{t-1} + z*h~.
- `slide_gru`: `SlideGRUCell`, the slides' GRU as written, so that the two can be compared.

Shape key: B batch, T time steps, F input features, H hidden units, K classes.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_jax.activations import resolve
from dl_jax.errors import unknown_name

CELLS = ("simple", "lstm", "optimized_lstm", "gru", "slide_gru")
# The bias of the gate that keeps a gated cell's memory, by cell: (parameter, sign). The LSTM's
# forget gate keeps C_{t-1} as it opens; flax's GRU keeps h_{t-1} as z opens; the slides' GRU
# keeps it as z closes.
KEEP_GATES = {
    "lstm": ("hf", 1),
    "optimized_lstm": ("hf", 1),
    "gru": ("iz", 1),
    "slide_gru": ("z", -1),
}
HEADS = ("last", "every")  # many-to-one: the last valid step; many-to-many: every step


class SlideGRUCell(nn.RNNCellBase):
    """The slides' GRU, one dense layer on the concatenation [h_{t-1}, x_t] per gate:

        z_t = sigmoid(W_z [h_{t-1}, x_t] + b_z)
        r_t = sigmoid(W_r [h_{t-1}, x_t] + b_r)
        h~_t = tanh(W [r_t * h_{t-1}, x_t] + b)
        h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    Parameters: dense layers `z`, `r` and `candidate`, each a kernel [H + F, H] and a bias [H].
    """

    features: int
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    carry_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h_BH: jax.Array, x_BF: jax.Array) -> tuple[jax.Array, jax.Array]:
        def dense(name):
            return nn.Dense(
                self.features, dtype=self.dtype, kernel_init=self.kernel_init, name=name
            )

        hx = jnp.concatenate([h_BH, x_BF], axis=-1)
        z = nn.sigmoid(dense("z")(hx))
        r = nn.sigmoid(dense("r")(hx))
        candidate = jnp.tanh(dense("candidate")(jnp.concatenate([r * h_BH, x_BF], axis=-1)))
        h_BH = (1 - z) * h_BH + z * candidate
        return h_BH, h_BH

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        return self.carry_init(rng, (*input_shape[:-1], self.features), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1


def make_cell(kind: str, features: int, activation: Callable = jnp.tanh, **kwargs):
    """The recurrent cell of kind `kind` with `features` hidden units; `activation` is the
    Elman cell's f (the gated cells keep their sigmoids and tanh); `kwargs` go to the module
    (its `name`, for one)."""
    if kind not in CELLS:
        raise unknown_name("recurrent cell", kind, CELLS)
    if kind == "simple":
        return nn.SimpleCell(features, activation_fn=activation, **kwargs)
    gated = {
        "lstm": nn.LSTMCell,
        "optimized_lstm": nn.OptimizedLSTMCell,
        "gru": nn.GRUCell,
        "slide_gru": SlideGRUCell,
    }
    return gated[kind](features, **kwargs)


class RNNClassifier(nn.Module):
    """A recurrent layer scanned over time, then a dense layer to K classes.

    Inputs are sequences [B, T, F], or images [B, H, W, C], read row by row as H steps of W*C
    features (sequential MNIST). With `head="last"` (many-to-one) the logits [B, K] come from
    the hidden state at each sequence's last valid step; with `head="every"` (many-to-many) they
    are [B, T, K], one per step. `seq_lengths` [B] marks the valid steps of padded sequences:
    flax's `nn.RNN` stops each sequence's carry there, so padding changes nothing before it.

    Attributes:
      cell: a name in `CELLS`.
      hidden: hidden units H.
      num_classes: K.
      head: `last` or `every`.
      activation: the Elman cell's activation: a key of `dl_jax.activations.ACTIVATIONS`, or a
        function (tanh by default).
      gate_bias: the initial bias of a gated cell's keep gate (`KEEP_GATES`), which `init`
        sets: 0 is flax's, a gate half open, so that the memory halves at every step; at 3 it
        starts 95% open (the forget-gate bias of Gers et al., 2000). The Elman cell has no gate.
      dtype: the compute dtype, of the cell, its carry and the dense layer; parameters stay
        float32 and the logits come out in float32.
    """

    cell: str = "lstm"
    hidden: int = 128
    num_classes: int = 10
    head: str = "last"
    activation: str | Callable[[jax.Array], jax.Array] = "tanh"
    gate_bias: float = 0.0
    dtype: Any = jnp.float32

    def init(self, rngs, *args, **kwargs):
        """flax's `init`, then the keep gate's bias set to `gate_bias` (flax's initializers
        take one bias initializer for all of a cell's gates)."""
        variables = super().init(rngs, *args, **kwargs)
        if not self.gate_bias:
            return variables
        name, sign = KEEP_GATES[self.cell]
        params = variables["params"]
        gate = params["cell"][name]
        gate = {**gate, "bias": jnp.full_like(gate["bias"], sign * self.gate_bias)}
        return {**variables, "params": {**params, "cell": {**params["cell"], name: gate}}}

    @nn.compact
    def __call__(
        self, x: jax.Array, seq_lengths: jax.Array | None = None, *, train: bool = False
    ) -> jax.Array:
        """Logits [B, K] (`head="last"`) or [B, T, K] (`head="every"`); `train` is unused."""
        if self.head not in HEADS:
            raise unknown_name("recurrent head", self.head, HEADS)
        x_BTF = x.reshape(*x.shape[:2], -1) if x.ndim == 4 else x
        activation = resolve(self.activation)
        cell = make_cell(self.cell, self.hidden, activation, dtype=self.dtype, name="cell")
        carry = initial_carry(cell, x_BTF[:, 0], self.dtype)
        h_BTH = nn.RNN(cell)(x_BTF, initial_carry=carry, seq_lengths=seq_lengths)
        output = nn.Dense(self.num_classes, dtype=self.dtype, name="output")
        if self.head == "every":
            return output(h_BTH).astype(jnp.float32)
        b, t = x_BTF.shape[:2]
        last_B = (jnp.full((b,), t) if seq_lengths is None else seq_lengths) - 1
        h_BH = jnp.take_along_axis(h_BTH, last_B[:, None, None], axis=1)[:, 0]
        return output(h_BH).astype(jnp.float32)


def initial_carry(cell, x_BF: jax.Array, dtype):
    """The cell's zero carry in the compute `dtype`, or None (nn.RNN's own) for float32: a
    carry must keep its dtype through the scan, and the Elman cell's new state comes out in
    the compute dtype."""
    if jnp.dtype(dtype) == jnp.float32:
        return None
    zeros = cell.initialize_carry(jax.random.key(0), x_BF.shape)  # zeros: the key is unused
    return jax.tree.map(lambda c: c.astype(dtype), zeros)


class DecoderCell(nn.RNNCellBase):
    """One step of a decoder: embed a token, advance the recurrent cell, logits over the
    vocabulary. The token is the step's input when `teacher_force`, else the cell's own
    prediction of the step before (carried, so that greedy decoding is one scan).

    Carry: (the recurrent cell's carry, the previous step's predicted token [B]).
    """

    cell: str
    hidden: int
    vocab_size: int
    teacher_force: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry, token_B: jax.Array):
        cell_carry, predicted_B = carry
        if not self.teacher_force:
            token_B = predicted_B
        x_BH = nn.Embed(self.vocab_size, self.hidden, dtype=self.dtype, name="embed")(token_B)
        cell = make_cell(self.cell, self.hidden, dtype=self.dtype, name="cell")
        cell_carry, h_BH = cell(cell_carry, x_BH)
        logits_BV = nn.Dense(self.vocab_size, dtype=self.dtype, name="output")(h_BH)
        return (cell_carry, jnp.argmax(logits_BV, -1).astype(token_B.dtype)), logits_BV

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        raise NotImplementedError("a decoder starts from a given carry (an encoder's state)")

    @property
    def num_feature_axes(self) -> int:
        return 0  # its inputs are token ids [B, T]


class Decoder(nn.Module):
    """One-to-many: from a recurrent cell's state, a sequence of T tokens, scanned by `nn.RNN`.

    `tokens_BT` are the decoder's inputs, a start token and then the target shifted right. With
    `teacher_force=True` (training) each step reads its token from them; with False
    (generation) only the first, then its own greedy prediction. Returns logits [B, T, V] in
    float32, computed in `dtype`.
    """

    cell: str = "lstm"
    hidden: int = 128
    vocab_size: int = 16
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry, tokens_BT: jax.Array, *, teacher_force: bool) -> jax.Array:
        step = DecoderCell(
            self.cell, self.hidden, self.vocab_size, teacher_force, self.dtype, name="step"
        )
        logits_BTV = nn.RNN(step)(tokens_BT, initial_carry=(carry, tokens_BT[:, 0]))
        return logits_BTV.astype(jnp.float32)


class Seq2SeqRNN(nn.Module):
    """The encoder-decoder: an encoder RNN reads the source tokens, and its state at each
    source's last valid step starts a `Decoder` of the same cell kind (the slides' seq2seq).

    Decoding is teacher-forced when `train`, greedy otherwise (see `Decoder`). Each side embeds
    its own tokens; both share the vocabulary. Returns logits [B, T, V] in float32, computed in
    `dtype`.
    """

    cell: str = "lstm"
    hidden: int = 128
    vocab_size: int = 16
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        source_BS: jax.Array,
        source_lengths_B: jax.Array,
        decoder_tokens_BT: jax.Array,
        *,
        train: bool = False,
    ) -> jax.Array:
        x_BSH = nn.Embed(self.vocab_size, self.hidden, dtype=self.dtype, name="embed")(source_BS)
        cell = make_cell(self.cell, self.hidden, dtype=self.dtype, name="encoder")
        carry, _ = nn.RNN(cell, return_carry=True)(
            x_BSH, initial_carry=initial_carry(cell, x_BSH[:, 0], self.dtype),
            seq_lengths=source_lengths_B,
        )  # fmt: skip
        decoder = Decoder(self.cell, self.hidden, self.vocab_size, self.dtype, name="decoder")
        return decoder(carry, decoder_tokens_BT, teacher_force=train)
