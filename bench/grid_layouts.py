"""How the grid's layout settings change its speed: --grid.cells_per_pass and --grid.workers.

    python bench/grid_layouts.py --data_dir=../shared/data/mnist

For each recipe kind, trains the default 45-cell grid for one epoch with each layout and prints
the cost per cell and step. One-example steps (`seed_exact`) use the first --examples training
images; minibatch steps (`modern`) use the whole training set.
- one cell per pass, one worker per core: the CPU default
- one cell per pass, one worker
- all cells per pass (the vmap over cells, the GPU/TPU default), one worker
"""

import dataclasses
import os

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    examples: int = 10_000  # training images for the one-example recipe


def main(cfg: Config) -> None:
    from dl_jax import data, sweep
    from dl_jax.config import GridConfig, ModelConfig
    from dl_jax.data import Splits

    full = data.load(dir=cfg.data_dir)
    head = Splits({k: v[: cfg.examples] for k, v in full.train.items()}, full.test, "head")
    cells = len(sweep.grid_cells(GridConfig()))
    cores = len(os.sched_getaffinity(0))
    layouts = [
        (1, cores, "1 cell per pass, 1 worker per core"),
        (1, 1, "1 cell per pass, 1 worker"),
        (cells, 1, f"{cells} cells per pass (vmap), 1 worker"),
    ]
    print(f"default grid: {cells} cells, one epoch; {cores} cores")
    for recipe, splits in (("seed_exact", head), ("modern", full)):
        steps = len(splits.train["label"]) // (1 if recipe == "seed_exact" else 128)
        for per_pass, workers, name in layouts:
            grid = GridConfig(cells_per_pass=per_pass, workers=workers)
            (record,) = sweep.train_grid(grid, recipe, ModelConfig(), splits, epochs=1)
            per_cell_step = record["seconds"] / cells / steps
            print(
                f"{recipe:11s} {name:36s} {record['seconds']:7.1f} s/epoch "
                f"{1e6 * per_cell_step:9.1f} us per cell-step",
                flush=True,
            )


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
