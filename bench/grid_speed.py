"""One-example-per-step training over a grid: dl_jax's compiled grid against the slides' numpy.

    python bench/grid_speed.py --data_dir=../shared/data/mnist

Throughput is measured per cell-epoch: the seconds it takes to push one cell (one activation,
learning rate and seed) through one epoch of 60,000 one-example SGD steps.
- numpy: the slides' procedure (bench/slides_numpy.py), run for --numpy_steps examples and
  scaled to an epoch; once in one process, as the slides run it, and once as two processes in
  parallel (one BLAS thread each), the most a numpy user gets out of two cores.
- dl_jax: the whole grid (default: 5 activations x 9 learning rates = 45 cells) trained for one
  epoch with the `seed_exact` recipe, which applies the same update; the epoch's wall time
  (compilation excluded) divided by the number of cells.
"""

import dataclasses
import json
import multiprocessing
import os
import time
from pathlib import Path

from dl_jax import cli
from dl_jax.config import GridConfig, ModelConfig


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    numpy_steps: int = 6000  # examples the numpy baseline trains per measurement
    grid: GridConfig = GridConfig()  # the dl_jax grid (its activations and learning rates)
    recipe: str = "seed_exact"  # seed_exact (the slides' update) or seed (the true gradient)
    out: str | None = None  # also write the results here as JSON


def numpy_seconds_per_step(data_dir: str, steps: int, offset: int = 0) -> float:
    """Wall seconds per example of the slides' numpy procedure (tanh, learning rate 1)."""
    from slides_numpy import SlideNet

    from dl_jax import data

    train = data.load(dir=data_dir).train
    net = SlideNet(seed=offset)
    start = time.perf_counter()
    for i in range(offset, offset + steps):
        net.train_step(train["image"][i], int(train["label"][i]), "tanh", 1.0)
    return (time.perf_counter() - start) / steps


def _one_blas_thread(data_dir, steps, offset):
    return numpy_seconds_per_step(data_dir, steps, offset)


def numpy_two_processes(data_dir: str, steps: int) -> float:
    """Seconds per example per process, two processes running at once."""
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        per_step = pool.starmap(_one_blas_thread, [(data_dir, steps, 0), (data_dir, steps, steps)])
    return max(per_step)


def main(cfg: Config) -> dict:
    import jax

    from dl_jax import data, sweep

    steps_per_epoch = 60_000
    one = numpy_seconds_per_step(cfg.data_dir, cfg.numpy_steps)
    two = numpy_two_processes(cfg.data_dir, cfg.numpy_steps)
    numpy_one = one * steps_per_epoch  # seconds per cell-epoch
    numpy_two = two * steps_per_epoch / 2  # two cells at a time

    splits = data.load(dir=cfg.data_dir)
    cells = len(sweep.grid_cells(cfg.grid))
    (record,) = sweep.train_grid(cfg.grid, cfg.recipe, ModelConfig(), splits, epochs=1)
    ours = record["seconds"] / cells

    results = {
        "machine": f"{jax.devices()[0].device_kind}, {os.cpu_count()} cores",
        "cells": cells,
        "recipe": cfg.recipe,
        "grid_epoch_seconds": record["seconds"],
        "seconds_per_cell_epoch": {
            "numpy, 1 process": numpy_one,
            "numpy, 2 processes": numpy_two,
            "dl_jax grid": ours,
        },
        "microseconds_per_cell_step": {
            "numpy, 1 process": 1e6 * one,
            "numpy, 2 processes": 1e6 * two / 2,
            "dl_jax grid": 1e6 * ours / steps_per_epoch,
        },
    }
    print(
        f"one-example SGD steps, MNIST 784-128-64-10; dl_jax: {cells} cells, {cfg.recipe}, "
        f"one epoch in {record['seconds']:.1f}s"
    )
    print(f"{'':22s}{'s / cell-epoch':>16s}{'us / cell-step':>16s}{'dl_jax speed-up':>17s}")
    for name, seconds in results["seconds_per_cell_epoch"].items():
        print(
            f"{name:22s}{seconds:16.2f}{1e6 * seconds / steps_per_epoch:16.1f}"
            f"{seconds / ours:16.1f}x"
        )
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
