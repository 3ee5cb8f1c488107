"""Train a recurrent network on sequential MNIST: each image read row by row, 28 steps of 28 pixels.

    python experiments/sequence_mnist.py --data.dir=PATH
    python experiments/sequence_mnist.py --model.cell=gru --data.dir=PATH --workdir=runs/seq_gru
    python experiments/sequence_mnist.py --model.cell=simple --model.activation=relu
    python experiments/sequence_mnist.py --data.source=sample --train.epochs=2

The defaults: `--model.name=rnn --model.cell=lstm`, flax's `nn.LSTMCell` scanned by `nn.RNN`,
hidden 128, the last step's hidden state into a dense layer of 10; Adam at 1e-3 decayed by a
cosine over the run, batch 128, 10 epochs, each training image shifted by up to 1 pixel
(`--train.augment_shift=0` turns that off; the LSTM then overfits: 98.4% against 98.7%).
`--model.cell` is one of simple (the Elman RNN, tanh unless --model.activation says
otherwise), lstm, optimized_lstm, gru (flax's) and slide_gru (the slides' equations);
dl_jax/models/rnn.py says how flax's cells differ from the slides.

Writes into --workdir what mnist_mlp.py writes: config.json, metrics.jsonl (one row per epoch,
with test/accuracy and train/seconds), checkpoints/ and curves.png. Running the same command
again resumes an interrupted run from its last checkpoint.
"""

from dl_jax import cli
from dl_jax.config import ClassifierConfig, ModelConfig, TrainConfig

DEFAULTS = ClassifierConfig(
    model=ModelConfig(name="rnn", cell="lstm"),
    train=TrainConfig(augment_shift=1),
    workdir="runs/sequence_mnist",
)


def main(cfg: ClassifierConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import classifier

    classifier.train_and_evaluate(cfg)


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
