"""Epoch time of the CNN and LeNet-5 on MNIST: dl_jax (both conv implementations) against PyTorch.

    pip install torch==2.13.0   # the CPU build; not a dl_jax dependency; or, where this Python
                                # has no PyTorch wheel, --torch_python=OTHER/bin/python
    python bench/cnn_epoch.py --data_dir=../shared/data/mnist --out=docs/results/cnn_epoch_cpu.json

For each model (`--models`: cnn, the flax example's network that mnist_cnn.py trains by default,
and lenet5), both sides train the same layers on the full 60k training set, batch 128, SGD with
momentum 0.9 at 0.1 decayed by a cosine, images kept as uint8 and scaled per batch, a fresh
permutation each epoch; PyTorch runs eagerly, as its users write it. dl_jax's time is
`train/seconds` of `train.fit`, the number mnist_cnn.py writes to metrics.jsonl (compilation
excluded). dl_jax with the im2col convolution (the CPU default) and PyTorch alternate, round by
round, and the first epoch of every run is a warm-up that is not counted. `nn.Conv` through
XLA's convolution (`conv_impl=lax`) is 8-9x slower on CPU inside the scanned epoch, so it runs
once, for `--lax_epochs` epochs, all counted.
"""

import dataclasses
import json
from pathlib import Path

from compare import (
    alternate,
    jax_train_and_test,
    summary,
    torch_side,
    torch_train_and_test,
    torch_version,
)

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    models: tuple[str, ...] = ("cnn", "lenet5")  # which networks to time
    epochs: int = 2  # timed epochs per side per round, after one untimed warm-up epoch
    rounds: int = 3  # alternating rounds of (dl_jax im2col, PyTorch)
    lax_epochs: int = 1  # epochs of dl_jax with conv_impl=lax (0: skip it)
    out: str | None = None  # also write the results here as JSON
    torch_python: str | None = None  # a Python with PyTorch to run its side, if this one has none


def jax_epochs(splits, model_name: str, impl: str, epochs: int, seed: int):
    """dl_jax's training loop, as mnist_cnn.py runs it: per-epoch train seconds, test accuracy."""
    from dl_jax import data, models, optim, train
    from dl_jax.config import ModelConfig

    steps = train.steps_per_epoch(data.num_examples(splits.train), 128)
    tx = optim.make_optimizer("momentum", 0.1, "cosine", total_steps=steps * epochs)
    model = models.build(ModelConfig(name=model_name, conv_impl=impl))
    return jax_train_and_test(model, tx, splits, epochs, seed)


def torch_model(name: str):
    """The same layers in PyTorch (NCHW): the flax example's CNN, or LeNet-5 as dl_jax has it."""
    from torch import nn

    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, 10),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(),
        nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )  # fmt: skip


def torch_epochs(splits, model_name: str, epochs: int, seed: int):
    """The same training in eager PyTorch: per-epoch seconds and final test accuracy."""
    import torch

    torch.manual_seed(seed)
    images = torch.from_numpy(splits.train["image"].transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(splits.train["label"]).long()
    model = torch_model(model_name)
    test_images = torch.from_numpy(splits.test["image"].transpose(0, 3, 1, 2).copy())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    steps = len(labels) // 128
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs)
    return torch_train_and_test(
        model, opt, images, labels, test_images, splits.test["label"], epochs, schedule
    )


def main(cfg: Config) -> dict:
    import jax

    from dl_jax import data

    splits = data.load(dir=cfg.data_dir)
    results = {
        "machine": jax.devices()[0].device_kind,
        "versions": {"jax": jax.__version__, **torch_version(cfg.torch_python)},
        "epochs_per_run": 1 + cfg.epochs,
        "rounds": cfg.rounds,
    }
    for name in cfg.models:
        sides = {
            "dl_jax im2col": lambda e, s, n=name: jax_epochs(splits, n, "im2col", e, s),
            "pytorch": torch_side(torch_epochs, splits, cfg.data_dir, cfg.torch_python, name),
        }
        times, accuracy = alternate(sides, cfg.rounds, cfg.epochs, label=f"{name} ")
        if cfg.lax_epochs:
            times["dl_jax lax"], accuracy["dl_jax lax"] = jax_epochs(
                splits, name, "lax", cfg.lax_epochs, 0
            )
            print(f"{name}: dl_jax lax       epochs {times['dl_jax lax']} s", flush=True)
        rows = summary(times, accuracy)
        speedup = rows["pytorch"]["median_s"] / rows["dl_jax im2col"]["median_s"]
        results[name] = {"sides": rows, "speedup_median": speedup}
        print(f"\n{name}: {'median s/epoch':>28s}{'best':>8s}{'accuracy':>10s}")
        for side, row in rows.items():
            print(f"  {side:24s}{row['median_s']:10.2f}{row['min_s']:8.2f}"
                  f"{100 * row['final_test_accuracy']:9.2f}%")  # fmt: skip
        print(f"  dl_jax (im2col) is {speedup:.2f}x faster than PyTorch eager (medians)\n")
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
