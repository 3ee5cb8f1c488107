"""Errors whose message is a complete, one-line explanation for the person running the code.

Experiment scripts catch `DLJaxError` at the command-line boundary (`config.run`) and print
its message as a single line with a non-zero exit, instead of a traceback.
"""


class DLJaxError(Exception):
    """Base class: the message names the problem and, where there are any, the valid choices."""


class ConfigError(DLJaxError, ValueError):
    """A bad config value, override or name."""


class DataError(DLJaxError, ValueError):
    """Missing, corrupt or malformed data."""


class DivergedError(DLJaxError, FloatingPointError):
    """Training produced a non-finite loss."""


def unknown_name(kind: str, name: object, valid) -> ConfigError:
    """The error for a name looked up in a table: it lists the valid names."""
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
