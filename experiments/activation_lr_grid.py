"""The activation x learning-rate study: every cell of the grid trained at once, in one program.

    python experiments/activation_lr_grid.py --data.dir=PATH --workdir=runs/grid
    python experiments/activation_lr_grid.py --data.source=sample --train.epochs=2
    python experiments/activation_lr_grid.py --recipe=seed_exact --grid.activations='("tanh",)' \\
        --grid.learning_rates='(1.0,)' --grid.seeds='(0,1,2)' --train.epochs=10

The MLP 784-128-64-10 is trained for every activation, learning rate, seed (and optimizer) of
--grid.* with one of three recipes (dl_jax/recipes.py): `modern` (the default: biases,
minibatches of 128, softmax cross-entropy, SGD), `seed` (the slides' procedure: one example per
step, squared error, no biases) or `seed_exact` (the update the slides' code really applies).

Writes into --workdir: config.json; results.csv (a row per cell and epoch, appended as each
epoch ends); and at the end results.md (the final table), heatmap.png and curves.png.
"""

import dataclasses
from pathlib import Path

from dl_jax import config
from dl_jax.config import DataConfig, GridConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over the training set, for every cell

    def __post_init__(self):
        config.check(self.epochs > 0, "train.epochs", self.epochs, "an int > 0")


@dataclasses.dataclass(frozen=True)
class Config:
    grid: GridConfig = GridConfig()
    recipe: str = "modern"  # modern | seed | seed_exact (see dl_jax/recipes.py)
    features: tuple[int, ...] = (128, 64, 10)  # MLP layer widths; the last is the class count
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    workdir: str = "runs/activation_lr_grid"  # where the results go


def main(cfg: Config) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    import jax
    import numpy as np

    from dl_jax import data, metrics, recipes, sweep

    sweep.check_grid(cfg.grid, recipes.get_recipe(cfg.recipe))
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    cells = sweep.grid_cells(cfg.grid)
    print(f"data: {splits.source}: {len(splits.train['label'])} train, "
          f"{len(splits.test['label'])} test; {len(cells)} cells, recipe {cfg.recipe}; "
          f"{jax.devices()[0].platform}")  # fmt: skip
    epochs = sweep.train_grid(cfg.grid, cfg.recipe, cfg.features, splits, cfg.train.epochs)

    # Everything that can fail on bad input has run; only now touch the work directory.
    workdir = Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config.write_json(cfg, workdir / "config.json")
    (workdir / "results.csv").unlink(missing_ok=True)
    writer = metrics.CsvWriter(workdir / "results.csv", metrics.GRID_COLUMNS)

    records = []
    for record in epochs:
        records.append(record)
        writer.write(metrics.grid_rows(cells, record))
        best = np.where(record["diverged"], -1, record["test_accuracy"]).argmax()
        print(f"Epoch {record['epoch']}/{cfg.train.epochs} - {record['seconds']:.1f}s - best: "
              f"{cells[best].activation} lr {cells[best].learning_rate:g} "
              f"{100 * record['test_accuracy'][best]:.2f}% - diverged: "
              f"{int(record['diverged'].sum())}/{len(cells)}", flush=True)  # fmt: skip

    table = metrics.grid_table(cells, records[-1])
    (workdir / "results.md").write_text(table)
    metrics.plot_heatmap(cells, records[-1], workdir / "heatmap.png")
    metrics.plot_grid_curves(cells, records, workdir / "curves.png")
    total = sum(r["seconds"] for r in records)
    print(f"\n{table}\nTraining took {total:.1f}s for {len(cells)} cells x {len(records)} "
          f"epochs; results in {workdir}/")  # fmt: skip


if __name__ == "__main__":
    config.run(main, Config(), __doc__)
