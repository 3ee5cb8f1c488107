"""The README's "Using the models in your code" example runs as written."""

import re

from conftest import ROOT


def test_library_example_runs_and_learns(capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using the models in your code", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len([line for line in code.splitlines() if line.strip()]) <= 14  # "about 10 lines"
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (256, 10)
    assert int(namespace["state"].step) == 50
    loss = float(capsys.readouterr().out.split("loss after 50 steps: ")[1])
    assert loss < 0.5  # from about 2.3 at the start
