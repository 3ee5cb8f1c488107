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

Shape key: B batch, H height, W width, C channels, K classes, T time steps, F features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp

from dl_jax import losses

Batch = dict[str, jax.Array]
Metric = tuple[jax.Array, jax.Array]  # per example: (value, weight)


class Task:
    """The interface of a task (see the module docstring); subclasses are frozen dataclasses."""

    labels_key: ClassVar[str] = "label"  # the batch's class indices, which the outputs score

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


@dataclasses.dataclass(frozen=True)
class FeatureClassification(Task):
    """One label per feature vector: `{"x": float32 [B, F], "label": int32 [B]}`; logits [B, K],
    softmax cross-entropy (the toy problems of `dl_jax.toys`)."""

    def inputs(self, batch: Batch) -> tuple[jax.Array]:
        return (batch["x"],)

    def loss(self, logits_BK: jax.Array, batch: Batch) -> jax.Array:
        return losses.softmax_cross_entropy(logits_BK, batch["label"])

    def metrics(self, logits_BK: jax.Array, batch: Batch) -> dict[str, Metric]:
        correct_B = losses.accuracy(logits_BK, batch["label"])
        return {"accuracy": (correct_B, jnp.ones_like(correct_B))}


@dataclasses.dataclass(frozen=True)
class SequenceClassification(Task):
    """One label per sequence (many-to-one): `{"x": [B, T, F], "length": int32 [B], "label":
    int32 [B]}`, the steps at and after `length` being padding; logits [B, K].

    Attributes:
      report_lengths: also report the accuracy over the sequences of each of these lengths,
        as `accuracy_T<length>` (a length that a split lacks reports nan).
    """

    report_lengths: tuple[int, ...] = ()

    def inputs(self, batch: Batch) -> tuple[jax.Array, jax.Array]:
        return batch["x"], batch["length"]

    def loss(self, logits_BK: jax.Array, batch: Batch) -> jax.Array:
        return losses.softmax_cross_entropy(logits_BK, batch["label"])

    def metrics(self, logits_BK: jax.Array, batch: Batch) -> dict[str, Metric]:
        correct_B = losses.accuracy(logits_BK, batch["label"])
        metrics = {"accuracy": (correct_B, jnp.ones_like(correct_B))}
        for length in self.report_lengths:
            weight_B = (batch["length"] == length).astype(jnp.float32)
            metrics[f"accuracy_T{length}"] = (correct_B * weight_B, weight_B)
        return metrics


@dataclasses.dataclass(frozen=True)
class SequenceTagging(Task):
    """A label per step (many-to-many): `{"x": [B, T, F], "length": int32 [B], "target": int32
    [B, T]}`; logits [B, T, K]. Only the steps before `length` count.

    A sequence's loss is the mean cross-entropy over its valid steps. Metrics: `token_accuracy`,
    over all valid steps of the split, and `exact_accuracy`, the fraction of sequences with
    every valid step right.
    """

    def inputs(self, batch: Batch) -> tuple[jax.Array, ...]:
        return batch["x"], batch["length"]

    length_key: ClassVar[str] = "length"  # the batch's count of target steps that count
    labels_key: ClassVar[str] = "target"

    def mask(self, batch: Batch) -> jax.Array:
        """[B, T]: True on the steps that count, the first `batch[length_key]` of each."""
        steps_T = jnp.arange(batch["target"].shape[1])
        return steps_T < batch[self.length_key][:, None]

    def loss(self, logits_BTK: jax.Array, batch: Batch) -> jax.Array:
        mask_BT = self.mask(batch)
        loss_BT = losses.softmax_cross_entropy(logits_BTK, batch["target"])
        return jnp.where(mask_BT, loss_BT, 0).sum(-1) / jnp.maximum(mask_BT.sum(-1), 1)

    def metrics(self, logits_BTK: jax.Array, batch: Batch) -> dict[str, Metric]:
        mask_BT = self.mask(batch)
        correct_BT = (logits_BTK.argmax(-1) == batch["target"]) & mask_BT
        exact_B = (correct_BT == mask_BT).all(-1).astype(jnp.float32)
        return {
            "token_accuracy": (
                correct_BT.sum(-1, dtype=jnp.float32),
                mask_BT.sum(-1, dtype=jnp.float32),
            ),
            "exact_accuracy": (exact_B, jnp.ones_like(exact_B)),
        }


@dataclasses.dataclass(frozen=True)
class Seq2Seq(SequenceTagging):
    """A token sequence to a token sequence: `{"x": int32 [B, S], "length": int32 [B], "target":
    int32 [B, T], "target_length": int32 [B]}`; logits [B, T, V].

    The model's third input is the decoder's: `go_token`, then the target shifted right by one.
    In training the decoder reads it (teacher forcing); in evaluation a decoder reads only its
    first token and then its own predictions (greedy decoding), so the test metrics are those
    of generated sequences. Only the target's first `target_length` tokens count (the answer
    and its end token); the padding after them does not.
    """

    go_token: int = 0
    length_key: ClassVar[str] = "target_length"

    def inputs(self, batch: Batch) -> tuple[jax.Array, ...]:
        target_BT = batch["target"]
        go_B1 = jnp.full_like(target_BT[:, :1], self.go_token)
        return batch["x"], batch["length"], jnp.concatenate([go_B1, target_BT[:, :-1]], axis=1)


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
