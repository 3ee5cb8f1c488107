"""Count the ones in a bit sequence with a recurrent network (the slides' 0 1 0 0 1 -> 2).

    python experiments/bit_counting.py
    python experiments/bit_counting.py --model.cell=gru --workdir=runs/bit_counting_gru
    python experiments/bit_counting.py --task.name=running_parity --workdir=runs/parity

The defaults: `--task.name=count`, random bit sequences of lengths 1 to 20 (20,000 for
training, drawn from seed 0); an LSTM of 64 units reads the bits one per step, and the state at
each sequence's last bit goes to a dense layer of 21 classes (0..20 ones). Adam at 1e-3 decayed
by a cosine, batch 128. The test split holds all 32 sequences of length 5 (there are only 2^5,
so these are also training sequences) and 2,000 sequences of length 20 that are not in the
training split; `test/accuracy_T5` and `test/accuracy_T20` report each. The defaults reach
100% on both in at most 10 minutes on a 2-core CPU.

`--task.name=running_parity` is the many-to-many version: the parity of the ones so far at
every step (`test/token_accuracy`, `test/exact_accuracy`); dl_jax/sequences.py documents every
task. Writes into --workdir config.json, metrics.jsonl (one row per epoch), checkpoints/ and
curves.png; running the same command again resumes.
"""

from dl_jax import cli
from dl_jax.config import ModelConfig, OptimConfig, SequenceConfig, TrainConfig

DEFAULTS = SequenceConfig(
    model=ModelConfig(name="rnn", cell="lstm", hidden=64),
    optim=OptimConfig(learning_rate=1e-2, schedule="cosine"),
    train=TrainConfig(epochs=10),
    workdir="runs/bit_counting",
)


def main(cfg: SequenceConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import sequences

    sequences.train_and_evaluate(cfg)


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
