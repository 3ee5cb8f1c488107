"""Real faults, as a user meets them, for the single MLP and for the grid.

Each story starts from a half-done run on a small disk of its own (`scripts.Disk`: a tmpfs
where the tests run as root), then meets every fault in
turn: another process holding the work directory, other data, a read-only file system, Ctrl-C,
Ctrl-C twice, and a full disk. Each fault must give exactly one line on stderr and its exit
status, leave the files of the run as they were (or, for a full disk, every complete checkpoint
loadable), and let the same command resume. The run then ends bit-identical to one that never
stopped (`reference`).
"""

import signal

import pytest

from scripts import (
    EXPERIMENTS,
    assert_checkpoints_intact,
    assert_one_line,
    assert_same_results,
    files_of,
    held_by_another_process,
    run,
    write_idx_folder,
)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory, sample):
    """An IDX folder with other data: the sample's first 2,000 training images, its test set."""
    return write_idx_folder(tmp_path_factory.mktemp("other_data"), sample, train=2000)


# The MLP's story runs in the default suite; the CNN's and the grid's add about 25 s on a fresh
# machine, and run with --runslow (as CI does).
@pytest.mark.parametrize(
    "name", [n if n == "mlp" else pytest.param(n, marks=pytest.mark.slow) for n in EXPERIMENTS]
)
def test_every_fault_gets_one_line_and_the_run_still_ends_bit_identical(
    name, reference, disk, other_data
):
    script, args = EXPERIMENTS[name]
    workdir = disk.path / "run"
    assert run(script, args, workdir, "after_save:2").returncode == -signal.SIGKILL
    before = files_of(workdir)

    with held_by_another_process(workdir) as pid:
        busy = run(script, args, workdir)
    assert_one_line(busy, 2, f"error: --workdir={workdir} is in use by another run (PID {pid})")

    elsewhere = [a for a in args if not a.startswith("--data.source")]
    mixed = run(script, [*elsewhere, f"--data.dir={other_data}"], workdir)
    assert_one_line(mixed, 2, "holds a run trained on other data: the train split differs")
    assert files_of(workdir) == before

    disk.read_only()
    read_only = run(script, args, workdir)
    disk.read_only(writable=True)
    cause = "read-only file system" if disk.mounted else "permission denied"
    assert_one_line(read_only, 2, f"error: cannot write --workdir={workdir}: {cause}")
    assert files_of(workdir) == before

    ctrl_c = run(script, args, workdir, "sigint:2")
    assert_one_line(ctrl_c, 130, "stopped: Ctrl-C (SIGINT) received; saved step ")
    assert "run the same command to resume" in ctrl_c.stderr
    twice = run(script, args, workdir, "sigint_twice:1")
    assert_one_line(twice, 130, "interrupted: stopped at once, without saving; run the same")

    checkpoint_bytes = sum(f.stat().st_size for f in (reference[name] / "checkpoints").rglob("*"))
    checkpoint_bytes //= len(list((reference[name] / "checkpoints").iterdir()))
    with disk.full(leave=checkpoint_bytes // 2) as interrupt:  # room for half a checkpoint
        full = run(script, args, workdir, interrupt)
        assert_one_line(full, 2, "no space left on device; free some space, then run the same")
        assert_checkpoints_intact(workdir)

    resumed = run(script, args, workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stdout and "warning" not in resumed.stdout
    assert_same_results(workdir, reference[name])
