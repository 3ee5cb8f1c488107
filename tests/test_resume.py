"""Runs killed at chosen points and resumed end bit-identical to runs that were never stopped.

Each run is a subprocess, started as a user starts it; `tests/interrupt.py` stops it at the
N-th chunk boundary or checkpoint save. Resuming is running the same command again.
"""

import signal
import subprocess
import sys

import pytest

from scripts import (
    CNN,
    CNN_ARGS,
    GRID,
    GRID_ARGS,
    MLP,
    MLP_ARGS,
    SEQ,
    SEQ2SEQ,
    SEQ2SEQ_ARGS,
    SEQ_ARGS,
    assert_same_results,
    final_state,
    metrics_without_times,
    run,
)

# The kill points of the default suite stop a run where only a resume can repair it: a save in
# flight, and an epoch's metrics written before its checkpoint. The others, and the MLP's
# mid-epoch kill and resume of tests/test_faults.py, cover the rest (`pytest --runslow`).
SLOW = pytest.mark.slow
KILL_POINTS = [
    pytest.param("boundary:1", marks=SLOW, id="before the first save"),
    pytest.param("after_save:2", marks=SLOW, id="mid-epoch, after a save"),
    pytest.param("during_save:6", id="during a save (mid-epoch 2)"),
    pytest.param("boundary:4", id="after an epoch's metrics, before its checkpoint"),
    pytest.param("after_save:10", marks=SLOW, id="in the last epoch"),
]
GRID_KILL_POINTS = [
    pytest.param("boundary:1", marks=SLOW),
    pytest.param("after_save:2", marks=SLOW),
    pytest.param("during_save:3", marks=SLOW),  # the MLP's during_save stays
    pytest.param("boundary:4", marks=SLOW),
    pytest.param("after_save:6", marks=SLOW),
]


@pytest.mark.parametrize("interrupt", KILL_POINTS)
def test_killed_single_run_resumes_bit_identical(interrupt, reference, tmp_path):
    killed = run(MLP, MLP_ARGS, tmp_path, interrupt)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if interrupt.startswith("during_save"):  # the save in flight left its temporary folder
        assert list((tmp_path / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
    resumed = run(MLP, MLP_ARGS, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert ("resuming from step" in resumed.stdout) == (interrupt != "boundary:1")
    assert_same_results(tmp_path, reference["mlp"])


@SLOW  # the single runs' kill points cover the loop; test_train checks dropout and shifts
@pytest.mark.parametrize("interrupt", ["during_save:6", "boundary:4"])
def test_killed_cnn_with_dropout_resumes_bit_identical(interrupt, reference, tmp_path):
    killed = run(CNN, CNN_ARGS, tmp_path, interrupt)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(CNN, CNN_ARGS, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stdout
    assert_same_results(tmp_path, reference["cnn"])
    assert (tmp_path / "filters.png").exists() and (tmp_path / "feature_maps.png").exists()


# The single runs' kill points above cover the same loop: an RNN on images, and the
# encoder-decoder on generated data with a task of its own; about 25 s each on a fresh machine.
@SLOW
@pytest.mark.parametrize("name", ["rnn", "seq2seq"])
def test_killed_recurrent_run_resumes_bit_identical(name, reference, tmp_path):
    script, args = {"rnn": (SEQ, SEQ_ARGS), "seq2seq": (SEQ2SEQ, SEQ2SEQ_ARGS)}[name]
    killed = run(script, args, tmp_path, "during_save:6")  # mid-epoch 2
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(script, args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stdout
    assert_same_results(tmp_path, reference[name])
    tables = sorted(p.name for p in reference[name].glob("*.md"))
    assert tables == (["examples.md"] if name == "seq2seq" else [])
    for table in tables:
        assert (tmp_path / table).read_text() == (reference[name] / table).read_text()


@pytest.mark.slow  # test_cnn.py checks that both implementations share one parameter tree
def test_a_cnn_saved_with_one_conv_implementation_resumes_with_the_other(reference, tmp_path):
    # As a run saved on a CPU (im2col) resumes on a GPU or TPU (lax): the same parameter tree.
    im2col = [*CNN_ARGS, "--model.conv_impl=im2col"]
    killed = run(CNN, im2col, tmp_path, "after_save:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(CNN, [*CNN_ARGS, "--model.conv_impl=lax"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step 40" in resumed.stdout
    records = metrics_without_times(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    # The same function, rounded otherwise: with dropout and shifts, the runs drift apart, but
    # the resumed one goes on learning from where the other stopped.
    assert records[2]["train/loss"] < records[0]["train/loss"]
    assert records[2]["test/accuracy"] > 0.8


@pytest.mark.parametrize("interrupt", GRID_KILL_POINTS)
def test_killed_grid_resumes_bit_identical(interrupt, reference, tmp_path):
    killed = run(GRID, GRID_ARGS, tmp_path, interrupt)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(GRID, GRID_ARGS, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_results(tmp_path, reference["grid"])
    assert (tmp_path / "results.md").exists() and (tmp_path / "heatmap.png").exists()


@SLOW  # test_sweep.py checks that the layouts give the same cells
@pytest.mark.parametrize("devices", [("8", "1"), ("1", "8")])
def test_a_grid_saved_on_some_devices_resumes_on_others(devices, tmp_path):
    # The checkpoint holds every real cell, in one device-independent form (no padding). A cell
    # a device (no 2-D mesh, which would equal one device to float tolerance only) is bitwise.
    args = [*GRID_ARGS, "--grid.data_devices=1"]
    whole = run(GRID, [*args, "--grid.num_devices=1"], tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    saved_on, resumed_on = devices
    workdir = tmp_path / "run"
    killed = run(GRID, [*args, f"--grid.num_devices={saved_on}"], workdir, "boundary:4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(GRID, [*args, f"--grid.num_devices={resumed_on}"], workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stdout
    assert_same_results(workdir, tmp_path / "whole")


@pytest.mark.slow  # tests/test_faults.py stops with Ctrl-C, and test_sigterm_from_outside
def test_sigterm_saves_stops_cleanly_and_resumes(reference, tmp_path):
    stopped = run(MLP, MLP_ARGS, tmp_path, "sigterm:6")  # mid-epoch 2
    assert stopped.returncode == 143, stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()[-1:]
    assert line.startswith("stopped: SIGTERM received; saved step 118 (epoch 2, 40 steps into it)")
    assert "Traceback" not in stopped.stderr
    assert final_state(tmp_path)[0] == 118
    resumed = run(MLP, MLP_ARGS, tmp_path)
    assert "resuming from step 118" in resumed.stdout
    assert_same_results(tmp_path, reference["mlp"])


@SLOW  # test_faults.py stops its run with Ctrl-C, which takes the same path
def test_sigterm_from_outside(tmp_path):
    """A real SIGTERM from another process, while training: saved, stopped, resumed."""
    args = ["--data.source=sample", "--train.epochs=40", "--checkpoint.every_minutes=0"]
    command = [sys.executable, str(MLP), *args, f"--workdir={tmp_path}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("data: ")  # it holds the workdir, compiles
    second = run(MLP, args, tmp_path)  # the same command again, meanwhile: refused
    for line in process.stdout:  # wait until it trains
        if line.startswith("Epoch 2/40"):
            process.send_signal(signal.SIGTERM)
            break
    assert second.returncode == 2 and second.stderr == (
        f"error: --workdir={tmp_path} is in use by another run (PID {process.pid}); wait for it "
        "to end, or choose another --workdir\n"
    )
    assert process.wait(timeout=120) == 143
    assert "stopped: SIGTERM received; saved step" in process.stderr.read()
    resumed = run(MLP, args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [r["epoch"] for r in metrics_without_times(tmp_path)]
    assert epochs == list(range(1, 41))  # every epoch exactly once


@pytest.mark.slow  # test_checkpoint.py checks the fallback itself, in-process
def test_corrupt_newest_checkpoint_falls_back(reference, tmp_path):
    killed = run(MLP, MLP_ARGS, tmp_path, "after_save:7")
    assert killed.returncode == -signal.SIGKILL
    newest = tmp_path / "checkpoints" / "138"  # the 7th save: epoch 2, 60 steps into it
    data_files = sorted(newest.rglob("d/*"), key=lambda p: p.stat().st_size)
    damaged = bytearray(data_files[-1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte: restores without error, wrong values
    data_files[-1].write_bytes(bytes(damaged))
    resumed = run(MLP, MLP_ARGS, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "warning: checkpoint step 138" in resumed.stdout and "checksum" in resumed.stdout
    assert "resuming from step 118" in resumed.stdout
    assert_same_results(tmp_path, reference["mlp"])


def test_unreadable_checkpoints_fail_with_one_line(tmp_path):
    killed = run(MLP, MLP_ARGS, tmp_path, "after_save:1")
    assert killed.returncode == -signal.SIGKILL
    for path in (tmp_path / "checkpoints" / "20").rglob("d/*"):
        path.write_bytes(path.read_bytes()[:10])  # truncated
    result = run(MLP, MLP_ARGS, tmp_path)
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert f"no readable checkpoint in {tmp_path / 'checkpoints'}" in line


@pytest.mark.slow  # 16 s: five runs of the script; the slow set runs on the newest stack
def test_a_finished_run_with_a_constant_rate_trains_on_to_more_epochs(tmp_path):
    """2 epochs, then the same command with --train.epochs=3: bit-identical to a 3-epoch run.
    With a cosine schedule (the default) more epochs are refused in one line."""
    constant = [*MLP_ARGS, "--optim.schedule=constant"]  # MLP_ARGS train 3 epochs
    whole = run(MLP, constant, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    two = run(MLP, [*constant, "--train.epochs=2"], tmp_path / "grown")
    assert two.returncode == 0, two.stderr
    grown = run(MLP, constant, tmp_path / "grown")
    assert grown.returncode == 0, grown.stderr
    assert "Epoch 3/3" in grown.stdout and "Epoch 2/3" not in grown.stdout
    assert_same_results(tmp_path / "grown", tmp_path / "whole")
    cosine = run(MLP, [*MLP_ARGS, "--train.epochs=2"], tmp_path / "cosine")
    assert cosine.returncode == 0, cosine.stderr
    refused = run(MLP, MLP_ARGS, tmp_path / "cosine")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        "was set to 2 epochs and its learning rate follows a cosine schedule over them, which "
        "more epochs would change; train longer in a new --workdir (runs with "
        "--optim.schedule=constant can be extended)"
    )
