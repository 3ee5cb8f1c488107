"""Two real JAX processes on localhost (CPU collectives over gloo): a multi-host run.

Each process gets 2 CPU devices (`JAX_NUM_CPU_DEVICES`, which wins over conftest's XLA_FLAGS);
the run's mesh spans all 4. See ../shared/notes/multihost-on-cpu.md.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from dl_jax import classifier, config
from dl_jax.config import ClassifierConfig, DistConfig
from dl_jax.errors import ConfigError
from scripts import INTERRUPT, MLP, assert_same_results

ARGS = ["--data.source=sample", "--train.epochs=2", "--model.features=(32, 10)",
        "--train.batch_size=64"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(workdir, processes: int, devices_each: int, args=ARGS, interrupt=None):
    """Start `processes` copies of mnist_mlp.py as one run on `workdir` (each under
    tests/interrupt.py with `interrupt`); their Popen objects and (stdout, stderr)."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices_each)}
    dist = []
    if processes > 1:
        dist = [f"--dist.coordinator=127.0.0.1:{free_port()}", f"--dist.num_processes={processes}"]
    popens = [
        subprocess.Popen(
            [
                sys.executable,
                *([str(INTERRUPT), interrupt] if interrupt else []),
                str(MLP),
                *args,
                *dist,
                *([f"--dist.process_id={i}"] if dist else []),
                f"--workdir={workdir}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for i in range(processes)
    ]
    outputs = [p.communicate(timeout=240) for p in popens]
    for p, (_, err) in zip(popens, outputs, strict=True):
        assert p.returncode == (-signal.SIGKILL if interrupt else 0), err
    return popens, outputs


def records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_a_multihost_run_gives_the_one_process_result_and_only_process_0_writes(tmp_path):
    popens, outputs = run_processes(tmp_path / "two", processes=2, devices_each=2)
    one_process = config.parse_overrides(  # here, on 4 of conftest's 8 devices
        ClassifierConfig(), [*ARGS, "--train.num_devices=4", f"--workdir={tmp_path / 'one'}"]
    )
    (tmp_path / "one").mkdir()
    classifier.train_and_evaluate(one_process)
    two, one = records(tmp_path / "two"), records(tmp_path / "one")
    assert len(two) == 2  # one writer: one row per epoch
    for a, b in zip(two, one, strict=True):
        for key in ("train/loss", "test/loss", "test/accuracy"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
    assert (tmp_path / "two" / "run.lock").read_text().strip() == ""  # released by process 0
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        [*(p.name for p in (tmp_path / "one").iterdir()), "run.lock"]
    )
    for out, _ in outputs:  # both processes trained the whole run, on all 4 devices
        assert "devices: 4 x cpu" in out and "Epoch 2/2" in out


@pytest.mark.slow  # three two-process runs: about 40 s
def test_a_killed_multihost_run_resumes_bit_identical_by_the_same_command(tmp_path):
    args = [*ARGS, "--train.chunk_steps=20", "--checkpoint.every_steps=1"]
    run_processes(tmp_path / "whole", 2, 2, args)
    killed, _ = run_processes(tmp_path / "run", 2, 2, args, interrupt="after_save:2")
    assert all(p.returncode == -signal.SIGKILL for p in killed)
    _, outputs = run_processes(tmp_path / "run", 2, 2, args)
    assert all("resuming from step 40" in out for out, _ in outputs)
    assert_same_results(tmp_path / "run", tmp_path / "whole")


def test_multihost_options_are_checked_in_one_line():
    with pytest.raises(ConfigError, match="--dist.coordinator=None is invalid: expected HOST:PORT"):
        DistConfig(num_processes=2)
    with pytest.raises(ConfigError, match="--dist.process_id=2 is invalid: expected 0 to 1"):
        DistConfig(coordinator="h:1", num_processes=2, process_id=2)
