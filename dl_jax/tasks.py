"""Tasks: how a batch becomes model inputs, which loss trains on it, which metrics report on it.

A split is a dict of arrays with the example axis first (MNIST's is `{"image": uint8
[N, 28, 28, 1], "label": int32 [N]}`); a batch is the same dict over B examples. The train loop
(`dl_jax.train`) and the grid (`dl_jax.sweep`) know nothing else about the data: a task gives

- `inputs(batch)`: the model's positional arguments, a tuple (`model.apply(variables,
  *task.inputs(batch))`): the images; or sequences and their lengths
- `loss(outputs, batch)`: the per-example loss [B], which training averages
- `metrics(outputs, batch)`: per-example `(value, weight)` pairs by name; over a split a metric
  is sum(value) / sum(weight), so that, for example, a per-token accuracy weighs every token of
  a padded batch of sequences once
- `augment(key, batch)`: the training batch transformed with `key` (the identity by default)

Tasks are frozen dataclasses: equal fields give equal tasks, so a task can sit as a static
field of the TrainState and of jitted functions without recompiling.

Shape key: B batch, H height, W width, C channels, K classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from dl_jax import losses

Batch = dict[str, jax.Array]
Metric = tuple[jax.Array, jax.Array]  # per example: (value, weight)


class Task:
    """The interface of a task (see the module docstring); subclasses are frozen dataclasses."""

    def inputs(self, batch: Batch) -> tuple:
        raise NotImplementedError

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        raise NotImplementedError

    def metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, Metric]:
        raise NotImplementedError

    def augment(self, key: jax.Array, batch: Batch) -> Batch:
        del key
        return batch


def scale_images(image_u8: jax.Array) -> jax.Array:
    """uint8 pixels to float32 in [0, 1]."""
    return image_u8.astype(jnp.float32) / 255.0


def random_shift(key: jax.Array, image_BHWC: jax.Array, max_shift: int) -> jax.Array:
    """Each image translated by its own random offset of up to `max_shift` pixels along each
    axis, the uncovered border filled with zeros (light augmentation, on the device)."""
    if not max_shift:
        return image_BHWC
    b, h, w, c = image_BHWC.shape
    pads = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = jnp.pad(image_BHWC, pads)
    offsets_B2 = jax.random.randint(key, (b, 2), 0, 2 * max_shift + 1)

    def crop(x_HWC, offset_2):
        return jax.lax.dynamic_slice(x_HWC, (offset_2[0], offset_2[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets_B2)


@dataclasses.dataclass(frozen=True)
class ImageClassification(Task):
    """One label per image: `{"image": uint8 [B, H, W, C], "label": int32 [B]}`; logits [B, K].

    Attributes:
      loss_fn: per-example loss on (logits, labels), one of `losses.LOSSES`.
      preprocess: uint8 images to model inputs (scaled to [0, 1] by default).
      max_shift: in training, translate each image by up to this many pixels (0: off).
    """

    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = losses.softmax_cross_entropy
    preprocess: Callable[[jax.Array], jax.Array] = scale_images
    max_shift: int = 0

    def inputs(self, batch: Batch) -> tuple[jax.Array]:
        return (self.preprocess(batch["image"]),)

    def loss(self, logits_BK: jax.Array, batch: Batch) -> jax.Array:
        return self.loss_fn(logits_BK, batch["label"])

    def metrics(self, logits_BK: jax.Array, batch: Batch) -> dict[str, Metric]:
        correct_B = losses.accuracy(logits_BK, batch["label"])
        return {"accuracy": (correct_B, jnp.ones_like(correct_B))}

    def augment(self, key: jax.Array, batch: Batch) -> Batch:
        if not self.max_shift:
            return batch
        return {**batch, "image": random_shift(key, batch["image"], self.max_shift)}


def evaluation_sums(task: Task, outputs, batch: Batch, mask_B: jax.Array) -> dict[str, Metric]:
    """The sums of (value, weight) of the loss and of every metric over the examples of a
    batch where `mask_B` is True (the padding of a last batch is False)."""
    loss_B = task.loss(outputs, batch)
    per_example = {"loss": (loss_B, jnp.ones_like(loss_B)), **task.metrics(outputs, batch)}
    return {
        name: (jnp.where(mask_B, value, 0).sum(), jnp.where(mask_B, weight, 0).sum())
        for name, (value, weight) in per_example.items()
    }


def means(sums: dict[str, Metric], prefix: str = "test/") -> dict[str, jax.Array]:
    """Each metric's sum(value) / sum(weight), named `prefix + name`."""
    return {prefix + name: value / weight for name, (value, weight) in sums.items()}


def example_batch(split: dict) -> Batch:
    """The split's first example, as a batch of one (for `init`)."""
    return jax.tree.map(lambda x: x[:1], split)
