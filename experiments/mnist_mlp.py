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

from dl_jax import cli
from dl_jax.config import ClassifierConfig

DEFAULTS = ClassifierConfig()


def main(cfg: ClassifierConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import classifier

    classifier.train_and_evaluate(cfg)


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
