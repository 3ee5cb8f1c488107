"""The same short runs on whichever stack runs this script, to compare stacks (JAX versions).

    python bench/stack_results.py --out=docs/results/stack_jax0.10.2.json
    python bench/stack_results.py --out=docs/results/stack_jax0.12.0.1.json \\
        --against=docs/results/stack_jax0.10.2.json

Each run is an experiment script started as a user starts it (a subprocess of this interpreter,
in a fresh work directory): the default activation x learning-rate grid on the bundled sample
(the README's first command), mnist_mlp and LeNet-5 on full MNIST, the LSTM on sequential MNIST
and the seq2seq addition model, each cut short. What is kept is every number of the last
metrics.jsonl row except its seconds, and for the grid every cell's last results.csv row. With
--against, the two stacks are printed side by side and every number that differs is listed.
"""

import csv
import dataclasses
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from dl_jax import cli
from dl_jax.provenance import PACKAGES  # the versions a run's config.json records

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    out: str | None = None  # write this stack's results here as JSON
    against: str | None = None  # another stack's JSON, to compare with


def runs(data_dir: str) -> dict[str, list[str]]:
    """Each short run: the script and its options."""
    mnist = f"--data.dir={data_dir}"
    return {
        "grid (sample, defaults)": ["activation_lr_grid.py", "--data.source=sample"],
        "mnist_mlp (2 epochs)": ["mnist_mlp.py", mnist, "--train.epochs=2"],
        "lenet5 (1 epoch)": ["mnist_cnn.py", mnist, "--model.name=lenet5", "--train.epochs=1"],
        "lstm (1 epoch)": ["sequence_mnist.py", mnist, "--train.epochs=1"],
        "seq2seq (3 epochs)": ["seq2seq.py", "--train.epochs=3"],
    }


def run(script: str, args: list[str], workdir: Path) -> dict[str, float | str]:
    """The numbers one run leaves: its last metrics row, or the grid's last row of every cell."""
    command = [sys.executable, str(EXPERIMENTS / script), *args, f"--workdir={workdir}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[1:])} failed:\n{done.stderr}")
    if script == "activation_lr_grid.py":
        with open(workdir / "results.csv") as f:
            rows = list(csv.DictReader(f))
        last = max(int(r["epoch"]) for r in rows)
        return {
            f"{r['activation']} lr {r['learning_rate']} {key}": r[key]
            for r in rows
            if int(r["epoch"]) == last
            for key in ("train_loss", "test_accuracy", "diverged")
        }
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return {k: v for k, v in json.loads(lines[-1]).items() if not k.endswith("seconds")}


def compare(mine: dict, theirs: dict) -> None:
    """Print the two stacks' versions and, per run, how many numbers agree and which differ."""
    print(f"\n{'':26s}{'this stack':>24s}{'other stack':>24s}")
    for package in PACKAGES:
        ours, other = (s["versions"].get(package, "-") for s in (mine, theirs))
        print(f"  {package:24s}{ours:>24s}{other:>24s}")
    for name, numbers in mine["runs"].items():
        other = theirs["runs"].get(name, {})
        differ = [k for k, v in numbers.items() if other.get(k) != v]
        print(f"{name}: {len(numbers) - len(differ)} of {len(numbers)} numbers equal")
        for key in differ:
            print(f"    {key:40s}{numbers[key]!s:>24s}{other.get(key)!s:>24s}")


def main(cfg: Config) -> dict:
    results = {"versions": {p: metadata.version(p) for p in PACKAGES}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (script, *args)) in enumerate(runs(cfg.data_dir).items()):
            results["runs"][name] = run(script, args, Path(tmp) / str(i))
            numbers = results["runs"][name]
            print(f"{name}: {numbers if len(numbers) < 10 else f'{len(numbers)} numbers'}")
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    if cfg.against:
        compare(results, json.loads(Path(cfg.against).read_text()))
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
