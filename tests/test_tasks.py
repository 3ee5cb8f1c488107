import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import losses, optim, parallel, tasks, train
from dl_jax.config import TrainConfig
from dl_jax.data import Splits
from dl_jax.models import MLP


def test_image_classification_scales_images_and_counts_each_example_once():
    task = tasks.ImageClassification()
    batch = {"image": jnp.full((2, 2, 2, 1), 255, jnp.uint8), "label": jnp.array([0, 1])}
    (images,) = task.inputs(batch)
    np.testing.assert_array_equal(images, np.ones((2, 2, 2, 1)))
    logits = jnp.array([[2.0, 0.0], [3.0, 0.0]])
    correct, weight = task.metrics(logits, batch)["accuracy"]
    np.testing.assert_array_equal(correct, [1, 0])
    np.testing.assert_array_equal(weight, [1, 1])
    np.testing.assert_allclose(
        task.loss(logits, batch), [np.log1p(np.exp(-2)), 3 + np.log1p(np.exp(-3))], rtol=1e-6
    )
    assert task.augment(jax.random.key(0), batch) is batch  # max_shift=0: untouched


@dataclasses.dataclass(frozen=True)
class CopyFirstBit(tasks.Task):
    """A task that is not images: {"bits": float [B, T]}, predict bits[:, 0]; its metric weighs
    each example by its number of ones, to check the weighted means."""

    def inputs(self, batch):
        return (batch["bits"],)

    def loss(self, logits, batch):
        return losses.softmax_cross_entropy(logits, batch["bits"][:, 0].astype(jnp.int32))

    def metrics(self, logits, batch):
        correct = (logits.argmax(-1) == batch["bits"][:, 0]).astype(jnp.float32)
        ones = batch["bits"].sum(-1)
        return {
            "accuracy": (correct, jnp.ones_like(correct)),
            "ones_weighted": (correct * ones, ones),
        }


def test_metrics_over_a_split_are_sums_of_values_over_sums_of_weights_without_padding():
    task = CopyFirstBit()
    batch = {"bits": jnp.array([[1.0, 1, 1], [0, 1, 0], [1, 0, 0]])}
    logits = jnp.array([[0.0, 1], [0, 1], [0, 1]])  # predicts 1: right, wrong, right
    sums = tasks.evaluation_sums(task, logits, batch, jnp.array([True, True, False]))
    means = {k: float(v) for k, v in tasks.means(sums).items()}
    assert means["test/accuracy"] == 0.5  # the third example is padding
    assert means["test/ones_weighted"] == 3 / 4  # 3 ones right, out of 3 + 1
    assert means["test/loss"] == pytest.approx(float(np.mean(task.loss(logits, batch)[:2])))


def test_fit_trains_a_task_that_is_not_images():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (600, 4)).astype(np.float32)
    splits = Splits({"bits": bits[:500]}, {"bits": bits[500:]}, "generated")
    task = CopyFirstBit()
    state = train.create_train_state(
        MLP((16, 2), "relu"),
        optim.make_optimizer("adam", 1e-2),
        task,
        0,
        tasks.example_batch(splits.train),
    )
    cfg = TrainConfig(epochs=3, batch_size=50, eval_batch_size=50)
    records = [r for _, r in train.fit(state, splits, cfg, parallel.make_mesh(1))]
    assert records[-1]["test/accuracy"] == 1.0
    assert 0 < records[-1]["test/loss"] < records[0]["train/loss"]
    assert set(records[-1]) >= {"test/accuracy", "test/ones_weighted", "train/seconds"}


def test_equal_tasks_are_equal_and_hashable():
    assert tasks.ImageClassification(max_shift=2) == tasks.ImageClassification(max_shift=2)
    assert hash(tasks.ImageClassification()) == hash(tasks.ImageClassification())
