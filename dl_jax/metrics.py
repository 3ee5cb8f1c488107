"""What a run reports: a JSON-lines metrics file, a Keras-like line per epoch, a progress bar,
and plots."""

import json
import math
import sys
from pathlib import Path

from tqdm.auto import tqdm


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


def progress(total: int, desc: str) -> tqdm:
    """A progress bar with ETA on stderr; hidden when stderr is not a terminal (CI logs)."""
    return tqdm(
        total=total,
        desc=desc,
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
    """Train and test loss, and test accuracy, against epoch, as a PNG written atomically."""
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
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
