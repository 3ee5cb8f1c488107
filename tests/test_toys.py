"""The toy classifiers: what one linear rule learns, what it cannot, and what a hidden
non-linearity adds (accuracies over 5 seeds, with the tests' shorter training)."""

import json
import re

import numpy as np
import pytest

from conftest import ROOT
from dl_jax import toys
from dl_jax.config import ToyConfig
from dl_jax.errors import ConfigError
from scripts import run

QUICK = ToyConfig(epochs=15, learning_rate=0.02)  # the study trains 40 epochs at 1e-2
SEEDS = range(5)


def mean_accuracy(problem, model):
    return np.mean([toys.fit(problem, model, seed, QUICK).test_accuracy for seed in SEEDS])


def test_the_problems_follow_their_rules_on_uniform_features():
    for problem, (features, _) in toys.PROBLEMS.items():
        splits = toys.make(problem, 3, QUICK)
        x, label = splits.train["x"], splits.train["label"]
        assert x.shape == (1000, features) and x.min() >= -1 and x.max() <= 1
        assert 0.3 < label.mean() < 0.7  # both classes, c1 (0) and c2 (1)
        np.testing.assert_array_equal(toys.make(problem, 3, QUICK).test["x"], splits.test["x"])
    splits = toys.make("f1*f2>0", 0, QUICK)
    x, label = splits.test["x"], splits.test["label"]
    np.testing.assert_array_equal(label == 0, x[:, 0] * x[:, 1] > 0)
    with pytest.raises(
        ConfigError, match=re.escape("toy problem 'xor'; valid: f1*f2>0, f1>f2, f1>f2+f3")
    ):
        toys.make("xor", 0, QUICK)


def test_the_best_line_gets_two_thirds_of_f1_times_f2_positive_and_all_of_f1_greater_than_f2():
    assert 0.64 < toys.best_line_accuracy("f1*f2>0", points=20_000) < 0.70  # 66.9% at 50,000
    assert toys.best_line_accuracy("f1>f2", points=20_000) > 0.999


def test_one_linear_layer_learns_f1_greater_than_f2_plus_f3():
    assert mean_accuracy("f1>f2+f3", "linear") >= 0.97


@pytest.mark.parametrize("model", ["linear", "linear_hidden"])
def test_a_linear_rule_cannot_learn_f1_times_f2_positive(model):
    assert mean_accuracy("f1*f2>0", model) <= 0.70


@pytest.mark.parametrize("model", ["tanh", "relu"])
def test_a_hidden_non_linearity_learns_f1_times_f2_positive(model):
    assert mean_accuracy("f1*f2>0", model) >= 0.97


@pytest.mark.slow  # 12 brief fits as a subprocess; the tests above check what it reports
def test_the_script_writes_its_results_and_figures(tmp_path):
    args = ["--seeds=(0,)", "--toy.epochs=1", "--toy.train_examples=256", "--toy.test_examples=64",
            "--perceptron.epochs=5"]  # fmt: skip
    result = run(ROOT / "experiments" / "toy_problems.py", args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the best line on f1*f2>0: 6" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["toy"]) == set(toys.PROBLEMS)
    assert results["perceptron"]["separable"]["mistakes_per_epoch"][-1] == 0
    assert min(results["perceptron"]["xor"]["mistakes_per_epoch"]) > 0
    assert "| f1*f2>0 |" in (tmp_path / "results.md").read_text()
    for png in ("decision_boundaries.png", "perceptron.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / png).stat().st_size > 20_000
