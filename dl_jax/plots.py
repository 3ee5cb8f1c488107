"""Figures, written as PNG files: a run's training curves, a grid's heatmap and curves, filters
and feature maps, the vanishing gradient; and the pictures of a trained model: test digits with
their predictions, a confusion matrix, predictions and confidences on noise, decision
boundaries, and the activation functions with their derivatives.

Each function draws on its own `matplotlib.figure.Figure` (no pyplot: no global state, no
display) and writes through `files.replacing`, so a crash never leaves half a PNG.
"""

from collections.abc import Sequence
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


def _image_range(images: np.ndarray) -> tuple[float, float]:
    """One grey scale for a whole grid: 0-255 for uint8 pixels, else the images' own range."""
    if np.issubdtype(images.dtype, np.integer):
        return 0.0, 255.0
    return float(images.min()), float(images.max())


def _image_grid(images_NHWC, titles, wrong, suptitle: str, path: Path, cols: int) -> None:
    """Grayscale images in rows of `cols`, each with its title; the `wrong` ones framed in red."""
    from matplotlib.figure import Figure

    images = np.asarray(images_NHWC)
    images = images[..., 0] if images.ndim == 4 else images  # NHWC with C = 1, or NHW
    count = len(images)
    cols = max(1, min(cols, count))
    rows = max(1, -(-count // cols))
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    size = (max(1.15 * cols + 0.3, 0.11 * len(suptitle)), (1.05 + 0.18 * lines) * rows + 0.5)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    vmin, vmax = _image_range(images)
    for ax in axes[count:]:
        ax.set_axis_off()
    for ax, image, text, flagged in zip(axes, images, titles, wrong, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(text, fontsize=8, color="red" if flagged else "black")
        frame = {"color": "red", "linewidth": 2} if flagged else {"color": "0.8", "linewidth": 0.5}
        for spine in ax.spines.values():
            spine.set(**frame)
    fig.suptitle(suptitle)
    _save(fig, path)


def plot_digits(
    images_NHWC: np.ndarray,
    labels_N: np.ndarray,
    predictions_N: np.ndarray,
    path: Path,
    confidences_N: np.ndarray | None = None,
    title: str = "Test digits",
    max_images: int = 40,
    cols: int = 10,
) -> None:
    """The first `max_images` digits, each titled "prediction (true label)" and, given the top
    softmax probabilities `confidences_N`, the prediction's probability; misclassified ones in red.
    """
    count = min(len(images_NHWC), max_images)
    labels, predictions = np.asarray(labels_N)[:count], np.asarray(predictions_N)[:count]
    titles = [f"{p} (true {t})" for p, t in zip(predictions, labels, strict=True)]
    if confidences_N is not None:
        confidences = np.asarray(confidences_N)[:count]
        titles = [f"{s}\n{100 * c:.1f}%" for s, c in zip(titles, confidences, strict=True)]
    wrong = predictions != labels
    suptitle = f"{title}: prediction (true label), {wrong.sum()} of {count} wrong (red)"
    _image_grid(np.asarray(images_NHWC)[:count], titles, wrong, suptitle, path, cols)


def plot_noise_predictions(
    images_NHWC: np.ndarray,
    predictions_N: np.ndarray,
    confidences_N: np.ndarray,
    path: Path,
    title: str = "Predictions on random noise",
    max_images: int = 20,
    cols: int = 10,
) -> None:
    """The first `max_images` noise images, each titled with the class predicted and its softmax
    probability; the title gives the mean probability over all N."""
    count = min(len(images_NHWC), max_images)
    predictions, confidences = np.asarray(predictions_N), np.asarray(confidences_N)
    titles = [
        f"predicted {p}\n{100 * c:.1f}%"
        for p, c in zip(predictions[:count], confidences[:count], strict=True)
    ]
    mean = 100 * float(np.mean(confidences))
    suptitle = f"{title}: mean top probability {mean:.1f}% over {len(confidences)} images"
    _image_grid(np.asarray(images_NHWC)[:count], titles, [False] * count, suptitle, path, cols)


def plot_confusion_matrix(
    labels_N: np.ndarray,
    predictions_N: np.ndarray,
    path: Path,
    num_classes: int = 10,
    title: str = "Confusion matrix",
) -> None:
    """Counts of (true, predicted) pairs, true on rows; colour on a log scale so that the few
    errors show beside the full diagonal, and the accuracy in the title."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    labels, predictions = np.asarray(labels_N), np.asarray(predictions_N)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    accuracy = 100 * np.trace(counts) / max(counts.sum(), 1)
    norm = LogNorm(vmin=1, vmax=max(counts.max(), 10))
    size = 0.55 * num_classes + 1.8
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_equal(counts, 0), cmap="Blues", norm=norm)
    for (row, col), value in np.ndenumerate(counts):
        dark = value > 0 and norm(value) > 0.6  # the dark end of Blues
        colour = "white" if dark else ("0.6" if value == 0 else "black")
        ax.text(col, row, str(value), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(num_classes))
    ax.set_yticks(range(num_classes))
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(f"{title}: accuracy {accuracy:.2f}% of {counts.sum()}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="count (log scale)")
    _save(fig, path)


# The hidden-layer activations of the slides, as drawn by `plot_activations`.
PLOTTED_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")


def plot_activations(names: Sequence[str], path: Path) -> None:
    """Each activation f (solid) and its derivative f' from `jax.grad` (dashed) over [-4, 4],
    one panel per name (e.g. `PLOTTED_ACTIVATIONS`)."""
    import jax
    import jax.numpy as jnp
    from matplotlib.figure import Figure

    from dl_jax.activations import get_activation

    z = jnp.linspace(-4.0, 4.0, 801)
    cols = min(len(names), 5)
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.0 * cols, 2.7 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    for ax, name in zip(axes, names, strict=False):
        f = get_activation(name)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.plot(z, f(z), color="C0", lw=2, label="f(z)")
        ax.plot(z, jax.vmap(jax.grad(f))(z), "--", color="C3", lw=2, label="f'(z), jax.grad")
        ax.set(title=name, xlabel="z", xlim=(-4, 4))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="upper left")
    fig.suptitle("Activations and their derivatives")
    _save(fig, path)


def plot_confidence_histograms(
    models: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    title: str = "Top softmax probability: random noise vs real test digits",
) -> None:
    """Per model (name -> (noise_confidences_N, real_confidences_M), top softmax probabilities
    in [0, 1]), the two histograms overlaid, as the share of each set per bin."""
    from matplotlib.figure import Figure

    bins = np.linspace(0, 1, 21)
    cols = min(len(models), 4)
    rows = -(-len(models) // cols)
    size = (max(3.6 * cols + 0.3, 0.11 * len(title)), 3.0 * rows + 0.5)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axes[len(models) :]:
        ax.set_axis_off()
    for ax, (name, (noise, real)) in zip(axes, models.items(), strict=False):
        for values, label, colour in ((noise, "noise", "C3"), (real, "real digits", "C0")):
            values = np.asarray(values, dtype=np.float64)
            weights = np.full(len(values), 100 / max(len(values), 1))
            label = f"{label}, mean {100 * values.mean():.1f}%"
            ax.hist(values, bins=bins, weights=weights, color=colour, alpha=0.45, label=label)
            ax.hist(values, bins=bins, weights=weights, color=colour, histtype="step", lw=1.5)
        ax.set(title=name, xlabel="top softmax probability", xlim=(0, 1))
        ax.legend(fontsize="small", loc="upper left")
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel("share of images (%)")
    fig.suptitle(title)
    _save(fig, path)


def plot_decision_boundaries(
    cases: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    title: str | None = None,
    class_names: tuple[str, str] | None = None,
    max_points: int = 400,
) -> None:
    """Binary classifiers on two features in [-1, 1]^2, one panel per case, side by side.

    Args:
      cases: (panel title, probabilities_GG, x_N2, y_N) per panel. probabilities_GG[i, j] is the
        predicted probability of the second class (the larger of the two labels in y_N) at
        f1 = linspace(-1, 1, G)[j], f2 = linspace(-1, 1, G)[i]: rows run over f2, columns over
        f1. x_N2 are the points' (f1, f2), y_N their two-valued labels.
      path: the PNG to write.
      title: the figure's title, if any.
      class_names: the two classes as shown (default: the labels in y_N, smaller first).
      max_points: at most this many points per panel are drawn (a fixed random subset).
    """
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    # A pale background, so that the points, in the strong ends of the same colours, stand out.
    cmap = LinearSegmentedColormap.from_list("pale_rdbu", ["#f4a582", "#ffffff", "#92c5de"])
    cols = min(len(cases), 4)
    rows = -(-len(cases) // cols)
    height = 3.1 * rows + (0.3 if title else 0)
    width = max(3.1 * cols + 1.1, 0.11 * len(title or ""))
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(cases) :]:
        ax.set_axis_off()
    rng = np.random.default_rng(0)
    for ax, (name, probabilities_GG, x_N2, y_N) in zip(axes, cases, strict=False):
        probabilities = np.asarray(probabilities_GG, dtype=np.float64)
        x, y = np.asarray(x_N2), np.asarray(y_N)
        classes = np.unique(y)
        names = class_names or tuple(str(c) for c in classes)
        image = ax.imshow(probabilities, extent=(-1, 1, -1, 1), origin="lower", cmap=cmap,
                          vmin=0, vmax=1, interpolation="bilinear")  # fmt: skip
        if probabilities.min() < 0.5 < probabilities.max():
            f1, f2 = (np.linspace(-1, 1, n) for n in probabilities.shape[::-1])
            ax.contour(f1, f2, probabilities, levels=[0.5], colors="black", linewidths=1.5)
        shown = rng.permutation(len(x))[:max_points]
        for c, colour, marker, label in zip(
            classes, ("#b2182b", "#2166ac"), ("o", "^"), names, strict=False
        ):
            points = x[shown][y[shown] == c]
            ax.scatter(points[:, 0], points[:, 1], s=18, c=colour, marker=marker,
                       edgecolors="white", linewidths=0.4, label=f"class {label}")  # fmt: skip
        ax.set(xlabel="f1", ylabel="f2", xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    axes[0].legend(fontsize="small", loc="upper right", framealpha=0.8)
    second = class_names[1] if class_names else str(np.unique(cases[0][3])[-1])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"P(class {second}); black: 0.5")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_perceptron(runs: dict, path: Path) -> None:
    """The perceptron rule's mistakes per epoch on each data set, then each set's points (2
    features) with the line its final weights draw, w0 + w1 f1 + w2 f2 = 0. `runs` maps a name
    to (x_N2, y_N in {-1, +1}, a `perceptron.PerceptronResult`)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * (len(runs) + 1), 3.6), layout="constrained")
    mistakes_ax, *point_axes = fig.subplots(1, len(runs) + 1)
    for (name, (x_N2, y_N, result)), ax in zip(runs.items(), point_axes, strict=True):
        mistakes_E = np.asarray(result.mistakes_E)
        epochs = np.arange(1, len(mistakes_E) + 1)
        mistakes_ax.plot(epochs, mistakes_E, marker="o", label=name)
        x_N2, y_N, w_A = np.asarray(x_N2), np.asarray(y_N), np.asarray(result.w_A)
        for label, colour in ((1, "tab:orange"), (-1, "tab:blue")):
            ax.scatter(*x_N2[y_N == label].T, s=12 if len(x_N2) > 20 else 80, color=colour,
                       label=f"y = {label:+d}")  # fmt: skip
        low, high = x_N2.min() - 0.25, x_N2.max() + 0.25
        f1 = np.linspace(low, high, 2)
        if abs(w_A[2]) > 1e-12:
            ax.plot(f1, -(w_A[0] + w_A[1] * f1) / w_A[2], color="black", label="final weights")
        ax.set(xlim=(low, high), ylim=(low, high), xlabel="f1", ylabel="f2",
               title=f"{name}: {mistakes_E[-1]} mistakes in the last epoch")  # fmt: skip
        ax.legend(fontsize=7, loc="lower left")
    mistakes_ax.set(xlabel="epoch", ylabel="mistakes (updates)", title="Perceptron rule")
    mistakes_ax.legend()
    mistakes_ax.grid(alpha=0.3)
    _save(fig, path)
