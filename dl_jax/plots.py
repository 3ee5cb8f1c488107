"""Figures of a run, written as PNG files: training curves, and a grid's heatmap and curves.

Each function draws on its own `matplotlib.figure.Figure` (no pyplot: no global state, no
display) and writes through `files.replacing`, so a crash never leaves half a PNG.
"""

from pathlib import Path

import numpy as np

from dl_jax import files
from dl_jax.metrics import grid_axes, grid_points


def plot_history(records: list[dict], path: Path) -> None:
    """Train and test loss, and the test accuracies (test/accuracy, or test/token_accuracy and
    test/exact_accuracy, ...), against epoch (records of metrics.jsonl)."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    loss_ax, accuracy_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r["train/loss"] for r in records], marker="o", label="train")
    loss_ax.plot(epochs, [r["test/loss"] for r in records], marker="o", label="test")
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    loss_ax.legend()
    names = [k for k in records[0] if k.startswith("test/") and "accuracy" in k]
    for name in names:
        label = name.removeprefix("test/")
        accuracy_ax.plot(epochs, [100 * r[name] for r in records], marker="o", label=label)
    accuracy_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    if len(names) > 1:
        accuracy_ax.legend()
    for ax in (loss_ax, accuracy_ax):
        ax.grid(alpha=0.3)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    with files.replacing(path) as tmp:
        fig.savefig(tmp, dpi=120)


def _mean_accuracy(points: dict, key) -> float:
    accuracies, _ = points[key]
    return float(np.mean(accuracies)) if accuracies else np.nan


# Colour-bar ticks, as test error (%): accuracy 10, 50, 80, 90, 95, 97, 98, 99, 99.5 and 99.9.
_ERROR_TICKS = (90, 50, 20, 10, 5, 3, 2, 1, 0.5, 0.1)


def plot_heatmap(cells, record: dict, path: Path) -> None:
    """Test accuracy, activation x learning rate (log), one panel per optimizer.

    The colour is the test error on a log scale spanning the results' own range, so that 97%
    and 98% (2.5x less error than 95%) look as different as 50% and 80%; a fixed linear 10-100%
    scale would paint every cell that learned the same yellow. Diverged cells are left blank.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    optimizers, activations, rates = grid_axes(cells)
    points = grid_points(cells, record)
    accuracy = {
        o: np.array([[_mean_accuracy(points, (o, a, lr)) for lr in rates] for a in activations])
        for o in optimizers
    }
    error = {o: 100 - acc for o, acc in accuracy.items()}
    finite = np.concatenate([e[np.isfinite(e)] for e in error.values()])
    low = max(finite.min(), 0.01) if finite.size else 1.0
    high = max(finite.max(), 2 * low) if finite.size else 100.0  # a factor 2 at least
    norm = LogNorm(vmin=low, vmax=high)
    height = (0.55 * len(activations) + 1.2) * len(optimizers)
    fig = Figure(figsize=(max(1.1 * len(rates) + 2.4, 5), height), layout="constrained")
    panels = np.atleast_1d(fig.subplots(len(optimizers), 1))
    for ax, optimizer in zip(panels, optimizers, strict=True):
        image = ax.imshow(
            np.maximum(error[optimizer], norm.vmin), cmap="viridis_r", norm=norm, aspect="auto"
        )
        for (row, col), value in np.ndenumerate(accuracy[optimizer]):
            text = "diverged" if np.isnan(value) else f"{value:.1f}"
            dark = np.isfinite(value) and norm(100 - value) > 0.6  # the dark end of viridis_r
            ax.text(col, row, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(rates)), [f"{lr:g}" for lr in rates])
        ax.set_yticks(range(len(activations)), activations)
        title = f"Test accuracy (%) after epoch {record['epoch']}, {optimizer}"
        ax.set(xlabel="learning rate (log grid)", title=title)
        bar = fig.colorbar(image, ax=ax, label="test accuracy (%), log scale of the error")
        bar.set_ticks([e for e in _ERROR_TICKS if norm.vmin <= e <= norm.vmax])
        bar.ax.invert_yaxis()  # high accuracy at the top
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda e, _: f"{100 - e:g}"))
        bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda e, _: ""))
    _save(fig, path)


def plot_grid_curves(cells, records: list[dict], path: Path) -> None:
    """Test accuracy against epoch for every point, one panel per optimizer and activation.

    A point whose every seed has diverged ends in a cross on the epoch axis.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    optimizers, activations, rates = grid_axes(cells)
    size = (3.2 * len(activations), 2.8 * len(optimizers) + 0.6)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(optimizers), len(activations), squeeze=False, sharey=True)
    colors = colormaps["viridis"](np.linspace(0, 0.95, len(rates)))
    epochs = [r["epoch"] for r in records]
    per_epoch = [grid_points(cells, r) for r in records]
    for o, optimizer in enumerate(optimizers):
        for a, activation in enumerate(activations):
            ax = axes[o, a]
            for lr, color in zip(rates, colors, strict=True):
                values = [_mean_accuracy(p, (optimizer, activation, lr)) for p in per_epoch]
                ax.plot(epochs, values, marker=".", color=color, label=f"{lr:g}")
                if np.isnan(values).any():
                    first = int(np.flatnonzero(np.isnan(values))[0])
                    ax.plot(epochs[first], 0, marker="x", ms=8, mew=2, color=color, clip_on=False)
            ax.set(title=f"{activation}, {optimizer}", xlabel="epoch", ylim=(0, 100))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[o, 0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="gray", marker="x", ls="", ms=8, mew=2))
    labels.append("diverged")
    fig.legend(handles, labels, title="learning rate", loc="outside right")
    _save(fig, path)


def plot_filters(kernel_HWCF: np.ndarray, path: Path, title: str = "First-layer filters") -> None:
    """Each of the F filters of a conv kernel [kh, kw, C, F] as a small image (channel 0 if C > 1).

    Weights are drawn on one diverging scale, symmetric around 0: red excites, blue inhibits.
    """
    from matplotlib.figure import Figure

    kernel = np.asarray(kernel_HWCF)[:, :, 0, :]
    count = kernel.shape[-1]
    cols = min(count, 8)
    rows = -(-count // cols)
    limit = float(np.abs(kernel).max()) or 1.0
    fig = Figure(figsize=(1.1 * cols + 0.8, 1.1 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < count:
            image = ax.imshow(kernel[:, :, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="weight")
    fig.suptitle(f"{title}: {count} of {kernel.shape[0]}x{kernel.shape[1]}")
    _save(fig, path)


def plot_feature_maps(
    image_HWC: np.ndarray, maps: dict[str, np.ndarray], path: Path, label=None, per_layer: int = 8
) -> None:
    """An input image and, a row per layer, the first `per_layer` channels of its feature maps
    (`maps`: layer name -> [H, W, F], in the order of the network)."""
    from matplotlib.figure import Figure

    cols = per_layer + 1
    fig = Figure(figsize=(1.25 * cols, 1.4 * len(maps) + 0.4), layout="constrained")
    axes = fig.subplots(len(maps), cols, squeeze=False)
    for row, (name, fmap_HWF) in enumerate(maps.items()):
        fmap_HWF = np.asarray(fmap_HWF)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.imshow(np.asarray(image_HWC)[:, :, 0], cmap="gray_r")
                ax.set_ylabel(f"{name}\n{'x'.join(map(str, fmap_HWF.shape))}", fontsize=8)
            elif col - 1 < fmap_HWF.shape[-1]:
                ax.imshow(fmap_HWF[:, :, col - 1], cmap="viridis")
                ax.set_title(f"channel {col - 1}", fontsize=7)
            else:
                ax.set_axis_off()
    digit = "" if label is None else f" (a {label})"
    fig.suptitle(f"Feature maps of one test image{digit} after each conv layer")
    _save(fig, path)


def plot_vanishing_gradients(gradients: dict, accuracy: dict, length: int, path: Path) -> None:
    """Two panels: the norm of dL/dx_t against the lag T - t, per cell, at initialization
    (dashed) and trained (solid), on sequences of `length`; and the test accuracy on the memory
    task against the sequence length, per cell.

    `gradients`: {cell: {"initial": [T], "trained": [T]}}; `accuracy`: {cell: {length: acc}}.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5), layout="constrained")
    grad_ax, accuracy_ax = fig.subplots(1, 2)
    for i, (cell, norms) in enumerate(gradients.items()):
        colour = f"C{i}"
        for stage, style in (("initial", "--"), ("trained", "-")):
            lags = np.arange(len(norms[stage]))
            values = np.maximum(np.asarray(norms[stage]), 1e-30)  # 0 on a log scale: the floor
            grad_ax.plot(lags, values, style, color=colour, label=f"{cell}, {stage}")
    grad_ax.set(xlabel="lag T - t (steps back from the last)", ylabel="||dL/dx_t|| (mean)",
                yscale="log", title=f"Gradient reaching each input, T = {length}")  # fmt: skip
    grad_ax.legend(fontsize="small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    markers = "os^vDP*X"
    for i, (cell, by_length) in enumerate(accuracy.items()):
        lengths = sorted(by_length)
        values = [100 * by_length[t] for t in lengths]
        accuracy_ax.plot(lengths, values, marker=markers[i % len(markers)], color=f"C{i}",
                         markersize=9 - i, label=cell)  # fmt: skip
    accuracy_ax.axhline(50, color="grey", lw=0.8, ls=":")
    accuracy_ax.set(xlabel="sequence length T (the bit to recall is T - 1 steps back)",
                    ylabel="test accuracy (%)", ylim=(40, 102), xscale="log",
                    title="Recalling the first bit")  # fmt: skip
    accuracy_ax.legend()
    for ax in (grad_ax, accuracy_ax):
        ax.grid(alpha=0.3)
    _save(fig, path)
