import errno
import os
import shutil

import pytest

from dl_jax import files
from dl_jax.errors import StorageError
from dl_jax.files import append, replacing


def test_replacing_swaps_in_the_new_file_only_when_the_block_ends_well(tmp_path):
    path = tmp_path / "results.md"
    path.write_text("old")
    with replacing(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".md" and tmp != path
        tmp.write_text("new")
        assert path.read_text() == "old"  # untouched while the block runs
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.md"]


def test_a_crash_in_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.md"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.md"]


def test_a_full_disk_is_one_line_and_leaves_every_file_as_it_was(disk):
    if not disk.mounted:
        pytest.skip("needs a tmpfs to fill (root); test_a_write_cut_short_is_cut_off runs instead")
    tmpfs = disk.path
    log, table = tmpfs / "metrics.jsonl", tmpfs / "results.md"
    append(log, '{"epoch": 1}\n')
    table.write_text("old")
    (tmpfs / "filler").write_bytes(b"\0" * shutil.disk_usage(tmpfs).free)  # not one byte left
    full = f"cannot write {log}: no space left on device; free some space, then run the same"
    with pytest.raises(StorageError, match=full):
        append(log, '{"epoch": 2}\n' * 5000)
    assert log.read_text() == '{"epoch": 1}\n'  # cut back to what it held, not half a line
    no_space = pytest.raises(StorageError, match=f"cannot write {table}: no space left on device")
    with no_space, replacing(table) as tmp:
        tmp.write_text("new" * 100_000)
    assert table.read_text() == "old" and not list(tmpfs.glob(".*tmp*"))
    (tmpfs / "filler").unlink()
    append(log, '{"epoch": 2}\n')
    assert log.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_a_write_cut_short_is_cut_off(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    append(log, '{"epoch": 1}\n')
    real_write = os.write

    def half_then_full(fd, data):  # a disk that fills up in the middle of the record
        if len(data) > 4:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", half_then_full)
    with pytest.raises(StorageError, match=f"cannot write {log}: no space left on device"):
        append(log, '{"epoch": 2}\n')
    monkeypatch.undo()
    assert log.read_text() == '{"epoch": 1}\n'
