"""The figure scripts, experiments/overconfidence.py and figures.py, run as a user runs them on
the bundled sample: every promised file is written with sane numbers, a rerun reuses the runs
it trained, and bad input gets one line on stderr and exit status 2."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from scripts import assert_one_line, run

OVERCONFIDENCE = ROOT / "experiments" / "overconfidence.py"
FIGURES = ROOT / "experiments" / "figures.py"
QUICK = ["--epochs=1"]  # each model trained here sees the sample's 5,000 images once
REUSED = "all 1 epochs were already done"  # runs.train_and_evaluate, for a finished run
NO_RUN = "error: no run in /nonexistent: no such directory"  # runs.load's line
SAMPLE_AND_DIR = (  # data.load's line
    "error: --data.dir=/x is not read with --data.source=sample (the bundled sample); use "
    "--data.source=idx or auto to read it"
)


def assert_pngs(workdir, names):
    for name in names:
        content = (workdir / name).read_bytes()
        assert content.startswith(b"\x89PNG"), name
        assert len(content) > 5000, name  # a drawn figure, not an empty canvas


def test_overconfidence(tmp_path):
    workdir = tmp_path / "run"
    first = run(OVERCONFIDENCE, QUICK, workdir)
    assert first.returncode == 0, first.stderr
    assert_pngs(workdir, ["confidence.png", "noise_mlp.png", "noise_cnn.png"])
    results = json.loads((workdir / "results.json").read_text())
    assert list(results["models"]) == ["mlp", "cnn"]
    for name, model in results["models"].items():
        assert model["test_accuracy"] > 0.5, name
        assert sum(model["noise"]["predicted"]) == results["noise_images"] == 1000
        for images in ("noise", "real"):
            s = model[images]
            assert 0.1 < s["mean"] <= 1 and 0.1 < s["median"] <= 1, (name, images)
            assert 0 <= s["above_0.99"] <= s["above_0.9"] <= 1, (name, images)
    assert "mlp   noise (1000)" in first.stdout  # the table


@pytest.mark.slow  # three runs of the script; test_figures checks the reuse in the default set
def test_overconfidence_reuses_its_runs_and_takes_given_ones(tmp_path):
    workdir = tmp_path / "run"
    first = run(OVERCONFIDENCE, QUICK, workdir)
    assert first.returncode == 0, first.stderr
    results = json.loads((workdir / "results.json").read_text())
    again = run(OVERCONFIDENCE, QUICK, workdir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(REUSED) == 2  # the MLP's and the CNN's
    assert json.loads((workdir / "results.json").read_text()) == results

    # The same runs, given: the same numbers, and nothing trained.
    given = [*QUICK, f"--mlp={workdir / 'mlp'}", f"--cnn={workdir / 'cnn'}"]
    elsewhere = run(OVERCONFIDENCE, given, tmp_path / "given")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "Epoch" not in elsewhere.stdout and REUSED not in elsewhere.stdout
    assert not (tmp_path / "given" / "mlp").exists()
    assert json.loads((tmp_path / "given" / "results.json").read_text()) == results


def test_figures(tmp_path):
    names = ["digits.png", "mistakes.png", "confusion_matrix.png", "activations.png"]
    first = run(FIGURES, QUICK, tmp_path)
    assert first.returncode == 0, first.stderr
    assert_pngs(tmp_path, names)
    (line,) = [line for line in first.stdout.splitlines() if "test accuracy" in line]
    accuracy = float(line.split("test accuracy ")[1].split("%")[0])
    assert 50 < accuracy <= 100


@pytest.mark.slow  # two more runs of the script, to check that the second reuses its MLP
def test_figures_reuses_its_run(tmp_path):
    first = run(FIGURES, QUICK, tmp_path)
    assert first.returncode == 0, first.stderr
    (line,) = [line for line in first.stdout.splitlines() if "test accuracy" in line]
    again = run(FIGURES, QUICK, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(REUSED) == 1
    assert line in again.stdout.splitlines()


@pytest.mark.parametrize(
    "script, args, message",
    [
        (
            OVERCONFIDENCE,
            ["--noise_images=0"],
            "error: --noise_images=0 is invalid: expected an int > 0",
        ),
        (OVERCONFIDENCE, ["--mlp=/nonexistent"], NO_RUN),
        (OVERCONFIDENCE, ["--cnn=/nonexistent"], NO_RUN),
        (FIGURES, ["--epochs=0"], "error: --epochs=0 is invalid: expected an int > 0"),
        (FIGURES, ["--run=/nonexistent"], NO_RUN),
        (FIGURES, ["--data.dir=/x"], SAMPLE_AND_DIR),
    ],
    ids=["no_noise", "no_mlp", "no_cnn", "no_epochs", "no_run", "sample_and_dir"],
)
def test_bad_input(script, args, message, tmp_path):
    result = run(script, args, tmp_path / "run")
    assert_one_line(result, 2, message)
    assert result.stderr == message + "\n"
    assert not (tmp_path / "run").exists()  # refused before the work directory was touched


@pytest.mark.parametrize("script", [OVERCONFIDENCE, FIGURES])
def test_help(script):
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--epochs=3" in result.stdout
    assert "--data.source='sample'" in result.stdout
