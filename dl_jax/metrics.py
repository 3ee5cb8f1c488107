"""What a run reports: a JSON-lines metrics file, a grid's results.csv and table, TensorBoard
events, a Keras-like line per epoch and a progress bar. Figures are drawn by `dl_jax.plots`."""

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dl_jax import files
from dl_jax.errors import ConfigError


class JsonlWriter:
    """Appends one JSON object per line, synced at once, so a crash loses nothing written."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict) -> None:
        files.append(self.path, json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """All records of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def keep_epochs(path: Path, epochs: int) -> None:
    """Cut a metrics.jsonl or results.csv back to its first `epochs` epochs, before a resume.

    A run resumed from a checkpoint repeats whatever it did after that checkpoint, so the records
    written since are dropped, and so is a last line that a crash cut short (it has no newline).
    A CSV keeps its header.
    """
    path = Path(path)
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
    if path.suffix == ".csv":
        epoch_column = next(csv.reader(lines[:1]), ["epoch"]).index("epoch")
        kept = lines[:1] + [
            row for row in lines[1:] if int(next(csv.reader([row]))[epoch_column]) <= epochs
        ]
    else:
        kept = [line for line in lines if json.loads(line)["epoch"] <= epochs]
    with files.replacing(path) as tmp:
        tmp.write_text("".join(kept))


def progress(total: int, desc: str, initial: int = 0, show: bool = True) -> tqdm:
    """A progress bar with ETA on stderr; hidden when stderr is not a terminal (CI logs), and
    when not `show`n (a multi-host run's other processes)."""
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        unit="step",
        leave=False,
        dynamic_ncols=True,
        disable=None if show else True,
        file=sys.stderr,
    )


def format_epoch(record: dict, epochs: int) -> str:
    """`Epoch 3/10 - 0.45s - loss: 0.0712 - test_loss: 0.0843 - test_accuracy: 0.9751`: the
    training loss, then every test metric of the record but its time."""
    parts = [f"Epoch {record['epoch']}/{epochs}", f"{record['train/seconds']:.2f}s"]
    keys = ["train/loss", *(k for k in record if k.startswith("test/") and k != "test/seconds")]
    for key in keys:
        label = "loss" if key == "train/loss" else key.replace("/", "_")
        value = record[key]
        parts.append(f"{label}: {value:.4f}" if math.isfinite(value) else f"{label}: {value}")
    return " - ".join(parts)


class CsvWriter:
    """Appends rows to a CSV file, the header first when the file is new; one write per call."""

    def __init__(self, path: Path, fieldnames: Sequence[str]):
        self.path, self.fieldnames = Path(path), list(fieldnames)

    def write(self, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, self.fieldnames, lineterminator="\n")
        if not self.path.exists() or self.path.stat().st_size == 0:
            writer.writeheader()
        writer.writerows(rows)
        files.append(self.path, text.getvalue())


def require_tensorboard() -> None:
    """Fail early, with the command to fix it, when tensorboardX is not installed."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--log.tensorboard=True needs tensorboardX: pip install -e '.[tensorboard]'"
        ) from None


class TensorBoardWriter:
    """Scalars per epoch as TensorBoard event files, through tensorboardX (no TensorFlow).

    `purge_step` hides events of that epoch and later left by an interrupted run, which a resumed
    run writes again.
    """

    def __init__(self, logdir: Path, purge_step: int):
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        with files.storage_errors(self.logdir):
            self._writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def write(self, epoch: int, scalars: dict[str, float]) -> None:
        with files.storage_errors(self.logdir):  # tensorboardX re-raises its writer's errors
            for tag, value in scalars.items():
                self._writer.add_scalar(tag, value, epoch)
            self._writer.flush()

    def close(self) -> None:
        with files.storage_errors(self.logdir):
            self._writer.close()


# --------------------------------------------------------------------------- grid results
# A grid's results are `cells` (a list with .optimizer, .activation, .learning_rate, .seed) and
# per-epoch records with arrays [C] in the same order (see dl_jax.sweep.train_grid).

GRID_COLUMNS = (
    "optimizer",
    "activation",
    "learning_rate",
    "seed",
    "epoch",
    "train_loss",
    "test_accuracy",
    "diverged",
    "seconds",
)


def grid_rows(cells, record: dict) -> list[dict]:
    """One CSV row per cell for an epoch; a diverged cell has no loss or accuracy (nan)."""
    rows = []
    for i, cell in enumerate(cells):
        diverged = bool(record["diverged"][i])
        rows.append(
            {
                "optimizer": cell.optimizer,
                "activation": cell.activation,
                "learning_rate": cell.learning_rate,
                "seed": cell.seed,
                "epoch": record["epoch"],
                "train_loss": "nan" if diverged else f"{record['train_loss'][i]:.6f}",
                "test_accuracy": "nan" if diverged else f"{record['test_accuracy'][i]:.4f}",
                "diverged": diverged,
                "seconds": f"{record['seconds']:.3f}",
            }
        )
    return rows


def grid_scalars(cells, record: dict) -> dict[str, float]:
    """An epoch of a grid as TensorBoard scalars, one train loss and test accuracy per cell."""
    scalars = {}
    for i, c in enumerate(cells):
        name = f"{c.optimizer}/{c.activation}/lr={c.learning_rate:g}/seed={c.seed}"
        scalars[f"train_loss/{name}"] = float(record["train_loss"][i])
        scalars[f"test_accuracy/{name}"] = float(record["test_accuracy"][i])
    return scalars


def read_grid_records(path: Path, cells) -> list[dict]:
    """The per-epoch records of a grid, read back from its results.csv (rows in cell order)."""
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    records = []
    for epoch in sorted({int(r["epoch"]) for r in rows}):
        mine = [r for r in rows if int(r["epoch"]) == epoch]
        assert len(mine) == len(cells), f"{path}: epoch {epoch} has {len(mine)} rows"
        records.append(
            {
                "epoch": epoch,
                "train_loss": np.array([float(r["train_loss"]) for r in mine]),
                "test_accuracy": np.array([float(r["test_accuracy"]) for r in mine]),
                "diverged": np.array([r["diverged"] == "True" for r in mine]),
                "seconds": float(mine[0]["seconds"]),
            }
        )
    return records


def grid_points(cells, record: dict) -> dict:
    """{(optimizer, activation, learning_rate): (accuracies of the seeds that did not diverge,
    number of seeds)}."""
    points = {}
    for i, cell in enumerate(cells):
        key = (cell.optimizer, cell.activation, cell.learning_rate)
        accuracies, seeds = points.get(key, ([], 0))
        if not record["diverged"][i]:
            accuracies.append(100 * float(record["test_accuracy"][i]))
        points[key] = (accuracies, seeds + 1)
    return points


def grid_axes(cells) -> tuple[list, list, list]:
    """The optimizers, activations and learning rates of a grid, in first-seen order."""
    unique = lambda xs: list(dict.fromkeys(xs))  # noqa: E731  (first-seen order)
    return (
        unique(c.optimizer for c in cells),
        unique(c.activation for c in cells),
        unique(c.learning_rate for c in cells),
    )


def format_point(accuracies: list[float], seeds: int) -> str:
    """`97.12 ± 0.05`, `diverged`, or `96.10 (1/2 diverged)` for one point of the grid."""
    if not accuracies:
        return "diverged"
    text = f"{np.mean(accuracies):.2f}"
    if len(accuracies) > 1:
        text += f" ± {np.std(accuracies):.2f}"
    if len(accuracies) < seeds:
        text += f" ({seeds - len(accuracies)}/{seeds} diverged)"
    return text


def grid_table(cells, record: dict) -> str:
    """Test accuracy (%) of an epoch as Markdown: activations x learning rates, per optimizer."""
    optimizers, activations, rates = grid_axes(cells)
    points = grid_points(cells, record)
    seeds = max(n for _, n in points.values())
    lines = []
    for optimizer in optimizers:
        lines += [
            f"Test accuracy (%) after epoch {record['epoch']}, {optimizer}"
            + (f", mean ± std over {seeds} seeds" if seeds > 1 else "")
            + ":",
            "",
            "| activation | " + " | ".join(f"lr {lr:g}" for lr in rates) + " |",
            "|---" * (len(rates) + 1) + "|",
        ]
        for activation in activations:
            values = [format_point(*points[optimizer, activation, lr]) for lr in rates]
            lines.append(f"| {activation} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)
