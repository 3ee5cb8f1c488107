"""Final test accuracy of the reference MLP over several seeds, per learning-rate schedule.

    python bench/mlp_accuracy.py --data_dir=../shared/data/mnist --seeds=5
    python bench/mlp_accuracy.py --pytorch=True   # also PyTorch eager, same recipe, constant rate

784-128-64-10, ReLU, Adam at 1e-3, batch 128, 10 epochs, full MNIST. Prints mean, std, min and
max of the test accuracy after the last epoch, and writes every run's per-epoch record to --out.
"""

import dataclasses
import json
from pathlib import Path

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    seeds: int = 5  # seeds 0 .. seeds-1
    epochs: int = 10  # epochs per run
    schedules: tuple[str, ...] = ("cosine", "constant")  # learning-rate schedules to compare
    pytorch: bool = False  # also run bench/mlp_epoch.py's PyTorch loop (needs torch)
    out: str | None = None  # write all records here as JSON


def dl_jax_run(splits, schedule: str, seed: int, epochs: int) -> list[dict]:
    """Per-epoch records of one run of the reference recipe."""
    from dl_jax import data, optim, parallel, tasks, train
    from dl_jax.config import TrainConfig
    from dl_jax.models import MLP

    steps = train.steps_per_epoch(data.num_examples(splits.train), 128)
    tx = optim.make_optimizer("adam", 1e-3, schedule, total_steps=steps * epochs)
    state = train.create_train_state(
        MLP((128, 64, 10), "relu"),
        tx,
        tasks.ImageClassification(),
        seed,
        tasks.example_batch(splits.train),
    )
    cfg = TrainConfig(epochs=epochs, batch_size=128, seed=seed)
    return [record for _, record in train.fit(state, splits, cfg, parallel.make_mesh(1))]


def main(cfg: Config) -> dict:
    import numpy as np

    from dl_jax import data

    splits = data.load(dir=cfg.data_dir)
    runs = {}
    for schedule in cfg.schedules:
        runs[f"dl_jax, {schedule}"] = [
            dl_jax_run(splits, schedule, seed, cfg.epochs) for seed in range(cfg.seeds)
        ]
    final = {name: [records[-1]["test/accuracy"] for records in rs] for name, rs in runs.items()}
    if cfg.pytorch:
        from mlp_epoch import torch_epochs

        final["pytorch, constant"] = [
            torch_epochs(splits, cfg.epochs, seed)[1] for seed in range(cfg.seeds)
        ]

    print(f"test accuracy after {cfg.epochs} epochs, {cfg.seeds} seeds")
    print(f"{'':22s}{'mean':>8s}{'std':>8s}{'min':>8s}{'max':>8s}   per seed")
    for name, accs in final.items():
        a = 100 * np.asarray(accs)
        print(
            f"{name:22s}{a.mean():8.2f}{a.std():8.2f}{a.min():8.2f}{a.max():8.2f}   "
            + " ".join(f"{x:.2f}" for x in a)
        )
    if cfg.out:
        Path(cfg.out).write_text(json.dumps({"final": final, "runs": runs}, indent=1) + "\n")
    return final


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
