"""Checkpoints: a run saves its whole state as it goes, and continues from it after a crash.

The resume rule, stated here and nowhere else: when a run's work directory holds checkpoints,
the run continues from the newest one that restores and passes its checksum; otherwise it starts
fresh. The same command line therefore starts a run and resumes it.

- What is saved: the training state (params, optimizer state with its injected hyperparameters,
  step; for a grid, every cell's) and the `Position`: the epoch, the step inside it, and what the
  epoch has gathered so far. Saves happen only between compiled chunks, so a resumed run takes
  exactly the steps of an uninterrupted one and ends bit-identical to it.
- When: every `every_steps` steps, once `every_minutes` have passed since the last save, after
  the last epoch, and on SIGTERM (the preemption signal) at the next chunk boundary, after which
  `Preempted` is raised. With several hosts (`jax.distributed`), orbax's preemption sync point
  decides instead.
- Crash safety: orbax writes each step into a temporary folder and renames it when complete, so
  a half-written step is never taken (and its folder is removed at the next start). A sha256 of
  the state, saved with it, catches what a restore alone does not: a flipped byte restores
  without error. An unreadable newest checkpoint falls back to the one before, and says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from dl_jax import config
from dl_jax.config import CheckpointConfig
from dl_jax.errors import CheckpointError, ConfigError, Preempted
from dl_jax.files import replacing


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


class Checkpointer:
    """A thin layer over `ocp.CheckpointManager`: when to save, and restore with fallback.

    Use it as a context manager: leaving it waits for an asynchronous save to be written.
    """

    def __init__(self, directory: Path, cfg: CheckpointConfig):
        self.directory = Path(directory).absolute()
        self.cfg = cfg
        for stale in self.directory.glob("*.orbax-checkpoint-tmp*"):  # a save cut short
            shutil.rmtree(stale, ignore_errors=True)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=cfg.max_to_keep, create=True, enable_async_checkpointing=True
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._last_step, self._last_time = 0, time.monotonic()
        self._sigterm = threading.Event()
        self._previous_handler = None

    def __enter__(self) -> Checkpointer:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, lambda *_: self._sigterm.set())
        return self

    def __exit__(self, *exc) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)

    def latest_step(self) -> int | None:
        """The newest complete step on disk."""
        self._manager.wait_until_finished()
        return self._manager.latest_step()

    def restore_or_init(
        self, init_fn: Callable[[], Any], sharding: jax.sharding.Sharding
    ) -> tuple[Any, Position, list[str]]:
        """The newest checkpoint that restores and verifies, else `init_fn()` at Position().

        The state is restored into `jax.eval_shape(init_fn)`, its arrays placed with `sharding`.
        Also returns what happened, as lines for the user: the step resumed, and every newer
        checkpoint that was skipped and why. If checkpoints exist but none can be read, raises
        CheckpointError naming the directory.
        """
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
            for newer, _ in failures:
                self._manager.delete(newer)  # unreadable, and about to be trained again
            position = Position.from_json(restored.meta)
            self._last_step = step
            notes = [
                f"warning: checkpoint step {s} in {self.directory} is unreadable ({reason}); "
                "removed"
                for s, reason in failures
            ]
            notes.append(
                f"resuming from step {step} in {self.directory} ({position.epoch} epochs "
                f"and {position.step} steps done)"
            )
            return restored.state, position, notes
        if failures:
            raise CheckpointError(
                f"no readable checkpoint in {self.directory}: "
                + "; ".join(f"step {s}: {reason}" for s, reason in failures)
                + "; remove the directory to start over"
            )
        return init_fn(), Position(), []

    def maybe_save(
        self, step: int, get_state: Callable[[], Any], position: Position, *, force: bool = False
    ) -> None:
        """Save `get_state()` at `step` if one is due, or forced; on SIGTERM save and stop.

        Called by the training loop between chunks and after each epoch's record is written.
        """
        preempted = self._sigterm.is_set() or self._manager.reached_preemption(step)
        due = (
            force
            or preempted
            or (self.cfg.every_steps and step - self._last_step >= self.cfg.every_steps)
            or (
                self.cfg.every_minutes
                and time.monotonic() - self._last_time >= 60 * self.cfg.every_minutes
            )
        )
        if due and step != self._last_step:
            self.save(step, get_state(), position)
        if preempted:
            self._manager.wait_until_finished()
            raise Preempted(
                f"SIGTERM received; saved step {step} (epoch {position.epoch + 1}, {position.step} "
                f"steps into it) in {self.directory}; run the same command to resume"
            )

    def save(self, step: int, state, position: Position) -> None:
        """Save now (asynchronously: the arrays are copied before this returns)."""
        meta = {**position.to_json(), "sha256": checksum(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._last_step, self._last_time = step, time.monotonic()


def prepare_workdir(workdir: Path, cfg, harmless: tuple[str, ...]) -> None:
    """Create `workdir`, or check that it holds a run this one may continue; write config.json.

    Refused with a ConfigError, so that nothing is overwritten: a path that is a file; a
    directory that is not empty but holds no config.json (it is not a dl_jax run); and a run
    whose saved config differs from `cfg` in a field outside `harmless` (dotted keys, or
    prefixes ending in a dot), since continuing it would change its results.
    """
    workdir = Path(workdir)
    saved_path = workdir / "config.json"
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir={workdir} is a file, not a directory")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not saved_path.exists():
            found = ", ".join(sorted(p.name for p in workdir.iterdir())[:5])
            raise ConfigError(
                f"--workdir={workdir} is not empty and holds no dl_jax run "
                f"(found: {found}); choose a new or empty directory"
            )
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"{saved_path} is unreadable ({e}); choose another --workdir"
            ) from None
        changed = config.differences(saved, cfg, harmless)
        if changed:
            raise ConfigError(
                f"--workdir={workdir} holds a run with a different config ({'; '.join(changed)}); "
                "resume it with its own values, or choose another --workdir"
            )
    workdir.mkdir(parents=True, exist_ok=True)
    with replacing(saved_path) as tmp:  # the full resolved config, as every run records it
        tmp.write_text(json.dumps(config.to_dict(cfg), indent=2) + "\n")
