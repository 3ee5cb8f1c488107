"""What a run reports: a JSON-lines metrics file, a Keras-like line per epoch, a progress bar,
and plots."""

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dl_jax.errors import ConfigError
from dl_jax.files import replacing


class JsonlWriter:
    """Appends one JSON object per line, flushed at once, so a crash loses nothing written."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


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
    with replacing(path) as tmp:
        tmp.write_text("".join(kept))


def progress(total: int, desc: str, initial: int = 0) -> tqdm:
    """A progress bar with ETA on stderr; hidden when stderr is not a terminal (CI logs)."""
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        unit="step",
        leave=False,
        dynamic_ncols=True,
        disable=None,
        file=sys.stderr,
    )


def format_epoch(record: dict, epochs: int) -> str:
    """`Epoch 3/10 - 0.45s - loss: 0.0712 - test_loss: 0.0843 - test_accuracy: 0.9751`."""
    parts = [f"Epoch {record['epoch']}/{epochs}", f"{record['train/seconds']:.2f}s"]
    for key, label in (
        ("train/loss", "loss"),
        ("test/loss", "test_loss"),
        ("test/accuracy", "test_accuracy"),
    ):
        value = record[key]
        parts.append(f"{label}: {value:.4f}" if math.isfinite(value) else f"{label}: {value}")
    return " - ".join(parts)


def plot_history(records: list[dict], path: Path) -> None:
    """Train and test loss, and test accuracy, against epoch, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    loss_ax, accuracy_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["train/loss"] for r in records], marker="o", label="train")
    loss_ax.plot(epochs, [r["test/loss"] for r in records], marker="o", label="test")
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    loss_ax.legend()
    accuracy_ax.plot(epochs, [100 * r["test/accuracy"] for r in records], marker="o")
    accuracy_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (loss_ax, accuracy_ax):
        ax.grid(alpha=0.3)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=120)


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
        with self.path.open("a") as f:
            f.write(text.getvalue())


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

        self._writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def write(self, epoch: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, epoch)
        self._writer.flush()

    def close(self) -> None:
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


def _by_point(cells, record: dict) -> dict:
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


def _axes(cells):
    unique = lambda xs: list(dict.fromkeys(xs))  # noqa: E731  (first-seen order)
    return (
        unique(c.optimizer for c in cells),
        unique(c.activation for c in cells),
        unique(c.learning_rate for c in cells),
    )


def _mean_accuracy(points: dict, key) -> float:
    accuracies, _ = points[key]
    return float(np.mean(accuracies)) if accuracies else np.nan


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
    optimizers, activations, rates = _axes(cells)
    points = _by_point(cells, record)
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


def plot_heatmap(cells, record: dict, path: Path) -> None:
    """Test accuracy as a heatmap, activation x learning rate (log), one panel per optimizer."""
    from matplotlib.figure import Figure

    optimizers, activations, rates = _axes(cells)
    points = _by_point(cells, record)
    height = (0.55 * len(activations) + 1.2) * len(optimizers)
    fig = Figure(figsize=(1.1 * len(rates) + 2, height), layout="constrained")
    panels = np.atleast_1d(fig.subplots(len(optimizers), 1))
    for ax, optimizer in zip(panels, optimizers, strict=True):
        acc = np.array(
            [[_mean_accuracy(points, (optimizer, a, lr)) for lr in rates] for a in activations]
        )
        image = ax.imshow(acc, cmap="viridis", vmin=10, vmax=100, aspect="auto")
        for (row, col), value in np.ndenumerate(acc):
            text = "diverged" if np.isnan(value) else f"{value:.1f}"
            color = "white" if value < 60 else "black"  # nan compares False: black on the blank
            ax.text(col, row, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(rates)), [f"{lr:g}" for lr in rates])
        ax.set_yticks(range(len(activations)), activations)
        title = f"Test accuracy (%) after epoch {record['epoch']}, {optimizer}"
        ax.set(xlabel="learning rate (log grid)", title=title)
        fig.colorbar(image, ax=ax, label="%")
    _save(fig, path)


def plot_grid_curves(cells, records: list[dict], path: Path) -> None:
    """Test accuracy against epoch for every point, one panel per optimizer and activation."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    optimizers, activations, rates = _axes(cells)
    size = (3.2 * len(activations), 2.8 * len(optimizers) + 0.6)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(optimizers), len(activations), squeeze=False, sharey=True)
    colors = colormaps["viridis"](np.linspace(0, 0.95, len(rates)))
    epochs = [r["epoch"] for r in records]
    per_epoch = [_by_point(cells, r) for r in records]
    for o, optimizer in enumerate(optimizers):
        for a, activation in enumerate(activations):
            ax = axes[o, a]
            for lr, color in zip(rates, colors, strict=True):
                values = [_mean_accuracy(p, (optimizer, activation, lr)) for p in per_epoch]
                ax.plot(epochs, values, marker=".", color=color, label=f"{lr:g}")
            ax.set(title=f"{activation}, {optimizer}", xlabel="epoch", ylim=(0, 100))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[o, 0].set_ylabel("test accuracy (%)")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), title="learning rate", loc="outside right")
    _save(fig, path)
