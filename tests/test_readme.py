"""The README's "Using the models in your code" example runs as written."""

import re

import numpy as np

from conftest import ROOT
from dl_jax import cli
from scripts import GRID, MLP, load_experiment


def python_blocks():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using the models in your code", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_library_example_runs_and_learns(capsys):
    code, _ = python_blocks()
    assert len([line for line in code.splitlines() if line.strip()]) <= 14  # "about 10 lines"
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (256, 10)
    assert int(namespace["state"].step) == 50
    loss = float(capsys.readouterr().out.split("loss after 50 steps: ")[1])
    assert loss < 0.5  # from about 2.3 at the start


def test_loading_example_runs_on_the_runs_it_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quick = ["--data.source=sample", "--train.epochs=1"]
    for script, args in ((MLP, ["--workdir=runs/mlp"]),
                         (GRID, ["--grid.activations=relu", "--grid.learning_rates=(0.3,)",
                                 "--workdir=runs/grid"])):  # fmt: skip
        module = load_experiment(script)
        cli.run(module.main, module.DEFAULTS, "", argv=[*quick, *args])
    _, code = python_blocks()
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (1000, 10)
    assert namespace["cell"].cell.activation == "relu"
    np.testing.assert_allclose(namespace["nnx_logits"], namespace["logits"], rtol=1e-4, atol=1e-4)
