"""What produced a run: dl_jax's version and git commit, the libraries' versions, the devices.

`parallel.prepare_workdir` records it in the run's config.json, under "provenance": a list with
one entry for the stack that started the run, and one more each time a resume ran on another
stack. A run's numbers are then never read without the software and devices that made them.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import jax

import dl_jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "numpy")


def collect() -> dict:
    """This process's stack: versions, the checkout's commit (if dl_jax runs from one) and
    the devices of the run."""
    return {
        "dl_jax": dl_jax.__version__,
        **_git(Path(dl_jax.__file__).resolve().parents[1]),
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "backend": jax.default_backend(),
        "processes": jax.process_count(),
    }


def _git(root: Path) -> dict:
    """The commit checked out at `root` and whether its tracked files have changes; nothing
    when dl_jax is installed from a wheel, or git is missing."""
    if not (root / ".git").exists():
        return {}
    try:
        commit, status = (
            subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            for args in (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": bool(status)}
