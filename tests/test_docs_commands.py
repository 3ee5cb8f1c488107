"""Every experiment command in the docs uses real flags with valid values, and TPU_SETUP.md's
set-up blocks make an environment of a Python that dl_jax supports."""

import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.specifiers import SpecifierSet

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


# TPU_SETUP.md's set-up blocks: a comment in each names the Python it was written for.
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
WRITTEN_FOR = re.compile(r"^#.*\bPython (3\.\d+)", re.M)
UV_VENV = re.compile(r"uv venv --python (\S+)")
PLACEHOLDER_WORD = re.compile(r"<[^>\n]*>")


def setup_blocks() -> list[str]:
    """TPU_SETUP.md's shell blocks that make a Python environment."""
    blocks = SHELL_BLOCK.findall((ROOT / "TPU_SETUP.md").read_text())
    return [b for b in blocks if re.search(r"uv venv|-m venv", b)]


def test_tpu_setup_blocks_are_bash_and_name_a_supported_python():
    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    assert len(setup_blocks()) >= 3  # "Python first", the TPU VM, the GPUs
    for block in setup_blocks():
        script = PLACEHOLDER_WORD.sub("WORD", block)  # <your fork of dl_jax>
        syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
        written_for = WRITTEN_FOR.search(block)
        assert written_for, f"a set-up block names no Python:\n{block}"
        assert written_for[1] + ".0" in requires, written_for[0]
        # The VM's own python3 may be 3.10: a venv is made by uv, with the Python named above.
        assert "python3 -m venv" not in block, block
        assert UV_VENV.findall(block) == [written_for[1]], block


def local_python(version: str) -> str | None:
    """The folder of a Python `version` installation on this machine (found on the PATH or
    under pyenv; a venv's interpreter leads to the Python it was made from), if any."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python3"), reverse=True),
    ]
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.base_prefix)"
    for candidate in filter(None, candidates):
        found = subprocess.run([candidate, "-c", probe], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.split()[0] == version:
            return os.path.join(found.stdout.split()[1], "bin")
    return None


def test_the_documented_uv_venv_gives_the_python_it_names(tmp_path):
    """The blocks' `uv venv --python X.Y .venv`, run with uv from PyPI (the test extra) and this
    machine's own Python X.Y (uv may not download one here), makes a venv of Python X.Y."""
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (pip install -e '.[test]' installs it)")
    (version,) = {UV_VENV.search(block)[1] for block in setup_blocks()}
    installation = local_python(version)
    if installation is None:
        pytest.skip(f"no Python {version} on this machine")
    env = {
        **os.environ,
        "PATH": f"{installation}:{os.environ['PATH']}",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("VIRTUAL_ENV", None)
    made = subprocess.run(
        [uv, "venv", "--python", version, ".venv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    probe = subprocess.run(
        [tmp_path / ".venv/bin/python", "--version"], capture_output=True, text=True
    )
    assert probe.stdout.startswith(f"Python {version}."), probe.stdout
