"""Two processes against one, with the same devices: what a multi-host run pays to communicate.

    python bench/multihost.py --data_dir=../shared/data/mnist --out=docs/results/multihost_cpu.json

Each experiment runs twice on this machine, as a user runs it: one process with 2 CPU devices
(`JAX_NUM_CPU_DEVICES=2`), and two processes with 1 device each, joined by `--dist.*` over
loopback (CPU collectives over Gloo). Both train the same run on the same 2-device mesh, and
process 0 writes metrics.jsonl; the time compared is its `train/seconds` per epoch (compilation
excluded), and the two runs' last metrics are compared too.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from dl_jax import cli

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str = "../shared/data/mnist"  # folder of the MNIST IDX gz files
    epochs: int = 2  # epochs of each run
    out: str | None = None  # also write the results here as JSON


def runs(cfg: Config) -> dict[str, list[str]]:
    """Each experiment: its script and options."""
    epochs = f"--train.epochs={cfg.epochs}"
    return {
        "bit_counting (LSTM-64, T <= 20)": ["bit_counting.py", epochs],
        "sequence_mnist (LSTM-128, T = 28)": ["sequence_mnist.py", epochs, "--data.source=sample"],
        "mnist_mlp": ["mnist_mlp.py", epochs, f"--data.dir={cfg.data_dir}"],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(script: str, args: list[str], workdir: Path, processes: int) -> list[dict]:
    """Train with `processes` processes and 2 devices in all; metrics.jsonl's records."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(2 // processes)}
    command = [sys.executable, str(EXPERIMENTS / script), *args, f"--workdir={workdir}"]
    if processes > 1:
        command += [f"--dist.coordinator=127.0.0.1:{free_port()}", "--dist.num_processes=2"]
    popens = [
        subprocess.Popen(
            command + ([f"--dist.process_id={i}"] if processes > 1 else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(processes)
    ]
    for p in popens:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"error: {' '.join(command)} failed:\n{err}")
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def main(cfg: Config) -> dict:
    results = {}
    print(f"{'':36s}{'1 process':>12s}{'2 processes':>13s}{'ratio':>8s}  same metrics")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (script, *args) in runs(cfg).items():
            one, two = (run(script, args, Path(tmp) / f"{script}{n}", n) for n in (1, 2))
            seconds = {n: [r["train/seconds"] for r in rs] for n, rs in ((1, one), (2, two))}
            last = [{k: v for k, v in rs[-1].items() if "seconds" not in k} for rs in (one, two)]
            results[name] = {"one_process_s": seconds[1], "two_processes_s": seconds[2],
                             "last_metrics": last}  # fmt: skip
            best = {n: min(s) for n, s in seconds.items()}
            print(f"{name:36s}{best[1]:11.2f}s{best[2]:12.2f}s{best[2] / best[1]:7.2f}x  "
                  f"{last[0] == last[1]}", flush=True)  # fmt: skip
    print("(the best epoch of each run; train/seconds, compilation excluded)")
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
