import pytest

from dl_jax.files import replacing


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
