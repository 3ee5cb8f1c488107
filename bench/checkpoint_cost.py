"""What checkpointing costs: epoch wall time with a save at every chunk boundary, and without.

    python bench/checkpoint_cost.py --data_dir=../shared/data/mnist

"every chunk" saves after each compiled chunk (`--checkpoint.every_steps=1`): 5 saves an epoch
for the MLP (468 steps in chunks of 100) and for the modern grid (45 cells). "end only" saves
once, after the last epoch. The time is the wall time from one epoch's record to the next, so it
includes the saves at the epoch's end and its evaluation.
"""

import dataclasses
import tempfile
import time
from pathlib import Path

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    mlp_epochs: int = 6  # epochs of the MLP per setting (the first is not counted)
    grid_epochs: int = 3  # epochs of the grid per setting (the first is not counted)


def epoch_times(records) -> list[float]:
    """Wall seconds between consecutive records, from the second on."""
    stamps = [time.perf_counter() for _ in records]
    return [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)]


def mlp(splits, epochs: int, checkpoint_cfg, workdir: Path) -> list[float]:
    from dl_jax import optim, parallel, tasks, train
    from dl_jax.checkpoint import Checkpointer
    from dl_jax.config import TrainConfig
    from dl_jax.models import MLP

    mesh = parallel.make_mesh(1)
    state = train.create_train_state(
        MLP((128, 64, 10), "relu"),
        optim.make_optimizer("adam", 1e-3),
        tasks.ImageClassification(),
        0,
        tasks.example_batch(splits.train),
    )
    with Checkpointer(workdir, checkpoint_cfg) as checkpointer:
        records = train.fit(
            state, splits, TrainConfig(epochs=epochs), mesh, checkpointer=checkpointer
        )
        return epoch_times(records)


def grid(splits, epochs: int, checkpoint_cfg, workdir: Path) -> list[float]:
    from dl_jax import sweep
    from dl_jax.checkpoint import Checkpointer
    from dl_jax.config import GridConfig

    with Checkpointer(workdir, checkpoint_cfg) as checkpointer:
        records = sweep.train_grid(
            GridConfig(), "modern", (128, 64, 10), splits, epochs, checkpointer=checkpointer
        )
        return epoch_times(records)


def main(cfg: Config) -> None:
    import numpy as np

    from dl_jax import data
    from dl_jax.config import CheckpointConfig

    splits = data.load(dir=cfg.data_dir)
    settings = {
        "end only": CheckpointConfig(every_steps=0, every_minutes=0),
        "every chunk": CheckpointConfig(every_steps=1, every_minutes=0),
    }
    print(f"{'':18s}{'checkpoints':>14s}{'s / epoch':>11s}{'saves / epoch':>15s}{'cost':>8s}")
    for name, run, epochs in (
        ("MLP", mlp, cfg.mlp_epochs),
        ("grid, 45 cells", grid, cfg.grid_epochs),
    ):
        medians = {}
        for setting, checkpoint_cfg in settings.items():
            with tempfile.TemporaryDirectory() as workdir:
                medians[setting] = float(
                    np.median(run(splits, epochs, checkpoint_cfg, Path(workdir)))
                )
        for setting, seconds in medians.items():
            cost = seconds / medians["end only"] - 1
            print(
                f"{name:18s}{setting:>14s}{seconds:11.3f}{5 if setting == 'every chunk' else 0:15d}"
                f"{cost:+8.1%}"
            )


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
