"""Epoch time of the MNIST MLP (784-128-64-10, ReLU, Adam 1e-3, batch 128): dl_jax against PyTorch.

    pip install torch==2.13.0   # the CPU build; not a dl_jax dependency; or, where this Python
                                # has no PyTorch wheel, --torch_python=OTHER/bin/python
    python bench/mlp_epoch.py --data_dir=../shared/data/mnist

Both sides train the same model on the full 60k training set with the images kept as uint8 in
memory, scaled per batch, and a fresh permutation each epoch; PyTorch runs eagerly, as its users
write it. The two alternate, round by round, so drift in machine load touches both alike; the
first epoch of every run is a warm-up and is not counted. It also
measures the machine's fp32 matmul peak (jitted 2048x2048 `a @ a`) and reports useful FLOP/s:
6 FLOP per weight per example for forward and backward, about 0.66 MFLOP per example.
"""

import dataclasses
import json
import time
from pathlib import Path

from compare import (
    alternate,
    jax_train_and_test,
    torch_side,
    torch_train_and_test,
    torch_version,
)

from dl_jax import cli

FEATURES = (128, 64, 10)


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    epochs: int = 4  # timed epochs per framework per round, after one untimed warm-up epoch
    rounds: int = 3  # alternating rounds of (dl_jax, PyTorch)
    out: str | None = None  # also write the results here as JSON
    torch_python: str | None = None  # a Python with PyTorch to run its side, if this one has none


def flop_per_example() -> int:
    """6 FLOP per weight (2 forward, 4 backward), the usual estimate; biases are not counted."""
    widths = (784, *FEATURES)  # weights: 784*128 + 128*64 + 64*10 = 109,184
    return 6 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def matmul_peak(n: int = 2048, repeats: int = 30) -> tuple[float, float]:
    """Best and median fp32 FLOP/s of a jitted n x n matmul."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    matmul(a).block_until_ready()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / min(seconds), 2 * n**3 / float(np.median(seconds))


def jax_epochs(splits, epochs: int, seed: int) -> tuple[list[float], float]:
    """dl_jax's own training loop: per-epoch train seconds and final test accuracy."""
    from dl_jax import optim
    from dl_jax.models import MLP

    tx = optim.make_optimizer("adam", 1e-3)
    return jax_train_and_test(MLP(FEATURES, "relu"), tx, splits, epochs, seed)


def torch_epochs(splits, epochs: int, seed: int) -> tuple[list[float], float]:
    """The same training in eager PyTorch: per-epoch seconds and final test accuracy."""
    import torch

    torch.manual_seed(seed)
    images = torch.from_numpy(splits.train["image"].reshape(-1, 784).copy())
    labels = torch.from_numpy(splits.train["label"]).long()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    test_images = torch.from_numpy(splits.test["image"].reshape(-1, 784).copy())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return torch_train_and_test(
        model, opt, images, labels, test_images, splits.test["label"], epochs
    )


def main(cfg: Config) -> dict:
    import jax
    import numpy as np

    from dl_jax import data

    splits = data.load(dir=cfg.data_dir)
    peak_best, peak_median = matmul_peak()
    sides = {
        "dl_jax": lambda epochs, seed: jax_epochs(splits, epochs, seed),
        "pytorch": torch_side(torch_epochs, splits, cfg.data_dir, cfg.torch_python),
    }
    times, accuracy = alternate(sides, cfg.rounds, cfg.epochs, digits=3)

    examples = (data.num_examples(splits.train) // 128) * 128
    results = {
        "machine": jax.devices()[0].device_kind,
        "versions": {"jax": jax.__version__, **torch_version(cfg.torch_python)},
        "matmul_peak_gflops": {"best": peak_best / 1e9, "median": peak_median / 1e9},
    }
    print(
        f"\nfp32 matmul peak (jitted 2048^2 a @ a): best {peak_best / 1e9:.1f}, "
        f"median {peak_median / 1e9:.1f} GFLOP/s"
    )
    print(f"{'':10s}{'s/epoch':>20s}{'examples/s':>12s}{'GFLOP/s':>10s}{'of peak':>9s}")
    for name, seconds in times.items():
        row = {"epoch_s": seconds, "final_test_accuracy": accuracy[name]}
        for stat, epoch_s, peak in (
            ("median", np.median(seconds), peak_median),
            ("min", np.min(seconds), peak_best),
        ):
            flops = examples * flop_per_example() / epoch_s
            row[stat] = {
                "epoch_s": float(epoch_s),
                "useful_gflops": flops / 1e9,
                "fraction_of_peak": flops / peak,
            }
            print(
                f"{name:10s}{stat:>10s}{epoch_s:10.3f}{examples / epoch_s:12.0f}"
                f"{flops / 1e9:10.1f}{flops / peak:9.0%}"
            )
        results[name] = row
    speedup = results["pytorch"]["median"]["epoch_s"] / results["dl_jax"]["median"]["epoch_s"]
    results["speedup_median"] = speedup
    print(
        f"dl_jax is {speedup:.2f}x faster than PyTorch eager per epoch (medians); "
        "fraction of peak: median epoch vs median peak, best epoch vs best peak"
    )
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
