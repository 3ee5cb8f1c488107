"""The work directory: one process at a time, only a run's own directory, the same data."""

import dataclasses
import json
import os

import pytest

from dl_jax import workdir
from dl_jax.config import CheckpointConfig, ModelConfig
from dl_jax.errors import ConfigError, DataError, StorageError, WorkdirBusy
from scripts import held_by_another_process


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = ModelConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    workdir: str = "x"


def dataset(train="aa", test="bb", name="mnist", source="IDX folder A"):
    return {
        "name": name,
        "source": source,
        "train": {"examples": 60000, "sha256": train * 32},
        "test": {"examples": 10000, "sha256": test * 32},
    }


def test_hold_writes_the_pid_and_refuses_a_second_holder(tmp_path):
    run = tmp_path / "run"
    with workdir.hold(run):
        assert (run / "run.lock").read_text() == f"{os.getpid()}\n"
        (run / "config.json").write_text("{}")  # the run writes something
        busy = rf"--workdir={run} is in use by another run \(PID {os.getpid()}\); wait for it"
        with pytest.raises(WorkdirBusy, match=busy), workdir.hold(run):
            pass  # a second open file description cannot take the flock either
        assert (run / "run.lock").read_text() == f"{os.getpid()}\n"  # the refusal changed nothing
    assert (run / "run.lock").read_text() == ""  # released: no stale PID
    with workdir.hold(run):  # and free again
        pass


def test_a_killed_holder_never_blocks_the_next_run(tmp_path):
    # The holder is SIGKILLed as the block ends.
    with held_by_another_process(tmp_path) as pid, pytest.raises(WorkdirBusy) as busy:
        workdir.hold(tmp_path).__enter__()
    assert f"(PID {pid})" in str(busy.value)
    assert (tmp_path / "run.lock").read_text() == f"{pid}\n"  # stale, but not locked
    with workdir.hold(tmp_path):
        assert (tmp_path / "run.lock").read_text() == f"{os.getpid()}\n"


def test_a_run_that_fails_before_writing_leaves_no_trace(tmp_path):
    with pytest.raises(DataError), workdir.hold(tmp_path / "new" / "run"):
        raise DataError("no data")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    with pytest.raises(DataError), workdir.hold(tmp_path / "old"):
        raise DataError("no data")
    assert [p.name for p in tmp_path.iterdir()] == ["old"]  # a directory it did not make stays


def test_hold_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"is not empty and holds no dl_jax run \(found: thes"):
        workdir.hold(tmp_path).__enter__()
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        workdir.hold(tmp_path / "thesis.tex").__enter__()
    with pytest.raises(ConfigError, match="gs://bucket/run: URLs are not supported"):
        workdir.hold("gs://bucket/run").__enter__()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    (tmp_path / "thesis.tex").unlink()
    (tmp_path / "run.lock").write_text("")  # a run killed before it wrote its config
    with workdir.hold(tmp_path):
        pass


def test_an_unwritable_workdir_is_refused_at_start_up(disk):
    (disk.path / "run").mkdir()
    disk.read_only()
    cause = "read-only file system" if disk.mounted else "permission denied"
    for path in (disk.path / "run", disk.path / "new"):
        with pytest.raises(StorageError) as error, workdir.hold(path):
            pass
        assert str(error.value) == (
            f"cannot write --workdir={path}: {cause}; make it writable or choose another --workdir"
        )


def trained(path):
    """Make `path` hold what a run that trained has saved: a metrics line."""
    (path / "metrics.jsonl").write_text('{"epoch": 1}\n')


def test_prepare_compares_the_config(tmp_path):
    workdir.prepare(tmp_path, RunConfig(), ("workdir", "checkpoint."), dataset())
    trained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model"]["activation"] == "auto" and saved["dataset"] == dataset()
    harmless = RunConfig(checkpoint=CheckpointConfig(every_steps=5), workdir="./elsewhere")
    workdir.prepare(tmp_path, harmless, ("workdir", "checkpoint."), dataset())  # may resume
    changed = RunConfig(model=ModelConfig(activation="tanh", features=(32, 10)))
    message = (
        r"holds a run with a different config \(model.activation: 'auto' -> 'tanh'; "
        r"model.features: \[128, 64, 10\] -> \[32, 10\]\); resume it with its own values"
    )
    with pytest.raises(ConfigError, match=message):
        workdir.prepare(tmp_path, changed, ("workdir", "checkpoint."), dataset())


def test_prepare_compares_the_data_not_its_path(tmp_path):
    workdir.prepare(tmp_path, RunConfig(), (), dataset())
    trained(tmp_path)
    before = (tmp_path / "config.json").read_text()
    workdir.prepare(tmp_path, RunConfig(), (), dataset(source="IDX folder B"))  # moved: fine
    assert json.loads((tmp_path / "config.json").read_text())["dataset"]["source"] == "IDX folder B"
    (tmp_path / "config.json").write_text(before)
    other = dataset(train="cc", name="fashion_mnist", source="IDX folder F")
    message = (
        f"--workdir={tmp_path} holds a run trained on other data: the train split differs (the "
        "run's train split: mnist from IDX folder A, 60000 examples, sha256 aaaaaaaaaaaa; now: "
        "fashion_mnist from IDX folder F, 60000 examples, sha256 cccccccccccc); resume it with "
        "its own data, or choose another --workdir"
    )
    with pytest.raises(ConfigError) as error:
        workdir.prepare(tmp_path, RunConfig(), (), other)
    assert str(error.value) == message
    with pytest.raises(ConfigError, match="the train and test splits differ"):
        workdir.prepare(tmp_path, RunConfig(), (), dataset(train="cc", test="dd"))
    assert (tmp_path / "config.json").read_text() == before  # nothing written


def test_a_run_that_saved_nothing_is_replaced_by_a_new_config_with_a_note(tmp_path):
    """Its config.json, its lock, empty files and checkpoints/ without a finished step: a run
    that stopped at its first steps. Anything it saved makes the directory refuse again."""
    workdir.prepare(tmp_path, RunConfig(), (), dataset())
    (tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-1").mkdir(parents=True)  # unfinished
    (tmp_path / "run.lock").write_text("")
    (tmp_path / "metrics.jsonl").write_text("")
    changed = RunConfig(model=ModelConfig(features=(32, 10)))
    note = workdir.prepare(tmp_path, changed, (), dataset())
    assert note == (
        f"note: --workdir={tmp_path} held a run that saved nothing (no checkpoint, no metrics); "
        "this run replaces it (model.features: [128, 64, 10] -> [32, 10])"
    )
    assert json.loads((tmp_path / "config.json").read_text())["model"]["features"] == [32, 10]
    assert "other data" in workdir.prepare(tmp_path, changed, (), dataset(train="cc"))
    assert workdir.prepare(tmp_path, changed, (), dataset(train="cc")) is None  # the same run
    (tmp_path / "checkpoints" / "4").mkdir()  # a finished save
    with pytest.raises(ConfigError, match="holds a run with a different config"):
        workdir.prepare(tmp_path, RunConfig(), (), dataset(train="cc"))
    (tmp_path / "checkpoints" / "4").rmdir()
    trained(tmp_path)
    with pytest.raises(ConfigError, match="holds a run with a different config"):
        workdir.prepare(tmp_path, RunConfig(), (), dataset(train="cc"))


def test_config_json_lists_each_stack_the_run_ran_on(tmp_path):
    stack = {"dl_jax": "0.1.0", "packages": {"jax": "0.12.0.1"}, "devices": "8 x cpu"}
    other = {**stack, "packages": {"jax": "0.10.2"}}
    for provenance in (stack, stack, other, other):  # started, resumed, resumed elsewhere twice
        workdir.prepare(tmp_path, RunConfig(), (), dataset(), provenance)
    assert json.loads((tmp_path / "config.json").read_text())["provenance"] == [stack, other]
