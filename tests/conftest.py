"""Test set-up: 8 simulated CPU devices (set before JAX starts), shared data fixtures, `slow`."""

import os

# Before anything imports jax: the tests always run on 8 CPU devices, so that the multi-device
# code path is exercised on every machine (and the same on a GPU box as on a laptop).
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"
# The experiment scripts run as subprocesses, dozens of times, on the same few programs: XLA's
# persistent compilation cache halves each run (about 2 s of its 4 s are compiling).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "jax")),
)
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample():
    """The bundled real-MNIST sample: 5,000 train and 1,000 test images."""
    from dl_jax import data

    return data.load(source="sample")


@pytest.fixture(scope="session")
def small(sample):
    """A quick slice of the sample: 1,024 train and 200 test images."""
    from dl_jax.data import Splits

    return Splits(_head(sample.train, 1024), _head(sample.test, 200), "sample slice")


def _head(split, n):
    return {k: v[:n] for k, v in split.items()}


@pytest.fixture(scope="session")
def mnist_dir():
    """The full MNIST IDX folder beside the repository (CI has it); skip where it is absent."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"full MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Work directories of uninterrupted runs of the experiments (`scripts.REFERENCES`), each
    run the first time a test asks for it."""
    from scripts import REFERENCES, run

    class Runs(dict):
        def __missing__(self, name):
            script, args = REFERENCES[name]
            self[name] = tmp_path_factory.mktemp(f"reference_{name}")
            result = run(script, args, self[name])
            assert result.returncode == 0, result.stderr
            return self[name]

    return Runs()


@pytest.fixture
def disk(tmp_path):
    """A `scripts.Disk`: a 16 MiB tmpfs of our own where we may mount one, else a folder."""
    import subprocess

    from scripts import Disk

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    yield Disk(mount, mounted=made.returncode == 0)
    if made.returncode == 0:
        subprocess.run(["umount", "-l", str(mount)], check=True)
    else:
        Disk(mount, mounted=False).read_only(writable=True)  # so that pytest can remove it
