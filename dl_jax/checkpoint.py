"""Checkpoints: a run saves its whole state as it goes, and continues from it after a crash.

The resume rule, stated here and nowhere else: when a run's work directory holds checkpoints,
the run continues from the newest one that restores and passes its checksum; otherwise it starts
fresh. The same command line therefore starts a run and resumes it.

- What is saved: the training state (params, optimizer state with its injected hyperparameters,
  step; for a grid, every cell's) and the `Position`: the epoch, the step inside it, and what the
  epoch has gathered so far. Saves happen only between compiled chunks, so a resumed run takes
  exactly the steps of an uninterrupted one and ends bit-identical to it.
- When: every `every_steps` steps, once `every_minutes` have passed since the last save, after
  the last epoch, and on SIGTERM (the preemption signal) or SIGINT (Ctrl-C) at the next chunk
  boundary, after which `Stopped` is raised; a second Ctrl-C exits at once, without saving.
  With several hosts (`jax.distributed`), orbax's preemption sync point decides instead.
- Crash safety: orbax writes each step into a temporary folder and renames it when complete, so
  a half-written step is never taken (and its folder is removed at the next start). A sha256 of
  the state, saved with it, catches what a restore alone does not: a flipped byte restores
  without error. An unreadable newest checkpoint falls back to the one before, and says so.
- A save the file system refuses (full, read-only) becomes one line (`StorageError`); its
  partial folder is removed, and the checkpoints before it stay as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from dl_jax.config import CheckpointConfig
from dl_jax.errors import INTERRUPTED, CheckpointError, Stopped, os_error_code, storage_error

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


@dataclasses.dataclass
class Position:
    """Where a run stands: enough, with the state, to continue it exactly."""

    epoch: int = 0  # the epoch in progress, counted from 0 (= the number of finished epochs)
    step: int = 0  # steps of that epoch already trained
    loss_sum: Any = 0.0  # float64 sum of those steps' losses (an array [C] for a grid)
    seconds: float = 0.0  # their training time

    def to_json(self) -> dict:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "loss_sum": np.asarray(self.loss_sum, np.float64).tolist(),
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, meta: dict) -> Position:
        return cls(
            meta["epoch"], meta["step"], np.asarray(meta["loss_sum"], np.float64), meta["seconds"]
        )


def checksum(state) -> str:
    """sha256 of every leaf of `state`: its path, dtype, shape and bytes."""
    digest = hashlib.sha256()
    arrays = jax.device_get(jax.tree.map(jnp.asarray, state))  # a Python int as JAX holds it
    for path, leaf in jax.tree_util.tree_leaves_with_path(arrays):
        array = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)} {array.dtype} {array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _from_a_failed_write(error: BaseException | None) -> bool:
    return error is not None and os_error_code(error) is not None


class _FailedSaveLogs(logging.Filter):
    """Drops orbax's reports of a save that the file system refused or Ctrl-C cut short: orbax
    logs them with tracebacks from each of its threads (absl), and asyncio logs each of orbax's
    tasks left behind. The error itself reaches the user, as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        error = record.exc_info[1] if record.exc_info else None
        reported = (
            isinstance(error, KeyboardInterrupt)
            or _from_a_failed_write(error)
            or "os_error_code=" in record.getMessage()
        )
        return not (reported and (record.name == "asyncio" or "orbax" in record.pathname))


_LOG_FILTER = _FailedSaveLogs()


def _quiet_failed_save_leftovers() -> None:
    """Keep orbax's leftovers of a refused save out of stderr, for the rest of the process.

    They come up to interpreter shutdown: asyncio reports each abandoned task when it is
    collected, tensorstore's late callbacks find orbax's event loop closed (an "unraisable"
    RuntimeError), and the write fragments of an array sharded over several devices are
    collected unawaited (a RuntimeWarning). Anything else is reported as before.
    """
    warnings.filterwarnings(
        "ignore", r"coroutine '.*\.write_fragment' was never awaited", RuntimeWarning
    )
    for name in ("absl", "asyncio"):
        if _LOG_FILTER not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_LOG_FILTER)
    previous = sys.unraisablehook
    if getattr(previous, "quiets_failed_saves", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if _from_a_failed_write(error) or str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook.quiets_failed_saves = True
    sys.unraisablehook = hook


def _stop_at_once(_signum, _frame) -> None:
    """The second Ctrl-C: exit now, wherever the run is, as the user asked.

    Nothing is lost that the next run needs: checkpoints are committed by a rename, so a save
    cut short is only a temporary folder (removed at the next start), and a metrics line cut
    short is dropped when the run resumes from its last checkpoint.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.write(sys.stderr.fileno(), f"{INTERRUPTED}\n".encode())
    os._exit(130)


class Checkpointer:
    """A thin layer over `ocp.CheckpointManager`: when to save, and restore with fallback.

    Use it as a context manager: it catches SIGTERM and SIGINT while it is open, and leaving it
    waits for an asynchronous save to be written.
    """

    def __init__(self, directory: Path, cfg: CheckpointConfig, *, read_only: bool = False):
        """`read_only`: only restore (`restore_newest`), and change nothing on disk, not even a
        partial save, which may be one in progress in a run that is training."""
        self.directory = Path(directory).absolute()
        self.cfg = cfg
        if not read_only:
            self._remove_partial_saves()  # a save cut short by a crash
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None if read_only else cfg.max_to_keep,
            save_interval_steps=0 if read_only else 1,
            create=not read_only,
            read_only=read_only,
            enable_async_checkpointing=not read_only,
        )
        absl_logger = logging.getLogger("absl")  # read-only: orbax warns that it is
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR if read_only else level)
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        finally:
            absl_logger.setLevel(level)
        self._last_step, self._last_time = 0, time.monotonic()
        self._signal: int | None = None  # the stop signal received, if any
        self._previous_handlers: dict[int, Any] = {}

    def __enter__(self) -> Checkpointer:
        _quiet_failed_save_leftovers()
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            for signum in SIGNAL_NAMES:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup, `cmd &` in a script
                    self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, exc_type, *_) -> None:
        try:
            if exc_type is None:
                with self._storage_errors():
                    self._manager.wait_until_finished()
                self._manager.close()
            else:  # an error is on its way out already: don't mask it
                with contextlib.suppress(Exception):
                    self._manager.wait_until_finished()
                    self._manager.close()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame) -> None:
        """Stop at the next chunk boundary; after Ctrl-C, the next Ctrl-C stops at once."""
        self._signal = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, _stop_at_once)

    @contextlib.contextmanager
    def _storage_errors(self):
        """A save that the file system refuses: remove its partial folder, raise one line."""
        try:
            yield
        except Exception as e:  # orbax and tensorstore wrap the OSError in their own types
            code = os_error_code(e)
            if code is None:
                raise
            with contextlib.suppress(Exception):
                self._manager.wait_until_finished()
            self._remove_partial_saves()
            raise storage_error(self.directory, code) from None

    def _remove_partial_saves(self) -> None:
        for partial in self.directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)

    def close(self) -> None:
        """Let go of the directory (for a checkpointer not used as a context manager)."""
        self._manager.close()

    def latest_step(self) -> int | None:
        """The newest complete step on disk."""
        with self._storage_errors():
            self._manager.wait_until_finished()
        return self._manager.latest_step()

    def restore_or_init(
        self, init_fn: Callable[[], Any], sharding: jax.sharding.Sharding
    ) -> tuple[Any, Position, list[str]]:
        """The newest checkpoint that restores and verifies, else `init_fn()` at Position().

        The state is restored into `jax.eval_shape(init_fn)`, its arrays placed with `sharding`.
        Also returns what happened, as lines for the user: the step resumed, and every newer
        checkpoint that was skipped and why (it is removed: it is about to be trained again).
        If checkpoints exist but none can be read, raises CheckpointError naming the directory.
        """
        found = self._newest_readable(init_fn, sharding)
        if found is None:
            return init_fn(), Position(), []
        state, position, step, failures = found
        with self._storage_errors():
            for newer, _ in failures:
                self._manager.delete(newer)
        self._last_step = step
        notes = [
            f"warning: checkpoint step {s} in {self.directory} is unreadable ({reason}); removed"
            for s, reason in failures
        ]
        notes.append(
            f"resuming from step {step} in {self.directory} ({position.epoch} epochs "
            f"and {position.step} steps done)"
        )
        return state, position, notes

    def restore_newest(
        self, init_fn: Callable[[], Any], sharding: jax.sharding.Sharding
    ) -> tuple[Any, int, list[tuple[int, str]]]:
        """The state and step of the newest checkpoint that restores and verifies, and the newer
        ones that did not, as (step, reason) (as `restore_or_init`, but nothing is removed);
        CheckpointError if there is none."""
        found = self._newest_readable(init_fn, sharding)
        if found is None:
            raise CheckpointError(f"no checkpoint in {self.directory}: the run saved none yet")
        state, _, step, failures = found
        return state, step, failures

    def _newest_readable(self, init_fn, sharding):
        """(state, position, step, the newer unreadable (step, reason), newest first), or None
        when there are no checkpoints; CheckpointError when none of them can be read."""
        abstract = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
            jax.eval_shape(init_fn),
        )
        failures = []  # (step, reason), newest first
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                    ),
                )
                if checksum(restored.state) != restored.meta["sha256"]:
                    raise ValueError("its checksum does not match its contents")
            except Exception as e:  # orbax and tensorstore raise many types for damaged files
                failures.append((step, str(e).splitlines()[0][:200] if str(e) else repr(e)))
                continue
            return restored.state, Position.from_json(restored.meta), step, failures
        if failures:
            raise CheckpointError(
                f"no readable checkpoint in {self.directory}: "
                + "; ".join(f"step {s}: {reason}" for s, reason in failures)
                + "; remove the directory to start over"
            )
        return None

    def maybe_save(
        self, step: int, get_state: Callable[[], Any], position: Position, *, force: bool = False
    ) -> None:
        """Save `get_state()` at `step` if one is due, or forced; on SIGTERM or SIGINT save and
        stop (raise `Stopped`).

        Called by the training loop between chunks and after each epoch's record is written.
        """
        if self._signal is None and self._manager.reached_preemption(step):
            self._signal = signal.SIGTERM
        stopping = self._signal is not None
        due = (
            force
            or stopping
            or (self.cfg.every_steps and step - self._last_step >= self.cfg.every_steps)
            or (
                self.cfg.every_minutes
                and time.monotonic() - self._last_time >= 60 * self.cfg.every_minutes
            )
        )
        if due and step != self._last_step:
            self.save(step, get_state(), position)
        if stopping:
            with self._storage_errors():
                self._manager.wait_until_finished()
            raise Stopped(
                f"{SIGNAL_NAMES[self._signal]} received; saved step {step} (epoch "
                f"{position.epoch + 1}, {position.step} steps into it) in {self.directory}; "
                "run the same command to resume",
                self._signal,
            )

    def save(self, step: int, state, position: Position) -> None:
        """Save now (asynchronously: the arrays are copied before this returns)."""
        meta = {**position.to_json(), "sha256": checksum(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        with self._storage_errors():  # also reports the previous save, if it failed
            self._manager.save(step, args=args, force=True)
        self._last_step, self._last_time = step, time.monotonic()
