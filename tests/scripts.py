"""Running the experiment scripts as a user runs them, and reading what they leave behind.

A test helper, not a test: `tests/test_resume.py` and `tests/test_faults.py` use it. Each run is
a subprocess; `tests/interrupt.py` can stop it at the N-th chunk boundary or checkpoint save.
"""

import contextlib
import csv
import importlib.util
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp

from conftest import ROOT

MLP = ROOT / "experiments" / "mnist_mlp.py"
CNN = ROOT / "experiments" / "mnist_cnn.py"
GRID = ROOT / "experiments" / "activation_lr_grid.py"
SEQ = ROOT / "experiments" / "sequence_mnist.py"
SEQ2SEQ = ROOT / "experiments" / "seq2seq.py"
STUDY = ROOT / "experiments" / "vanishing_gradients.py"
INTERRUPT = ROOT / "tests" / "interrupt.py"
# 5,000 images in batches of 64: 78 steps an epoch, in chunks of 20, 20, 20 and 18. With a save
# at every chunk boundary, boundaries 1-4 are epoch 1 (4 is its end, after its metrics line).
MLP_ARGS = [
    "--data.source=sample",
    "--train.epochs=3",
    "--train.batch_size=64",
    "--train.chunk_steps=20",
    "--model.features=(64, 10)",
    "--checkpoint.every_steps=1",
]
# 4 cells; 39 steps of 128 an epoch, in chunks of 10, 10, 10 and 9; boundaries 1-4 are epoch 1.
GRID_ARGS = ["--data.source=sample", "--train.epochs=2", "--grid.activations=tanh,relu",
             "--grid.learning_rates=(0.1, 1.0)", "--grid.chunk_examples=1280",
             "--checkpoint.every_steps=1"]  # fmt: skip
# A small CNN with dropout and shifted images, on the MLP's steps and chunks: its dropout masks
# and shifts must resume too.
CNN_ARGS = [*MLP_ARGS[:-2], "--model.conv_features=(4, 8)", "--model.dense_features=(16, 10)",
            "--model.dropout_rate=0.5", "--train.augment_shift=2",
            "--checkpoint.every_steps=1"]  # fmt: skip
# A small GRU reading the sample's images row by row, on the MLP's steps and chunks, 2 epochs.
SEQ_ARGS = [*MLP_ARGS[:-2], "--train.epochs=2", "--model.cell=gru", "--model.hidden=16",
            "--checkpoint.every_steps=1"]  # fmt: skip
# A small GRU encoder-decoder on 2-digit sums: 31 steps of 64 an epoch, in chunks of 10, 10, 10
# and 1, 2 epochs; its test metrics come from greedy decoding.
SEQ2SEQ_ARGS = ["--task.digits=2", "--task.train_examples=2000", "--task.test_examples=200",
                "--model.cell=gru", "--model.hidden=16", "--train.epochs=2",
                "--train.batch_size=64", "--train.chunk_steps=10",
                "--checkpoint.every_steps=1"]  # fmt: skip
EXPERIMENTS = {"mlp": (MLP, MLP_ARGS), "cnn": (CNN, CNN_ARGS), "grid": (GRID, GRID_ARGS)}
REFERENCES = {
    **EXPERIMENTS,
    "rnn": (SEQ, SEQ_ARGS),
    "seq2seq": (SEQ2SEQ, SEQ2SEQ_ARGS),
}  # the fault story runs EXPERIMENTS only


def load_experiment(script):
    """The module of an experiment script (its `main` and `DEFAULTS`), imported from its path."""
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(script, args, workdir, interrupt=None):
    """Run `script` with `args` on `workdir`, optionally under `tests/interrupt.py`."""
    prefix = [str(INTERRUPT), interrupt] if interrupt else []
    command = [sys.executable, *prefix, str(script), *args, f"--workdir={workdir}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def final_state(workdir):
    """The newest checkpoint's step and state, restored with orbax alone onto this process's
    first device (whatever devices and processes saved it)."""
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    directory = (workdir / "checkpoints").absolute()
    with ocp.CheckpointManager(directory, item_handlers=handlers) as manager:
        step = manager.latest_step()
        abstract = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one),
            manager.item_metadata(step)["state"],
        )
        restored = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
    return step, restored.state


def metrics_without_times(workdir):
    """metrics.jsonl or results.csv, without the columns that hold seconds."""
    if (workdir / "metrics.jsonl").exists():
        records = [
            json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
        ]
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in records]
    rows = list(csv.DictReader((workdir / "results.csv").read_text().splitlines()))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_results(workdir, reference):
    """The same final step, bit-identical parameters and the same metrics as `reference`."""
    step, state = final_state(workdir)
    reference_step, reference_state = final_state(reference)
    assert step == reference_step
    same = jax.tree.map(lambda a, b: np.array_equal(a, b), state, reference_state)
    assert all(jax.tree.leaves(same)), "final parameters differ"
    assert metrics_without_times(workdir) == metrics_without_times(reference)


def write_idx_folder(folder, splits, train=None, test=None):
    """`splits` as the four IDX gz files in `folder`, cut to the first `train` and `test`
    examples (None: all)."""
    from dl_jax import data

    folder.mkdir(exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        images, labels = data.IDX_FILES[split]
        arrays = getattr(splits, split)
        data.write_idx(folder / images, arrays["image"][:n, ..., 0])
        data.write_idx(folder / labels, arrays["label"][:n])
    return folder


def assert_checkpoints_intact(workdir):
    """Every checkpoint on disk restores, and no save is left half-done.

    (Their checksums are checked by the next resume, which warns about any that fails.)
    """
    directory = (workdir / "checkpoints").absolute()
    assert not list(directory.glob("*.orbax-checkpoint-tmp*")), "a partial save was left behind"
    with ocp.CheckpointManager(directory) as manager:
        assert manager.all_steps()
        for step in manager.all_steps():
            manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))


def assert_one_line(result, status, text):
    """The run exited with `status` and printed exactly one line on stderr, containing `text`."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr


def files_of(workdir) -> dict:
    """{relative path: bytes} of every file in `workdir` but the lock (which holds a PID)."""
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for p in sorted(workdir.rglob("*"))
        if p.is_file() and p.name != "run.lock"
    }


@contextlib.contextmanager
def held_by_another_process(workdir):
    """Hold `workdir` from a second process while the block runs; yields that process's PID."""
    code = (
        "import time\nfrom dl_jax import workdir\n"
        f"with workdir.hold({str(workdir)!r}):\n    print('held', flush=True)\n    time.sleep(300)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


class Disk:
    """A small file system to fill up and make read-only: a 16 MiB tmpfs where the tests may
    mount one (as root); elsewhere a plain folder, made read-only with chmod, and filled up by
    injecting orbax's full-disk error into a save (`tests/interrupt.py enospc:1`)."""

    def __init__(self, path, mounted: bool):
        self.path, self.mounted = path, mounted

    def read_only(self, writable=False) -> None:
        if self.mounted:
            options = "remount,rw" if writable else "remount,ro"
            subprocess.run(["mount", "-o", options, str(self.path)], check=True)
            return
        for folder in [self.path, *[p for p in self.path.rglob("*") if p.is_dir()]]:
            folder.chmod(0o755 if writable else 0o555)

    @contextlib.contextmanager
    def full(self, leave: int):
        """Fill all but `leave` bytes while the block runs; yields the interrupt to run under."""
        if not self.mounted:
            yield "enospc:1"
            return
        filler = self.path / "filler"
        filler.write_bytes(b"\0" * max(0, shutil.disk_usage(self.path).free - leave))
        try:
            yield None
        finally:
            filler.unlink()
