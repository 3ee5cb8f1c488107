"""Per-example losses on logits and integer labels: `loss(logits_BK, labels_B) -> loss_B`.

B is the batch, K the number of classes. Callers average (training) or mask and sum
(evaluation with a padded last batch).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from dl_jax.errors import unknown_name


def softmax_cross_entropy(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """-log softmax(z)[label]: the usual classification loss."""
    return optax.softmax_cross_entropy_with_integer_labels(logits_BK, labels_B)


def binary_cross_entropy(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Sigmoid cross-entropy, each of the K outputs a yes/no question (one-vs-rest).

    With a single output (K = 1) the label itself, 0 or 1, is the target.
    """
    num_classes = logits_BK.shape[-1]
    if num_classes == 1:
        targets_BK = labels_B[:, None].astype(logits_BK.dtype)
    else:
        targets_BK = jax.nn.one_hot(labels_B, num_classes, dtype=logits_BK.dtype)
    return optax.sigmoid_binary_cross_entropy(logits_BK, targets_BK).sum(-1)


def softmax_squared_error(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """The slides' cost C = sum_j (a3_j - y_j)^2, with a3 = softmax(z3) and y one-hot."""
    targets_BK = jax.nn.one_hot(labels_B, logits_BK.shape[-1], dtype=logits_BK.dtype)
    return optax.squared_error(jax.nn.softmax(logits_BK), targets_BK).sum(-1)


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_squared_error": softmax_squared_error,
}


def get_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The per-example loss called `name`; an unknown name lists the valid ones."""
    if name not in LOSSES:
        raise unknown_name("loss", name, LOSSES)
    return LOSSES[name]


def accuracy(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Per-example 1.0 where the arg-max class is the label, else 0.0."""
    return (jnp.argmax(logits_BK, -1) == labels_B).astype(jnp.float32)
