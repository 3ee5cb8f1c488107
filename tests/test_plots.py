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
