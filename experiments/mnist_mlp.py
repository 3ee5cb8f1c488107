"""Train one MLP (or any image model, --model.name) on MNIST and report test accuracy per epoch.

    python experiments/mnist_mlp.py --data.dir=PATH --workdir=runs/mlp
    python experiments/mnist_mlp.py --data.source=sample --train.epochs=2
    python experiments/mnist_mlp.py --model.activation=tanh --optim.name=sgd \\
        --optim.learning_rate=0.1 --optim.schedule=constant

The defaults are the reference run: 784-128-64-10, ReLU, Adam at 1e-3 decayed by a cosine over
the run (--optim.schedule=constant keeps it fixed), batch 128, 10 epochs.

Writes into --workdir: config.json, metrics.jsonl (one JSON object per epoch, appended as each
ends), checkpoints/, curves.png (loss and test accuracy against epoch) and, with
--log.tensorboard=True, tensorboard/. Running the same command again resumes an interrupted run
from its last checkpoint (see dl_jax/checkpoint.py).
"""

import dataclasses

from dl_jax import cli
from dl_jax.config import (
    CheckpointConfig,
    DataConfig,
    LogConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

# Fields a resumed run may change: they do not change its results. The data may move, or come
# from another source, but must be the same: workdir.prepare compares its fingerprints. Both
# conv implementations compute the same function on the same parameters.
HARMLESS = ("workdir", "data.", "checkpoint.", "log.", "model.conv_impl")


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig(schedule="cosine")
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    workdir: str = "runs/mnist_mlp"  # config, metrics, checkpoints and plots of the run


def main(cfg: Config) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import classifier

    classifier.train_and_evaluate(cfg, HARMLESS)


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
