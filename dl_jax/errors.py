"""Errors whose message is a complete, one-line explanation for the person running the code.

Experiment scripts catch `DLJaxError` at the command-line boundary (`config.run`) and print
its message as a single line with a non-zero exit, instead of a traceback.
"""


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


class Preempted(DLJaxError):
    """The run received SIGTERM and stopped after saving a checkpoint.

    Its exit status is 143 (128 + SIGTERM), as for any process that SIGTERM stops, so that a job
    scheduler sees the run as unfinished and can start it again; the same command resumes it.
    """

    exit_code = 143


def unknown_name(kind: str, name: object, valid) -> ConfigError:
    """The error for a name looked up in a table: it lists the valid names."""
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
