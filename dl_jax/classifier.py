"""One image classifier trained end to end into its work directory: the body of mnist_mlp.py,
mnist_cnn.py and sequence_mnist.py, which differ only in their defaults and in the pictures
they add. `dl_jax.runs` does the training; this module makes the model, the task and the data.
"""

from __future__ import annotations

import flax.linen as nn

from dl_jax import data, losses, models, parallel, runs, tasks
from dl_jax.config import ClassifierConfig

# Fields a resumed classifier may change besides `runs.HARMLESS`: the data may move, or come
# from another source, but must be the same (workdir.prepare compares its fingerprints); both
# conv implementations compute the same function on the same parameters.
HARMLESS = ("data.", "model.conv_impl")


def build(cfg: ClassifierConfig) -> tuple[nn.Module, tasks.ImageClassification]:
    """The run's model and task (what `runs.load` rebuilds from a config.json too)."""
    model = models.build(cfg.model)
    task = tasks.ImageClassification(
        losses.get_loss(cfg.train.loss), max_shift=cfg.train.augment_shift
    )
    return model, task


def train_and_evaluate(cfg: ClassifierConfig) -> runs.Result:
    """Train `cfg.model` on the images of `cfg.data`, resuming from `cfg.workdir` if a run is
    there (see `runs.train_and_evaluate`)."""
    model, task = build(cfg)
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    return runs.train_and_evaluate(cfg, model, task, splits, HARMLESS)


def trained(cfg: ClassifierConfig) -> runs.Run:
    """The run of `cfg` in `cfg.workdir`, trained there first if it is not (or not all) there:
    for experiments that need a trained model and were not given one. The directory is held
    while it trains, on process 0 for all processes."""
    print(f"== {cfg.model.name}: {cfg.train.epochs} epoch(s) in {cfg.workdir}", flush=True)
    with parallel.held_by_main_process(cfg.workdir):
        train_and_evaluate(cfg)
    return runs.load(cfg.workdir)
