"""The toy classifiers of the slides: two classes from a rule on a few features, and the models
that can and cannot learn each rule.

Every feature is uniform in [-1, 1] (numpy's PCG64 from the seed; the slides give the rules, not
a distribution), and class 0 is the slides' c1, the examples for which the rule holds:

- "f1>f2": c1 if f1 > f2 (2 features), the slides' first problem
- "f1>f2+f3": c1 if f1 > f2 + f3 (3 features), their second
- "f1*f2>0": c1 if f1 * f2 > 0 (2 features), their third: the classes sit in opposite
  quadrants, and no line separates them

The models are the MLP (`models.mlp`) by name, softmax cross-entropy on two logits:

- "linear": one dense layer, a linear rule
- "linear_hidden": a hidden layer of `HIDDEN` units with no non-linearity, still a linear rule,
  since the two weight matrices multiply into one
- "tanh", "relu": the same hidden layer with that activation

Each model trains with `train.fit`, like any run. N examples, F features, G grid points a side.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np

from dl_jax import files, models, optim, parallel, perceptron, plots, tasks, train
from dl_jax import workdir as workdirs
from dl_jax.config import ModelConfig, PerceptronConfig, ToyConfig, ToyStudyConfig, TrainConfig
from dl_jax.data import Splits
from dl_jax.errors import unknown_name

PROBLEMS = {
    "f1>f2": (2, lambda f: f[:, 0] > f[:, 1]),
    "f1>f2+f3": (3, lambda f: f[:, 0] > f[:, 1] + f[:, 2]),
    "f1*f2>0": (2, lambda f: f[:, 0] * f[:, 1] > 0),
}
HIDDEN = 16  # units of the hidden layer
MODELS = {
    "linear": ModelConfig(features=(2,)),
    "linear_hidden": ModelConfig(features=(HIDDEN, 2), activation="linear"),
    "tanh": ModelConfig(features=(HIDDEN, 2), activation="tanh"),
    "relu": ModelConfig(features=(HIDDEN, 2), activation="relu"),
}


@dataclasses.dataclass(frozen=True)
class Trained:
    """One model trained on one problem: the module, its parameters and its test accuracy."""

    model: nn.Module
    params: dict
    test_accuracy: float


def make(problem: str, seed: int, cfg: ToyConfig) -> Splits:
    """The train and test splits of `problem` from `seed`: {"x": float32 [N, F], "label"}."""
    if problem not in PROBLEMS:
        raise unknown_name("toy problem", problem, PROBLEMS)
    features, rule = PROBLEMS[problem]
    rng = np.random.default_rng(seed)
    x_NF = rng.uniform(-1.0, 1.0, (cfg.train_examples + cfg.test_examples, features))
    split = {"x": x_NF.astype(np.float32), "label": np.where(rule(x_NF), 0, 1).astype(np.int32)}
    train_split = {k: v[: cfg.train_examples] for k, v in split.items()}
    test_split = {k: v[cfg.train_examples :] for k, v in split.items()}
    return Splits(train_split, test_split, f"toy problem {problem}", name=problem)


def fit(problem: str, model_name: str, seed: int, cfg: ToyConfig) -> Trained:
    """Train `model_name` on `problem`'s data from `seed` (which also draws the initial weights
    and the order of the examples) with Adam; the last epoch's test accuracy."""
    if model_name not in MODELS:
        raise unknown_name("toy model", model_name, MODELS)
    splits = make(problem, seed, cfg)
    model = models.build(MODELS[model_name])
    task = tasks.FeatureClassification()
    tx = optim.make_optimizer("adam", cfg.learning_rate)
    initial = train.create_train_state(model, tx, task, seed, tasks.example_batch(splits.train))
    run = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed, num_devices=1)
    *_, (state, record) = train.fit(initial, splits, run, parallel.make_mesh(1))
    return Trained(model, state.params, record["test/accuracy"])


def probabilities_on_grid(trained: Trained, size: int = 101) -> np.ndarray:
    """[G, G]: the probability of class 1 (c2) over [-1, 1]^2, rows f2 and columns f1 (for a
    model of 2 features), for `plots.plot_decision_boundaries`."""
    axis_G = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    f1_GG, f2_GG = np.meshgrid(axis_G, axis_G)
    x_N2 = np.stack([f1_GG.ravel(), f2_GG.ravel()], axis=1)
    logits_N2 = trained.model.apply({"params": trained.params}, x_N2)
    return np.asarray(jax.nn.softmax(logits_N2)[:, 1]).reshape(size, size)


def best_line_accuracy(problem: str, seed: int = 0, points: int = 50_000, angles: int = 720):
    """The accuracy of the best linear rule (a line, c1 on one side) on `points` uniform
    examples of a 2-feature `problem`: for each of `angles` directions, every threshold along
    it, by sorting the projections (what no linear model can beat, up to the search's steps)."""
    features, rule = PROBLEMS[problem]
    x_N2 = np.random.default_rng(seed).uniform(-1.0, 1.0, (points, features))
    c1_N = rule(x_N2)
    best = 0.0
    for angle in np.linspace(0.0, 2 * np.pi, angles, endpoint=False):
        c1_sorted = c1_N[np.argsort(x_N2 @ np.array([np.cos(angle), np.sin(angle)]))]
        # c2 below the k-th projection, c1 from it on: right below where it is c2, above if c1
        right_below = np.concatenate([[0], np.cumsum(~c1_sorted)])
        right_above = c1_N.sum() - np.concatenate([[0], np.cumsum(c1_sorted)])
        best = max(best, float((right_below + right_above).max()) / points)
    return best


def study(cfg: ToyStudyConfig) -> dict:
    """Train every model of `MODELS` on every problem of `PROBLEMS` for each seed, and run the
    perceptron rule on separable points and on XOR; write into `cfg.workdir` results.json,
    results.md, decision_boundaries.png (the first seed's models on the 2-feature problems)
    and perceptron.png. Returns the results."""
    run_dir = Path(cfg.workdir)  # held by this process since cli.run
    workdirs.prepare(run_dir, cfg, ("workdir",), dataset=None)
    accuracy, first = {}, {}
    for problem in PROBLEMS:
        accuracy[problem] = {}
        for name in MODELS:
            trained = [fit(problem, name, seed, cfg.toy) for seed in cfg.seeds]
            accuracy[problem][name] = [t.test_accuracy for t in trained]
            first[problem, name] = trained[0]
            print(f"{problem:9s} {name:14s} test accuracy, mean of {len(cfg.seeds)} seeds: "
                  f"{100 * np.mean(accuracy[problem][name]):.2f}%", flush=True)  # fmt: skip
    best_line = {p: best_line_accuracy(p) for p, (features, _) in PROBLEMS.items() if features == 2}
    results = {"toy": accuracy, "best_line": best_line,
               "perceptron": _perceptron(cfg.perceptron, run_dir)}  # fmt: skip
    with files.replacing(run_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1) + "\n")
    with files.replacing(run_dir / "results.md") as tmp:
        tmp.write_text(table(accuracy))
    cases = []
    for problem in (p for p, (features, _) in PROBLEMS.items() if features == 2):
        test = make(problem, cfg.seeds[0], cfg.toy).test
        for name in MODELS:
            title = f"{problem}, {name}: {100 * first[problem, name].test_accuracy:.1f}%"
            cases.append((title, probabilities_on_grid(first[problem, name]), test["x"],
                          test["label"]))  # fmt: skip
    plots.plot_decision_boundaries(cases, run_dir / "decision_boundaries.png",
                                   class_names=("c1", "c2"))  # fmt: skip
    return results


def _perceptron(cfg: PerceptronConfig, run_dir: Path) -> dict:
    """The rule's mistakes per epoch on separable points (within Novikoff's bound) and on XOR,
    and perceptron.png."""
    x_NF, y_N, w_star_A = perceptron.separable(cfg.points, 2, cfg.margin, cfg.seed)
    separable = perceptron.train(x_NF, y_N, cfg.epochs)
    x_xor, y_xor = perceptron.xor()
    xor = perceptron.train(x_xor, y_xor, cfg.epochs)
    plots.plot_perceptron(
        {"separable points": (x_NF, y_N, separable), "XOR": (x_xor, y_xor, xor)},
        run_dir / "perceptron.png",
    )
    mistakes = np.asarray(separable.mistakes_E)
    return {
        "separable": {
            "mistakes_per_epoch": mistakes.tolist(),
            "total_mistakes": int(mistakes.sum()),
            "mistake_bound": perceptron.mistake_bound(x_NF, y_N, w_star_A),
        },
        "xor": {"mistakes_per_epoch": np.asarray(xor.mistakes_E).tolist()},
    }


def table(accuracy: dict) -> str:
    """Markdown: test accuracy (%) per problem and model, mean and range over the seeds."""
    lines = ["| problem | " + " | ".join(MODELS) + " |", "|---" * (len(MODELS) + 1) + "|"]
    for problem, by_model in accuracy.items():
        cells = [
            f"{100 * np.mean(a):.1f} ({100 * min(a):.1f}-{100 * max(a):.1f})"
            for a in by_model.values()
        ]
        lines.append(f"| {problem} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
