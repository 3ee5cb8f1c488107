"""Run an experiment script and stop it at an exact point: a test helper, not a test.

    python tests/interrupt.py KIND:N experiments/mnist_mlp.py --workdir=... [args]

The training loop offers the checkpointer every chunk boundary (`Checkpointer.maybe_save`);
this wrapper counts them, and the saves, and at the N-th one of KIND:
- boundary: SIGKILL before anything is saved there;
- after_save: SIGKILL once that save is complete on disk;
- during_save: SIGKILL while that save is being written (it is asynchronous);
- sigterm: send SIGTERM to itself, as a preempting scheduler would, then carry on;
- sigint: send SIGINT to itself, as Ctrl-C in its terminal would, then carry on;
- sigint_twice: Ctrl-C, then Ctrl-C again once the first one has been noted;
- enospc: that save fails as a full disk makes it fail under orbax (where the tests cannot
  mount a small file system to fill up for real).
"""

import os
import runpy
import signal
import sys

from dl_jax.checkpoint import Checkpointer

kind, n = sys.argv[1].split(":")
n = int(n)
counts = {"boundary": 0, "save": 0}
real_maybe_save, real_save = Checkpointer.maybe_save, Checkpointer.save


def maybe_save(self, *args, **kwargs):
    counts["boundary"] += 1
    if counts["boundary"] == n and kind == "boundary":
        os.kill(os.getpid(), signal.SIGKILL)
    if counts["boundary"] == n and kind in ("sigterm", "sigint", "sigint_twice"):
        os.kill(os.getpid(), signal.SIGTERM if kind == "sigterm" else signal.SIGINT)
    if counts["boundary"] == n and kind == "sigint_twice":
        os.kill(os.getpid(), signal.SIGINT)  # the handler of the first one has run by now
    return real_maybe_save(self, *args, **kwargs)


def disk_full(*args, **kwargs):
    raise ValueError(  # what tensorstore raises under orbax
        'RESOURCE_EXHAUSTED: Error writing "params" in OCDBT database: Failed to write 203629 '
        "bytes to file 8: No space left on device [os_error_code='28']"
    )


def save(self, *args, **kwargs):
    counts["save"] += 1
    if counts["save"] == n and kind == "enospc":
        self._manager.save = disk_full
    real_save(self, *args, **kwargs)
    if counts["save"] == n and kind == "during_save":
        os.kill(os.getpid(), signal.SIGKILL)
    if counts["save"] == n and kind == "after_save":
        self._manager.wait_until_finished()
        os.kill(os.getpid(), signal.SIGKILL)


Checkpointer.maybe_save, Checkpointer.save = maybe_save, save
if kind.startswith("sigint"):  # Ctrl-C as in a terminal, even where the tests run in the background
    signal.signal(signal.SIGINT, signal.default_int_handler)
script, sys.argv = sys.argv[2], sys.argv[2:]
runpy.run_path(script, run_name="__main__")
