"""Two real JAX processes on localhost (CPU collectives over gloo): a multi-host run.

Each process gets 2 CPU devices (`JAX_NUM_CPU_DEVICES`, which wins over conftest's XLA_FLAGS);
the run's mesh spans all 4. See ../shared/notes/multihost-on-cpu.md.
"""

import csv
import dataclasses
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from dl_jax import classifier, config, data, gradients, metrics, sweep
from dl_jax.config import (
    ClassifierConfig,
    DistConfig,
    GridConfig,
    ModelConfig,
    VanishingConfig,
)
from dl_jax.errors import ConfigError
from scripts import GRID, INTERRUPT, MLP, STUDY, assert_same_results

ARGS = ["--data.source=sample", "--train.epochs=2", "--model.features=(32, 10)",
        "--train.batch_size=64"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(
    workdir, processes, devices_each, args=ARGS, interrupt=None, script=MLP, status=0, extra=None
):
    """Start `processes` copies of `script` as one run on `workdir` (each under
    tests/interrupt.py with `interrupt`, process i with `extra[i]` added to `args`); their Popen
    objects and (stdout, stderr)."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices_each)}
    dist = []
    if processes > 1:
        dist = [f"--dist.coordinator=127.0.0.1:{free_port()}", f"--dist.num_processes={processes}"]
    popens = [
        subprocess.Popen(
            [
                sys.executable,
                *([str(INTERRUPT), interrupt] if interrupt else []),
                str(script),
                *args,
                *(extra or {}).get(i, []),
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
        assert p.returncode == (-signal.SIGKILL if interrupt else status), err
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
    (out_0, _), (out_1, _) = outputs  # both trained the whole run, on all 4 devices
    assert "devices: 4 x cpu" in out_0 and "devices: 4 x cpu" in out_1
    assert "Epoch 2/2" in out_0 and "Epoch" not in out_1  # only process 0 prints epoch lines


GRID_ARGS = ["--data.source=sample", "--train.epochs=2", "--model.features=(32, 10)",
             "--grid.activations=sigmoid,tanh,relu", "--grid.learning_rates=(0.3,)"]  # fmt: skip


def test_a_multihost_grid_trains_each_cell_as_one_process_does_and_process_0_writes(tmp_path):
    # 3 cells on 2 x 2 devices: padded to 4, a cell a device, two on each host.
    _, outputs = run_processes(tmp_path / "two", 2, 2, GRID_ARGS, script=GRID)
    grid = GridConfig(activations=("sigmoid", "tanh", "relu"), learning_rates=(0.3,))
    cells = sweep.grid_cells(grid)
    alone = list(  # here, on one device
        sweep.train_grid(
            dataclasses.replace(grid, num_devices=1),
            "modern",
            ModelConfig(features=(32, 10)),
            data.load(source="sample"),
            epochs=2,
        )
    )
    with open(tmp_path / "two" / "results.csv") as f:
        written = list(csv.DictReader(f))
    expected = [row for record in alone for row in metrics.grid_rows(cells, record)]
    assert len(written) == len(expected) == 6  # one writer: a row per cell and epoch
    for ours, theirs in zip(written, expected, strict=True):  # as written: 6 and 4 decimals
        assert (ours["train_loss"], ours["test_accuracy"]) == (
            theirs["train_loss"], theirs["test_accuracy"])  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoints", "config.json", "curves.png", "heatmap.png", "results.csv", "results.md",
        "run.lock"]  # fmt: skip
    assert "| relu |" in outputs[0][0] and "| relu |" not in outputs[1][0]  # process 0's table

    # Process 0 refuses another grid in that directory; process 1 stops with it, in one line.
    changed = [*GRID_ARGS[:-1], "--grid.learning_rates=(0.1,)"]
    _, outputs = run_processes(tmp_path / "two", 2, 2, changed, script=GRID, status=2)
    assert "grid.learning_rates" in outputs[0][1]
    assert outputs[1][1].strip().splitlines()[-1] == (
        f"error: process 0 could not prepare {tmp_path / 'two'}; its error above says why"
    )


STUDY_ARGS = ["--study.cells=simple", "--study.lengths=(6,)", "--study.gate_biases=(0.0,)",
              "--model.hidden=8", "--task.train_examples=512", "--task.test_examples=64",
              "--train.epochs=2", "--train.batch_size=64"]  # fmt: skip


def test_a_multihost_study_gives_the_one_process_results_and_only_process_0_writes(tmp_path):
    run_processes(tmp_path / "two", 2, 2, STUDY_ARGS, script=STUDY)
    one_process = config.parse_overrides(  # here, on 4 of conftest's 8 devices
        VanishingConfig(), [*STUDY_ARGS, "--train.num_devices=4", f"--workdir={tmp_path / 'one'}"]
    )
    (tmp_path / "one").mkdir()
    gradients.study(one_process)
    two, one = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("two", "one"))
    for what in ("initial", "trained"):
        np.testing.assert_allclose(
            two["gradients"]["simple"][what], one["gradients"]["simple"][what], rtol=1e-5
        )
    np.testing.assert_allclose(two["accuracy"]["simple"]["6"], one["accuracy"]["simple"]["6"])

    def files(root):  # every file but the locks, which only the command-line runs take
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*")
            if p.name != "run.lock" and "checkpoints" not in p.parts
        )  # fmt: skip

    assert files(tmp_path / "two") == files(tmp_path / "one")
    assert (tmp_path / "two" / "simple" / "T6" / "run.lock").exists()  # held by process 0


@pytest.mark.slow  # three two-process runs: about 40 s
@pytest.mark.parametrize(
    "script, args, saved",  # the killed run's second save: chunks of 20 steps, and of 10
    [(MLP, [*ARGS, "--train.chunk_steps=20"], 40),
     (GRID, [*GRID_ARGS, "--grid.chunk_examples=1280"], 20)],
    ids=["mlp", "grid"],
)  # fmt: skip
def test_a_killed_multihost_run_resumes_bit_identical_by_the_same_command(
    script, args, saved, tmp_path
):
    args = [*args, "--checkpoint.every_steps=1"]  # a save at every chunk
    run_processes(tmp_path / "whole", 2, 2, args, script=script)
    killed, _ = run_processes(tmp_path / "run", 2, 2, args, interrupt="after_save:2", script=script)
    assert all(p.returncode == -signal.SIGKILL for p in killed)
    _, outputs = run_processes(tmp_path / "run", 2, 2, args, script=script)
    assert all(f"resuming from step {saved}" in out for out, _ in outputs), outputs
    assert_same_results(tmp_path / "run", tmp_path / "whole")


def test_a_multihost_run_whose_hosts_loaded_different_data_stops_in_one_line(tmp_path):
    other = tmp_path / "idx"  # the sample, with one test label changed
    shutil.copytree(data.SAMPLE_DIR, other)
    labels = other / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    process_1 = {1: ["--data.source=idx", f"--data.dir={other}"]}
    _, outputs = run_processes(tmp_path / "run", 2, 2, status=2, extra=process_1)
    for _, err in outputs:
        assert err.strip().splitlines()[-1] == (
            "error: process(es) 1 loaded other data than process 0 (the sha256 of the decoded "
            "arrays differs); give every host the same files"
        )
    assert not (tmp_path / "run").exists()  # refused before the work directory was touched


def test_multihost_options_are_checked_in_one_line():
    with pytest.raises(ConfigError, match="--dist.coordinator=None is invalid: expected HOST:PORT"):
        DistConfig(num_processes=2)
    with pytest.raises(ConfigError, match="--dist.process_id=2 is invalid: expected 0 to 1"):
        DistConfig(coordinator="h:1", num_processes=2, process_id=2)
