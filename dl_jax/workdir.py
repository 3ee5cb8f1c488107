"""A run's work directory: held by one process at a time, and holding one run on one dataset.

- `hold` takes the directory for this process, first thing after the command line is parsed:
  an exclusive `flock` on its `run.lock`, with the holder's PID written in it. A second process
  is refused at once, naming the PID. The kernel drops a flock when its process ends, however it
  ends (SIGKILL included), so a rerun after a crash is never refused. Writing the PID, and a
  file created and removed beside it, are the start-up check that the directory is writable.
- `prepare` then checks that the directory holds nothing, or a run this one may continue: the
  same config (up to fields that do not change results) trained on the same data, compared by
  the fingerprints of the decoded arrays. It writes the resolved config and the data's identity
  into config.json.

A flock is local to one host. On a file system shared between hosts (NFS, a gcsfuse-mounted
bucket), two hosts are not kept apart; a `gs://` URL is refused, since work directories are
local paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dl_jax import config
from dl_jax.errors import ConfigError, WorkdirBusy
from dl_jax.files import replacing, storage_errors

LOCK = "run.lock"  # holds the PID of the process that has the directory, while it has it
CONFIG = "config.json"


@contextlib.contextmanager
def hold(workdir: str | Path) -> Iterator[Path]:
    """Hold `workdir` for this process while the block runs (see the module docstring).

    Refused before anything is written: a path that is a file or a URL; a directory that holds
    something other than a dl_jax run; a directory another process holds (WorkdirBusy). A
    directory this call created is removed again if the block leaves nothing in it but the lock.
    """
    if "://" in str(workdir):
        raise ConfigError(
            f"--workdir={workdir}: URLs are not supported; use a local or mounted directory"
        )
    workdir = Path(workdir)
    _check_is_a_run(workdir)
    created = [p for p in (workdir, *workdir.parents) if not p.exists()]
    fd = _lock(workdir)
    try:
        yield workdir
    finally:
        with contextlib.suppress(OSError):  # the directory may have become unwritable
            os.ftruncate(fd, 0)  # no stale PID once released (after SIGKILL, flock decides)
            if created and [p.name for p in workdir.iterdir()] == [LOCK]:
                (workdir / LOCK).unlink()  # nothing was written: leave no trace
                for path in created:
                    path.rmdir()
        os.close(fd)  # releases the flock


def _check_is_a_run(workdir: Path) -> None:
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir={workdir} is a file, not a directory")
    if workdir.is_dir():
        names = sorted(p.name for p in workdir.iterdir())
        if names and CONFIG not in names and names != [LOCK]:
            raise ConfigError(
                f"--workdir={workdir} is not empty and holds no dl_jax run "
                f"(found: {', '.join(names[:5])}); choose a new or empty directory"
            )


def _lock(workdir: Path) -> int:
    """Create the directory if needed, flock its lock file and write our PID; the open fd."""
    path = workdir / LOCK
    while True:
        with storage_errors(f"--workdir={workdir}"):
            workdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 100).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkdirBusy(
                f"--workdir={workdir} is in use by another run (PID {holder}); wait for it to "
                "end, or choose another --workdir"
            ) from None
        # A holder that left the directory empty removes the lock file as it lets go; if we
        # locked that removed file, try again on the one that is there now.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        os.close(fd)
    try:
        with storage_errors(f"--workdir={workdir}"):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.fsync(fd)
            probe_fd, probe = tempfile.mkstemp(dir=workdir, prefix=".write-check-")  # new files
            os.close(probe_fd)
            os.unlink(probe)
    except BaseException:
        os.close(fd)
        raise
    return fd


def prepare(
    workdir: Path, cfg, harmless: tuple[str, ...], dataset: dict, provenance: dict | None = None
) -> str | None:
    """Check that `workdir` is empty or holds a run that this one continues; write config.json.

    Refused with a ConfigError, before anything is written: a run whose saved config differs
    from `cfg` in a field outside `harmless` (dotted keys, or prefixes ending in a dot), and a
    run that was trained on other data than `dataset` (`data.Splits.identity()`): a path may
    change between runs, the data may not. config.json records `cfg` and `dataset`.

    A run that saved nothing (it stopped before its first checkpoint and its first metrics:
    a bad setting found at its first steps) has nothing to protect: its config is replaced,
    and the one-line note returned says so.

    `provenance` (`dl_jax.provenance.collect()`) joins config.json's list of the stacks the run
    has run on, when it differs from the last one there.
    """
    path = workdir / CONFIG
    note, history = None, []
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path} is unreadable ({e}); choose another --workdir") from None
        saved_dataset = saved.pop("dataset", None)
        history = saved.pop("provenance", [])
        changed = config.differences(saved, cfg, harmless)
        refusal = (
            f"--workdir={workdir} holds a run with a different config ({'; '.join(changed)}); "
            "resume it with its own values, or choose another --workdir"
            if changed
            else _other_data(workdir, saved_dataset, dataset)
        )
        if refusal and not _saved_nothing(workdir):
            raise ConfigError(refusal)
        if refusal:
            note = (
                f"note: --workdir={workdir} held a run that saved nothing (no checkpoint, no "
                f"metrics); this run replaces it ({'; '.join(changed) or 'other data'})"
            )
            history = []
    if provenance and (not history or history[-1] != provenance):
        history = [*history, provenance]
    record = {**config.to_dict(cfg), "dataset": dataset, "provenance": history}
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return note


def _saved_nothing(workdir: Path) -> bool:
    """Whether `workdir` holds only its config.json, its lock, empty files and a checkpoints/
    folder without a finished save (orbax names those by their step number)."""
    for entry in workdir.iterdir():
        if entry.name in (CONFIG, LOCK) or (entry.is_file() and entry.stat().st_size == 0):
            continue
        if entry.name == "checkpoints" and entry.is_dir():
            if any(step.name.isdigit() for step in entry.iterdir()):
                return False
            continue
        return False
    return True


def _other_data(workdir: Path, saved: dict | None, now: dict) -> str | None:
    """Why the run in `workdir` (trained on `saved`, if it says) cannot go on with `now`."""
    if not saved or not now:  # a study's directory holds runs, each with its own data
        return None
    changed = [s for s in ("train", "test") if saved[s]["sha256"] != now[s]["sha256"]]
    if not changed:
        return None
    first = changed[0]
    was, new = (
        f"{d['name']} from {d['source']}, {d[first]['examples']} examples, "
        f"sha256 {d[first]['sha256'][:12]}"
        for d in (saved, now)
    )
    splits = (
        "the train and test splits differ" if len(changed) == 2 else f"the {first} split differs"
    )
    return (
        f"--workdir={workdir} holds a run trained on other data: {splits} (the run's "
        f"{first} split: {was}; now: {new}); resume it with its own data, or choose another "
        "--workdir"
    )
