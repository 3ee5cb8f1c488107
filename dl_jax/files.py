"""Writing files so that a crash never leaves one half-written."""

import contextlib
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path):
    """Write to a temporary file beside `path`, which replaces `path` only when the block ends
    without error. The temporary name keeps `path`'s suffix, for writers that go by it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
