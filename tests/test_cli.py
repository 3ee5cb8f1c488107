"""The experiment's command line, run as a user runs it: one clear line and exit 2 on bad input."""

import gzip
import json
import os
import subprocess
import sys

import jax
import pytest

from conftest import ROOT

SCRIPT = ROOT / "experiments" / "mnist_mlp.py"
CNN = ROOT / "experiments" / "mnist_cnn.py"
GRID = ROOT / "experiments" / "activation_lr_grid.py"
SEQ = ROOT / "experiments" / "sequence_mnist.py"


def run(*args, script=SCRIPT):
    command = [sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, message):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.activaton=tanh"], "unknown key --model.activaton; valid keys:"),
        (["--train.epochs=ten"], "--train.epochs=ten: expected int"),
        (["epochs=3"], "malformed argument 'epochs=3'"),
        (["--model.activation=swish"], "unknown activation 'swish'; valid: leaky_relu, linear,"),
        (["--optim.name=adamw", "--data.source=sample"], "unknown optimizer 'adamw'; valid:"),
        (["--train.loss=mse"], "unknown loss 'mse'; valid:"),
        (["--data.source=web"], "unknown data source 'web'; valid: auto, idx, sample, tfds"),
        (["--data.dir=/nonexistent"], "IDX folder /nonexistent does not exist"),
        (["--data.source=sample", "--train.num_devices=64"], "but only 8 device(s) are available"),
        (["--model.name=resnet"], "unknown model 'resnet'; valid: cnn, lenet5, mlp"),
        (["--model.name=cnn", "--model.pooling=min"], "unknown pooling 'min'; valid: avg, max"),
        (["--model.conv_impl=fft"], "unknown conv implementation 'fft'; valid: auto, im2col, lax"),
        (["--model.dropout_rate=1.0"], "--model.dropout_rate=1.0 is invalid: expected 0 <= rate"),
        (["--model.conv_features=(4, 0)"], "expected a non-empty tuple of positive widths"),
        (["--data.source=sample", "--model.features=(32, 3)"],
         "the model has 3 outputs, but the data's labels go up to 9 (10 classes); give its last "
         "layer at least 10 units (the last of --model.features for the MLP"),
        (["--data.source=sample", "--model.name=cnn", "--model.dense_features=(16, 5)"],
         "the model has 5 outputs, but the data's labels go up to 9 (10 classes)"),
        (["--data.source=sample", "--model.name=rnn", "--model.num_classes=5"],
         "the model has 5 outputs, but the data's labels go up to 9 (10 classes)"),
    ],
)  # fmt: skip
def test_bad_input(args, message, tmp_path):
    result = run(*args, f"--workdir={tmp_path / 'run'}")
    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_corrupt_idx_file(tmp_path, sample):
    from dl_jax import data

    for split in ("train", "test"):
        images, labels = data.IDX_FILES[split]
        data.write_idx(tmp_path / images, getattr(sample, split)["image"][:50, ..., 0])
        data.write_idx(tmp_path / labels, getattr(sample, split)["label"][:50])
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-100]))
    result = run(f"--data.dir={tmp_path}")
    assert_one_line_error(result, "truncated or corrupt IDX file")
    assert "train-images-idx3-ubyte.gz" in result.stderr


def test_batch_must_divide_the_devices():
    # The subprocess inherits conftest's 8 simulated devices.
    result = run("--data.source=sample", "--train.batch_size=100")
    assert_one_line_error(result, "--train.batch_size=100 does not divide over 8 devices")


def test_help_is_fast_and_lists_options():
    result = run("--help")
    assert result.returncode == 0
    assert "--optim.schedule='cosine'" in result.stdout
    assert "--data.source='auto'" in result.stdout
    cnn = run("--help", script=CNN)
    assert cnn.returncode == 0 and "--model.name='cnn'  # mlp | lenet5 | cnn" in cnn.stdout
    assert "--model.conv_impl='auto'" in cnn.stdout and "--optim.name='momentum'" in cnn.stdout
    read_end, write_end = os.pipe()  # `--help | head`, with head already gone
    os.close(read_end)
    piped = subprocess.run(
        [sys.executable, SEQ, "--help"], stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(write_end)
    assert piped.returncode == 0 and piped.stderr == b""
    seq = run("--help", script=SEQ)
    assert seq.returncode == 0 and "row by row" in seq.stdout
    assert "--model.cell='lstm'" in seq.stdout and "--model.hidden=128" in seq.stdout
    assert "--train.augment_shift=1" in seq.stdout and "--optim.learning_rate=0.001" in seq.stdout
    bits = run("--help", script=ROOT / "experiments" / "bit_counting.py")
    assert bits.returncode == 0 and "at most 10 minutes" in bits.stdout
    assert "--task.name='count'  # count | running_parity" in bits.stdout
    pairs = run("--help", script=ROOT / "experiments" / "seq2seq.py")
    assert pairs.returncode == 0 and "at most 10" in pairs.stdout
    assert "--task.name='addition'" in pairs.stdout and "--task.lsb_first=True" in pairs.stdout
    study = run("--help", script=ROOT / "experiments" / "vanishing_gradients.py")
    assert study.returncode == 0 and "at most 15 minutes" in study.stdout
    assert "--study.gate_biases=(0.0, 3.0)" in study.stdout
    toy = run("--help", script=ROOT / "experiments" / "toy_problems.py")
    assert toy.returncode == 0 and "--seeds=(0, 1, 2, 3, 4)  # a run per" in toy.stdout
    assert "--perceptron.margin=0.05" in toy.stdout and "--toy.epochs=40" in toy.stdout


@pytest.mark.parametrize(
    "args, message",
    [(["--seeds=()"], "--seeds=() is invalid: expected a non-empty tuple"),
     (["--toy.learning_rate=0"], "--toy.learning_rate=0.0 is invalid: expected a number > 0"),
     (["--perceptron.margin=1.5"], "--perceptron.margin=1.5 is invalid: expected a number in")],
)  # fmt: skip
def test_the_toy_study_refuses_bad_options_in_one_line(args, message, tmp_path):
    result = run(*args, f"--workdir={tmp_path / 'run'}", script=ROOT / "experiments" /
                 "toy_problems.py")  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.slow  # test_runs.py trains the CNN in-process; the fault story runs this script
@pytest.mark.parametrize("model", ["lenet5", "mlp"])
def test_cnn_script_trains_any_image_model(model, tmp_path):
    args = ["--data.source=sample", "--train.epochs=1", "--train.chunk_steps=13"]
    result = run(*args, f"--model.name={model}", f"--workdir={tmp_path}", script=CNN)
    assert result.returncode == 0, result.stderr
    assert f"model: {model}" in result.stdout
    assert json.loads((tmp_path / "config.json").read_text())["model"]["conv_impl"] == "auto"
    pictures = {"filters.png", "feature_maps.png"} & {p.name for p in tmp_path.iterdir()}
    assert pictures == ({"filters.png", "feature_maps.png"} if model == "lenet5" else set())


def test_a_run_writes_config_and_metrics(tmp_path):
    result = run("--data.source=sample", "--train.epochs=2", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2 - " in result.stdout and "test_accuracy: 0." in result.stdout
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["data"]["source"] == "sample"
    ((stack,),) = [cfg["provenance"]]  # the stack it ran on: versions, commit, devices
    assert stack["packages"]["jax"] == jax.__version__ and stack["devices"] == "8 x cpu"
    assert len(stack["git_commit"]) == 40 and isinstance(stack["git_dirty"], bool)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert set(records[0]) == {
        "epoch",
        "train/loss",
        "test/loss",
        "test/accuracy",
        "train/seconds",
        "test/seconds",
    }
    assert records[1]["test/accuracy"] > 0.8  # 2 epochs on 5,000 real images
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "run.lock",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe=keras"], "unknown recipe 'keras'; valid: modern, seed, seed_exact"),
        (["--grid.activations=tanh,swish"], "unknown activation 'swish'; valid:"),
        (["--recipe=seed", "--grid.optimizers=adam"], "recipe 'seed' trains with sgd only"),
        (["--grid.learning_rates=(0.1, -1)"], "expected numbers > 0"),
        (["--grid.seeds=(0, x)"], "--grid.seeds=(0, x): expected a tuple of int"),
        (["--train.epochs=0"], "--train.epochs=0 is invalid: expected an int > 0"),
        (["--train.batch_size=64"], "unknown key --train.batch_size; valid keys: grid."),
        (["--features=(64, 10)"], "unknown key --features; valid keys: grid."),
        (["--model.name=lenet5", "--recipe=seed_exact"], "--recipe=seed_exact is the slides' "),
        (["--model.activation=relu"], "the grid's cells take theirs from --grid.activations"),
        (["--model.features=(32, 5)"], "the model has 5 outputs, but the data's labels go up to 9"),
        (
            ["--model.name=rnn", "--model.cell=lstm", "--grid.activations=tanh,relu"],
            "--grid.activations=tanh,relu over --model.cell=lstm: only the Elman cell has an "
            "activation to change",
        ),
    ],
)
def test_grid_bad_input(args, message, tmp_path):
    result = run(*args, "--data.source=sample", f"--workdir={tmp_path / 'run'}", script=GRID)
    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()


def test_grid_on_the_sample_writes_every_file(tmp_path):
    args = ["--data.source=sample", "--train.epochs=2", "--log.profile=True"]
    result = run(*args, f"--workdir={tmp_path}", script=GRID)
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2 - " in result.stdout and "| relu |" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "heatmap.png",
        "profile",
        "results.csv",
        "results.md",
        "run.lock",
    ]
    assert list(tmp_path.glob("profile/plugins/profile/*/perfetto_trace.json.gz"))
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0].startswith("optimizer,activation,learning_rate,seed,epoch,train_loss,")
    assert len(rows) == 1 + 45 * 2  # 5 activations x 9 learning rates, 2 epochs
    table = (tmp_path / "results.md").read_text()
    assert table.count("\n| ") == 1 + 5 and "lr 0.001 |" in table and "lr 10 |" in table
    relu = next(line for line in table.splitlines() if line.startswith("| relu |"))
    best = max(float(v.split()[0]) for v in relu.split("|")[2:-1] if v.strip() != "diverged")
    assert best > 80  # 2 epochs on 5,000 real images
    for png in ("curves.png", "heatmap.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_a_workdir_holding_something_else_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run("--data.source=sample", f"--workdir={tmp_path}")
    assert_one_line_error(result, f"--workdir={tmp_path} is not empty and holds no dl_jax run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    result = run("--data.source=sample", f"--workdir={tmp_path / 'notes.txt'}")
    assert_one_line_error(result, "notes.txt is a file, not a directory")


@pytest.mark.slow  # tests/test_workdir.py checks the same refusals in-process
def test_resuming_with_a_different_config_is_refused(tmp_path):
    args = ["--data.source=sample", "--train.epochs=1", f"--workdir={tmp_path}"]
    assert run(*args).returncode == 0
    result = run(*args, "--model.activation=tanh", "--train.seed=3")
    assert_one_line_error(
        result,
        "holds a run with a different config (model.activation: "
        "'auto' -> 'tanh'; train.seed: 0 -> 3); resume it with",
    )
    harmless = run(*args, "--checkpoint.every_minutes=1", "--log.tensorboard=True")
    assert harmless.returncode == 0, harmless.stderr
    assert "all 1 epochs were already done" in harmless.stdout


@pytest.mark.slow  # optional (dl_jax[tensorboard]); kept out of the 5-minute suite
def test_tensorboard_events(tmp_path):
    result = run(
        "--data.source=sample",
        "--train.epochs=2",
        "--log.tensorboard=True",
        f"--workdir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    (events,) = (tmp_path / "tensorboard").iterdir()
    assert events.name.startswith("events.out.tfevents") and events.stat().st_size > 100


def test_divergence_through_the_command_line(tmp_path):
    result = run(
        "--data.source=sample",
        "--optim.name=sgd",
        "--optim.schedule=constant",
        "--optim.learning_rate=1e30",
        f"--workdir={tmp_path}",
    )
    assert_one_line_error(result, "non-finite training loss in epoch 1, steps 1-")
    assert "no checkpoint was saved; try a lower --optim.learning_rate" in result.stderr
    # It saved nothing, so the corrected command takes the directory over, and says so.
    fixed = run("--data.source=sample", "--optim.name=sgd", "--optim.schedule=constant",
                "--optim.learning_rate=0.1", "--train.epochs=1",
                f"--workdir={tmp_path}")  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert (
        f"note: --workdir={tmp_path} held a run that saved nothing (no checkpoint, no metrics); "
        "this run replaces it (optim.learning_rate: 1e+30 -> 0.1; train.epochs: 10 -> 1)"
    ) in fixed.stdout


@pytest.mark.parametrize(
    "arg, message",
    [
        (
            "--checkpoint.max_to_keep=0",
            "--checkpoint.max_to_keep=0 is invalid: expected an int >= 1",
        ),
        ("--checkpoint.every_steps=-5", "expected 0 (off) or more"),
        ("--log.tensorboard=maybe", "--log.tensorboard=maybe: expected bool"),
    ],
)
def test_bad_checkpoint_and_log_settings(arg, message, tmp_path):
    assert_one_line_error(run(arg, f"--workdir={tmp_path / 'run'}"), message)
