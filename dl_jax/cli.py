"""The one command-line boundary: every experiment script's `__main__` is `cli.run(...)`.

It parses the dotted overrides, joins a multi-host run when `--dist.*` asks for one
(`jax.distributed.initialize`, before anything touches the devices), holds the run's work
directory (on process 0 only, for all of them) before any data is loaded or anything compiled,
calls the script's `main(cfg)`, and turns what the user can fix into one line on stderr and an
exit status:

- a `DLJaxError` (bad name, value, data or workdir; divergence; a full or read-only disk):
  `error: <message>`, exit status 2;
- `Stopped` (SIGTERM or Ctrl-C, after saving a checkpoint): `stopped: <message>`, exit status
  143 or 130;
- Ctrl-C before training starts, or a second Ctrl-C during training, which stops at once
  without saving: `interrupted: ...`, exit status 130.

Anything else is a bug and keeps its traceback. This is the only place that reads `sys.argv`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dl_jax import config, workdir
from dl_jax.errors import INTERRUPTED, DLJaxError, Stopped


def run(main: Callable[[Any], Any], default_cfg, doc: str, argv: Sequence[str] | None = None):
    """Parse overrides for `default_cfg` and call `main(cfg)`, holding `cfg.workdir` (when the
    config has one) while it runs; user errors become one line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        text = (
            doc.strip() + "\n\noptions (with defaults):\n" + "\n".join(config.describe(default_cfg))
        )
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `--help | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return None
    try:
        cfg = config.parse_overrides(default_cfg, argv)
        with _held(cfg):
            return main(cfg)
    except DLJaxError as e:
        if isinstance(e, Stopped):  # saved; a Ctrl-C during the exit has nothing left to stop
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"{'stopped' if isinstance(e, Stopped) else 'error'}: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    except KeyboardInterrupt:  # before training started; a second Ctrl-C in training exits itself
        print(INTERRUPTED, file=sys.stderr)
        raise SystemExit(130) from None


@contextlib.contextmanager
def _held(cfg):
    """Join a multi-host run if `cfg.dist` asks for one, then hold `cfg.workdir` (if the config
    has one): on process 0, for all processes, which stop together if it cannot be held."""
    if not hasattr(cfg, "workdir"):
        yield
    elif getattr(cfg, "dist", None) is None or not cfg.dist.enabled:
        with workdir.hold(cfg.workdir):
            yield
    else:
        from dl_jax import parallel  # imports jax: only for multi-host runs here

        parallel.initialize(cfg.dist)  # before anything touches the devices
        with parallel.held_by_main_process(cfg.workdir):
            yield
