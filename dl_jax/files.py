"""Writing files so that a crash or a full disk never leaves one half-written.

Every file the package writes goes through here. A write that the file system refuses (no
space, read-only, no permission) becomes a `StorageError` that names the file and the cause in
one line; the file keeps what it held before.
"""

import contextlib
import os
from pathlib import Path

from dl_jax.errors import os_error_code, storage_error


@contextlib.contextmanager
def storage_errors(path: Path):
    """Turn an OSError inside the block into a one-line StorageError about `path`."""
    try:
        yield
    except OSError as e:
        code = os_error_code(e)
        if code is None:  # not a refusal of the file system's: keep its traceback
            raise
        raise storage_error(path, code) from None


@contextlib.contextmanager
def replacing(path: Path):
    """Write to a temporary file beside `path`, which replaces `path` only when the block ends
    without error. The temporary name keeps `path`'s suffix, for writers that go by it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with storage_errors(path):
            yield tmp
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def append(path: Path, text: str) -> None:
    """Append `text` to `path` whole, or not at all: a failed write is cut off again."""
    data = text.encode()
    with storage_errors(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)  # a full disk is reported here, not later at close
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
