"""The figures: each is a PNG, written whole, with diverged cells drawn."""

import numpy as np

from dl_jax import plots
from dl_jax.sweep import Cell

PNG = b"\x89PNG\r\n\x1a\n"


def grid_records():
    cells = [Cell("sgd", a, lr, 0) for a in ("tanh", "relu") for lr in (0.1, 1.0)]
    records = [
        {
            "epoch": epoch,
            "train_loss": np.array([0.5, 0.3, 0.4, np.nan]),
            "test_accuracy": np.array([0.9, 0.95, 0.97, np.nan]) + epoch / 1000,
            "diverged": np.array([False, False, False, True]),  # relu at lr 1 diverged
            "seconds": 1.0,
        }
        for epoch in (1, 2)
    ]
    return cells, records


def test_grid_figures(tmp_path):
    cells, records = grid_records()
    plots.plot_heatmap(cells, records[-1], tmp_path / "heatmap.png")
    plots.plot_grid_curves(cells, records, tmp_path / "curves.png")
    for name in ("heatmap.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "heatmap.png"]


def test_history_figure(tmp_path):
    records = [
        {"epoch": e, "train/loss": 1 / e, "test/loss": 1.2 / e, "test/accuracy": 0.9 + e / 100}
        for e in (1, 2, 3)
    ]
    plots.plot_history(records, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG


def assert_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG
    assert len(data) > min_bytes  # a figure with something drawn on it, not an empty canvas


def digits_and_predictions(count=24):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(count) % 10
    predictions = labels.copy()
    predictions[[3, 7, 11]] = [5, 1, 0]  # three wrong
    confidences = rng.uniform(0.5, 1.0, count)
    return images, labels, predictions, confidences


def test_digit_figures(tmp_path):
    images, labels, predictions, confidences = digits_and_predictions()
    plots.plot_digits(images, labels, predictions, tmp_path / "digits.png")
    plots.plot_digits(
        images, labels, predictions, tmp_path / "sure.png", confidences_N=confidences, cols=8
    )
    plots.plot_noise_predictions(images[:5], predictions[:5], confidences[:5], tmp_path / "n.png")
    for name in ("digits.png", "sure.png", "n.png"):
        assert_png(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.png", "n.png", "sure.png"]


def test_confusion_matrix_figure(tmp_path):
    _, labels, predictions, _ = digits_and_predictions()
    plots.plot_confusion_matrix(labels, predictions, tmp_path / "confusion.png")
    assert_png(tmp_path / "confusion.png")


def test_activations_figure(tmp_path):
    plots.plot_activations(plots.PLOTTED_ACTIVATIONS, tmp_path / "activations.png")
    assert_png(tmp_path / "activations.png")


def test_confidence_histograms_figure(tmp_path):
    rng = np.random.default_rng(0)
    models = {"mlp": (rng.uniform(0.3, 1, 50), rng.beta(20, 1, 80)), "cnn": (rng.random(30), [1.0])}
    plots.plot_confidence_histograms(models, tmp_path / "confidence.png")
    assert_png(tmp_path / "confidence.png")


def test_decision_boundaries_figure(tmp_path):
    rng = np.random.default_rng(0)
    g = np.linspace(-1, 1, 41)
    f1, f2 = np.meshgrid(g, g)  # rows over f2, columns over f1
    x_N2 = rng.uniform(-1, 1, (600, 2))  # more than the 400 points drawn
    y_N = (x_N2[:, 0] + x_N2[:, 1] > 0).astype(int)
    cases = [
        ("linear", 1 / (1 + np.exp(-4 * (f1 + f2))), x_N2, y_N),
        ("all class 1", np.ones_like(f1), x_N2, y_N),  # no 0.5 contour to draw
    ]
    plots.plot_decision_boundaries(cases, tmp_path / "boundaries.png", title="Two features")
    assert_png(tmp_path / "boundaries.png")
