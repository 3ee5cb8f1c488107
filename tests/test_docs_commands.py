"""Every experiment command in the docs uses real flags with valid values."""

import importlib.util
import re
import shlex

import pytest

from conftest import ROOT
from dl_jax import config

DOCS = ("README.md", "TPU_SETUP.md", "BENCHMARKS.md")
COMMAND = re.compile(r"experiments/(\w+)\.py([^\n#`\"]*)")
PLACEHOLDER = re.compile(r"[A-Z_]+|<[^>]*>")  # --train.seed=S, --data.dir=PATH: any value


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(script, its --key=value arguments) of every `experiments/<script>.py ...` in `text`,
    lines continued with a backslash joined first."""
    text = re.sub(r"\\\n\s*", " ", text)
    found = []
    for script, rest in COMMAND.findall(text):
        args = []
        try:
            tokens = shlex.split(rest)
        except ValueError:  # a quote of the prose after the command
            tokens = rest.split()
        for token in tokens:
            if not token.startswith("--"):
                break
            args.append(token)
        found.append((script, args))
    return found


def defaults(script: str):
    spec = importlib.util.spec_from_file_location(script, ROOT / "experiments" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEFAULTS


@pytest.mark.parametrize("doc", DOCS)
def test_every_experiment_command_in_the_docs_parses(doc):
    found = commands((ROOT / doc).read_text())
    assert found, f"no experiment commands in {doc}"
    for script, args in found:
        assert (ROOT / "experiments" / f"{script}.py").exists(), script
        cfg, paths = defaults(script), config.field_paths(defaults(script))
        for arg in args:
            if arg == "--help":
                continue
            key, _, value = arg.removeprefix("--").partition("=")
            assert key in paths, f"{doc}: {script}.py has no --{key}"
            if not PLACEHOLDER.fullmatch(value):
                config.parse_overrides(cfg, [arg])  # a bad value raises


def test_the_parser_finds_continued_lines_and_refuses_a_bad_flag():
    text = "```\npython experiments/mnist_mlp.py --train.epochs=2 \\\n    --model.nope=1\n```"
    ((script, args),) = commands(text)
    assert script == "mnist_mlp" and args == ["--train.epochs=2", "--model.nope=1"]
    with pytest.raises(config.ConfigError, match="unknown key --model.nope"):
        config.parse_overrides(defaults(script), args)
