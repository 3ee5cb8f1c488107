"""Rosenblatt's perceptron rule, one example at a time: w <- w + eta (y - y_hat) x.

Not a gradient method: the weights move only on a misclassified example, by the error times
the input. The bias is the weight w0 of a constant input x0 = 1 (w0 = -theta, the threshold
moved to the left of the slides' decision function), so an augmented input has A = F + 1
columns, bias first.

N examples, F features, A = F + 1 augmented inputs, E epochs.

Two output conventions, `OUTPUTS[name]`:
- "sign": labels in {-1, +1}, phi(z) = +1 where z >= 0, else -1 (the decision function).
- "step": labels in {0, 1}, f(x) = 1 where z > 0, else 0 (the perceptron function).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dl_jax.activations import sign
from dl_jax.errors import ConfigError, unknown_name


def step(z: jax.Array) -> jax.Array:
    """The slides' perceptron function: 1 where z > 0, else 0.

    Strict, unlike `activations.step` (z >= 0): from w = 0 the first prediction is 0.
    """
    return jnp.where(z > 0, 1.0, 0.0).astype(z.dtype)


OUTPUTS = {"sign": sign, "step": step}


@struct.dataclass
class PerceptronResult:
    """What `train` returns: the final weights, the updates of each epoch, the weights after it."""

    w_A: jax.Array
    mistakes_E: jax.Array  # int32: examples misclassified (so updated) during each epoch's pass
    w_EA: jax.Array


def augment(x_NF: jax.Array) -> jax.Array:
    """The inputs with the bias input x0 = 1 prepended as column 0."""
    return jnp.concatenate([jnp.ones_like(x_NF[:, :1]), x_NF], axis=1)


def _output(name: str):
    if name not in OUTPUTS:
        raise unknown_name("perceptron output", name, OUTPUTS)
    return OUTPUTS[name]


def _net_input(x_NA: jax.Array, w_A: jax.Array) -> jax.Array:
    # Only the sign of z matters, so no reduced-precision (TF32) products on a GPU.
    return jnp.dot(x_NA, w_A, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.jit, static_argnames=("epochs", "output"))
def _train(x_NA, y_N, w_A, learning_rate, epochs: int, output: str):
    decide = OUTPUTS[output]

    def update(w_A, example):
        x_A, y = example
        y_hat = decide(_net_input(x_A, w_A))
        return w_A + learning_rate * (y - y_hat) * x_A, y_hat != y

    def epoch(w_A, _):
        w_A, wrong_N = jax.lax.scan(update, w_A, (x_NA, y_N))
        return w_A, (wrong_N.sum(dtype=jnp.int32), w_A)

    w_A, (mistakes_E, w_EA) = jax.lax.scan(epoch, w_A, length=epochs)
    return PerceptronResult(w_A=w_A, mistakes_E=mistakes_E, w_EA=w_EA)


def train(
    x_NF: jax.Array,
    y_N: jax.Array,
    epochs: int,
    learning_rate: float = 1.0,
    output: str = "sign",
    w_init: jax.Array | None = None,
) -> PerceptronResult:
    """Runs `epochs` passes of the perceptron rule over the examples, in the given order.

    Args:
      x_NF: the inputs, without the bias column (cast to float32).
      y_N: labels in {-1, +1} for output "sign", in {0, 1} for "step".
      epochs: passes over the data (static: one compilation per value).
      learning_rate: eta; from w = 0 it only scales every w (in exact arithmetic), so it
        changes no prediction and no mistake count.
      output: a name in `OUTPUTS`.
      w_init: starting weights [A], bias first; zeros by default.

    Returns:
      The final weights, the number of updates in each epoch and the weights after each epoch.
    """
    _output(output)
    x_NA = augment(jnp.asarray(x_NF, jnp.float32))
    num_inputs = x_NA.shape[1]
    w_A = jnp.zeros(num_inputs) if w_init is None else jnp.asarray(w_init, jnp.float32)
    if w_A.shape != (num_inputs,):
        raise ConfigError(f"w_init has shape {w_A.shape}; expected ({num_inputs},), bias first")
    y_N = jnp.asarray(y_N, jnp.float32)
    return _train(x_NA, y_N, w_A, jnp.float32(learning_rate), epochs, output)


def predict(w_A: jax.Array, x_NF: jax.Array, output: str = "sign") -> jax.Array:
    """The labels [N] that weights `w_A` (bias first) give the inputs, in `output`'s convention."""
    decide = _output(output)
    return decide(_net_input(augment(jnp.asarray(x_NF, jnp.float32)), w_A))


def separable(
    n: int, features: int, margin: float, seed: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`n` linearly separable points, each at least `margin` from a random separating hyperplane.

    Drawn with numpy's PCG64 (`default_rng(seed)`): a unit normal in feature space, a hyperplane
    through a point uniform in [-0.5, 0.5]^F (so both classes turn up), then points uniform in
    [-1, 1]^F, keeping those whose Euclidean distance to the hyperplane in feature space,
    |w_star . x_aug| / ||w_star[1:]||, is at least `margin`, until `n` are kept.

    Returns:
      x_NF (float32), y_N (float32, the side: +1 where w_star . x_aug >= 0, else -1) and
      w_star_A (float32, bias first, scaled so ||w_star[1:]|| = 1: w_star . x_aug is the
      signed distance). `mistake_bound`'s gamma, on the augmented vectors, is smaller: at
      least margin / ||w_star|| = margin / sqrt(1 + w0^2).
    """
    rng = np.random.default_rng(seed)
    normal_F = rng.standard_normal(features)
    normal_F /= np.linalg.norm(normal_F)
    w_star_A = np.concatenate([[-normal_F @ rng.uniform(-0.5, 0.5, features)], normal_F])
    kept, count = [], 0
    for _ in range(100):  # a margin too wide for the box would otherwise draw forever
        x_NF = rng.uniform(-1.0, 1.0, (n, features))
        x_NF = x_NF[np.abs(w_star_A[0] + x_NF @ normal_F) >= margin]
        kept.append(x_NF)
        count += len(x_NF)
        if count >= n:
            break
    else:
        raise ConfigError(f"margin {margin} is too wide: {count} of {100 * n} draws were kept")
    x_NF = np.concatenate(kept)[:n]
    y_N = np.where(w_star_A[0] + x_NF @ normal_F >= 0, 1.0, -1.0)
    return tuple(jnp.asarray(a, jnp.float32) for a in (x_NF, y_N, w_star_A))


def xor() -> tuple[jax.Array, jax.Array]:
    """The four XOR points, labels +1 where exactly one input is 1, else -1: not separable."""
    x_NF = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
    return x_NF, jnp.array([-1, 1, 1, -1], jnp.float32)


def mistake_bound(x_NF: jax.Array, y_N: jax.Array, w_star_A: jax.Array) -> float:
    """Novikoff's bound (R / gamma)^2 on the augmented vectors, for labels in {-1, +1}.

    R = max_i ||x_aug_i|| and gamma = min_i y_i (w_star . x_aug_i) / ||w_star||, with the full
    augmented w_star, bias included. With w starting at 0 and the "sign" output, the total
    number of updates over all epochs is at most this, for any learning rate (each update has
    y z <= 0, a tie at z = 0 included, which is all the proof needs). The best
    separator gives the tightest bound; any separator, such as the one that made the data,
    gives a valid, looser one. Infinite where `w_star_A` does not separate the data.
    """
    x_NA = augment(jnp.asarray(x_NF, jnp.float32))
    radius = jnp.linalg.norm(x_NA, axis=1).max()
    gamma = (jnp.asarray(y_N) * _net_input(x_NA, w_star_A)).min() / jnp.linalg.norm(w_star_A)
    return float((radius / gamma) ** 2) if gamma > 0 else float("inf")
