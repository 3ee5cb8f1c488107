"""Errors whose message is a complete, one-line explanation for the person running the code.

Experiment scripts catch `DLJaxError` at the command-line boundary (`cli.run`) and print
its message as a single line with a non-zero exit, instead of a traceback.
"""

import errno
import os
import re

# What an interrupted run says when it stops at once (a Ctrl-C, or the second one in training).
INTERRUPTED = (
    "interrupted: stopped at once, without saving; run the same command to resume from the last "
    "checkpoint"
)


class DLJaxError(Exception):
    """Base class: the message names the problem and, where there are any, the valid choices."""

    exit_code = 2  # the command line's exit status for it


class ConfigError(DLJaxError, ValueError):
    """A bad config value, override or name."""


class DataError(DLJaxError, ValueError):
    """Missing, corrupt or malformed data."""


class DivergedError(DLJaxError, FloatingPointError):
    """Training produced a non-finite loss."""


class CheckpointError(DLJaxError):
    """No checkpoint in a run's directory can be read."""


class WorkdirBusy(DLJaxError):
    """Another process holds the run's work directory."""


class StorageError(DLJaxError):
    """A file the package writes could not be written: the disk is full, read-only, ..."""


class Stopped(DLJaxError):
    """The run received SIGTERM or SIGINT (Ctrl-C) and stopped after saving a checkpoint.

    Its exit status is 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as for any
    process that the signal stops, so that a job scheduler sees the run as unfinished and can
    start it again; the same command resumes it.
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def unknown_name(kind: str, name: object, valid) -> ConfigError:
    """The error for a name looked up in a table: it lists the valid names."""
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")


# What a full or locked-down disk is called in the one line; other causes use os.strerror.
_REMEDIES = {
    errno.ENOSPC: "free some space, then run the same command to resume",
    errno.EDQUOT: "free some space, then run the same command to resume",
    errno.EROFS: "make it writable or choose another --workdir",
    errno.EACCES: "make it writable or choose another --workdir",
    errno.EPERM: "make it writable or choose another --workdir",
}


def os_error_code(error: BaseException) -> int | None:
    """The errno behind `error`: an OSError's, or the one tensorstore (under orbax) puts in its
    message as `[os_error_code='28']`; None when the error did not come from the file system."""
    while error is not None:
        if isinstance(error, OSError) and error.errno:
            return error.errno
        found = re.search(r"os_error_code='?(\d+)", str(error))
        if found:
            return int(found.group(1))
        error = error.__cause__ or error.__context__
    return None


def storage_error(path, code: int) -> StorageError:
    """`cannot write PATH: no space left on device; free some space, then ...`."""
    remedy = _REMEDIES.get(code, "fix that, then run the same command to resume")
    return StorageError(f"cannot write {path}: {os.strerror(code).lower()}; {remedy}")
