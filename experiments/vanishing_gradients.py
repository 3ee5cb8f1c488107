"""The vanishing gradient, measured: how far back an Elman RNN, an LSTM and a GRU can remember.

    python experiments/vanishing_gradients.py
    python experiments/vanishing_gradients.py --study.cells=simple,lstm,gru,slide_gru
    python experiments/vanishing_gradients.py --study.lengths='(10, 20, 50, 100, 200)'

The memory task (`recall_first` of dl_jax/sequences.py): a sequence of T fair random bits,
read one per step, and the answer is the first bit, T - 1 steps back. For each cell, each
keep-gate bias of a gated cell (`--study.gate_biases`: 0 is flax's initialization, the LSTM's
forget gate and the GRU's update gate half open; 3 starts them 95% open) and each T of
`--study.lengths`, one run (hidden 32, 50,000 training sequences, Adam at 3e-3 decayed by a
cosine, batch 128, 10 epochs) trains in `--workdir/<cell>/T<T>/`, with the files and the
resume of any single run. Then, on sequences of the longest T, the norm of dL/dx_t (the
gradient of each sequence's loss with respect to its input t) is measured against the lag
T - t, for each series as initialized and as trained: back-propagation through time
multiplies it by one Jacobian of the cell per step back.

Writes into --workdir vanishing_gradients.png (the gradients against the lag, and the final
test accuracy against T, per series) and results.json (the same numbers). The defaults take
at most 15 minutes on a 2-core CPU (measured: 200 s). Running the same command again
resumes; cells and lengths may be added to a finished study, and only the new runs train.
"""

from dl_jax import cli
from dl_jax.config import VanishingConfig

DEFAULTS = VanishingConfig()


def main(cfg: VanishingConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import gradients

    results = gradients.study(cfg)
    for cell, by_length in results["accuracy"].items():
        line = ", ".join(f"T={t}: {100 * a:.1f}%" for t, a in by_length.items())
        print(f"{cell}: {line}")
    print(f"figure: {cfg.workdir}/vanishing_gradients.png")


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
