"""Epoch time of an LSTM on sequential MNIST: dl_jax against PyTorch's `torch.nn.LSTM`.

    pip install torch==2.13.0   # the CPU build; not a dl_jax dependency; or, where this Python
                                # has no PyTorch wheel, --torch_python=OTHER/bin/python
    python bench/lstm_epoch.py --data_dir=../shared/data/mnist \
        --out=docs/results/lstm_epoch_cpu.json

Both sides read each image row by row (28 steps of 28 pixels), one LSTM layer of 128 hidden
units, the last step's hidden state into a dense layer of 10; Adam at 1e-3, batch 128, the full
60k training set, images kept as uint8 and scaled per batch, a fresh permutation each epoch.
PyTorch runs eagerly, as its users write it. dl_jax's time is `train/seconds` of `train.fit`,
what sequence_mnist.py writes to metrics.jsonl (compilation excluded), for `--cells` (flax's
`LSTMCell` and `OptimizedLSTMCell`). The sides alternate, round by round, and the first epoch of
every run is a warm-up that is not counted.
"""

import dataclasses
import json
from pathlib import Path

from compare import (
    alternate,
    jax_train_and_test,
    summary,
    torch_side,
    torch_train_and_test,
    torch_version,
)

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    cells: tuple[str, ...] = ("optimized_lstm", "lstm")  # the flax cells to time
    epochs: int = 2  # timed epochs per side per round, after one untimed warm-up epoch
    rounds: int = 3  # alternating rounds of (each dl_jax cell, PyTorch)
    out: str | None = None  # also write the results here as JSON
    torch_python: str | None = None  # a Python with PyTorch to run its side, if this one has none


def jax_epochs(splits, cell: str, epochs: int, seed: int):
    """dl_jax's training loop, as sequence_mnist.py runs it: per-epoch seconds, test accuracy."""
    from dl_jax import models, optim
    from dl_jax.config import ModelConfig

    model = models.build(ModelConfig(name="rnn", cell=cell, hidden=128))
    return jax_train_and_test(model, optim.make_optimizer("adam", 1e-3), splits, epochs, seed)


def torch_epochs(splits, epochs: int, seed: int):
    """The same training in eager PyTorch: per-epoch seconds and final test accuracy."""
    import torch

    class RowLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
            self.output = torch.nn.Linear(128, 10)

        def forward(self, x):  # [B, 28, 28]
            h, _ = self.lstm(x)
            return self.output(h[:, -1])

    torch.manual_seed(seed)
    images = torch.from_numpy(splits.train["image"][..., 0].copy())
    labels = torch.from_numpy(splits.train["label"]).long()
    model = RowLSTM()
    test_images = torch.from_numpy(splits.test["image"][..., 0].copy())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return torch_train_and_test(
        model, opt, images, labels, test_images, splits.test["label"], epochs
    )


def main(cfg: Config) -> dict:
    import jax

    from dl_jax import data

    splits = data.load(dir=cfg.data_dir)
    sides = {
        f"dl_jax {cell}": (lambda e, s, c=cell: jax_epochs(splits, c, e, s)) for cell in cfg.cells
    }
    sides["pytorch"] = torch_side(torch_epochs, splits, cfg.data_dir, cfg.torch_python)
    rows = summary(*alternate(sides, cfg.rounds, cfg.epochs))
    results = {
        "machine": jax.devices()[0].device_kind,
        "versions": {"jax": jax.__version__, **torch_version(cfg.torch_python)},
        "epochs_per_run": 1 + cfg.epochs,
        "rounds": cfg.rounds,
        "sides": rows,
    }
    print(f"\n{'':24s}{'median s/epoch':>16s}{'best':>8s}{'accuracy':>10s}{'vs PyTorch':>12s}")
    for side, row in rows.items():
        speedup = rows["pytorch"]["median_s"] / row["median_s"]
        print(f"  {side:22s}{row['median_s']:16.2f}{row['min_s']:8.2f}"
              f"{100 * row['final_test_accuracy']:9.2f}%{speedup:11.2f}x")  # fmt: skip
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
