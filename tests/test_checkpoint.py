import json
import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import checkpoint, losses, metrics, optim, parallel, tasks, train
from dl_jax.checkpoint import Checkpointer, Position
from dl_jax.config import CheckpointConfig, TrainConfig
from dl_jax.data import Splits
from dl_jax.errors import CheckpointError, ConfigError, DivergedError, Stopped
from dl_jax.models import MLP

REPLICATED = parallel.replicated(parallel.make_mesh(1))
EXAMPLE = {"image": np.zeros((1, 28, 28, 1), np.uint8), "label": np.zeros(1, np.int32)}


def init(seed=0):
    return train.create_train_state(
        MLP((16, 10), "relu"),
        optim.make_optimizer("adam", 1e-3),
        tasks.ImageClassification(),
        seed,
        EXAMPLE,
    )


def equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y), a, b)))


def test_position_round_trips_exactly():
    position = Position(2, 17, np.array([0.1 + 0.2, 1e-300, 12345.678901234567]), 3.25)
    back = Position.from_json(json.loads(json.dumps(position.to_json())))
    assert (back.epoch, back.step, back.seconds) == (2, 17, 3.25)
    np.testing.assert_array_equal(back.loss_sum, position.loss_sum)  # float64, to the last bit


def test_checksum_sees_one_bit():
    state = init()
    kernel = np.array(state.params["Dense_0"]["kernel"])
    kernel.view(np.uint32)[3, 5] ^= 1  # the lowest bit of one weight
    params = {**state.params, "Dense_0": {**state.params["Dense_0"], "kernel": kernel}}
    assert checkpoint.checksum(state) == checkpoint.checksum(init())
    assert checkpoint.checksum(state.replace(params=params)) != checkpoint.checksum(state)


def test_fresh_start_then_restore_into_the_abstract_state(tmp_path):
    cfg = CheckpointConfig(every_steps=0, every_minutes=0)
    with Checkpointer(tmp_path, cfg) as ckpt:
        state, position, notes = ckpt.restore_or_init(init, REPLICATED)
        assert position == Position() and notes == []
        state = state.replace(step=jnp.array(7))
        ckpt.save(7, state, Position(1, 3, 0.5, 2.0))
    with Checkpointer(tmp_path, cfg) as ckpt:
        restored, position, notes = ckpt.restore_or_init(lambda: init(seed=1), REPLICATED)
    assert equal(restored.params, state.params) and int(restored.step) == 7
    assert type(restored.opt_state) is type(state.opt_state)  # optax's NamedTuples, not lists
    assert float(restored.opt_state.hyperparams["learning_rate"]) == pytest.approx(1e-3)
    assert (position.epoch, position.step, float(position.loss_sum)) == (1, 3, 0.5)
    assert notes == [f"resuming from step 7 in {tmp_path} (1 epochs and 3 steps done)"]


def damage(step_dir, how):
    files = sorted(step_dir.rglob("d/*"), key=lambda p: p.stat().st_size)
    data = bytearray(files[-1].read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    files[-1].write_bytes(bytes(data))


@pytest.mark.parametrize("how, reason", [("flip", "checksum"), ("truncate", "")])
def test_a_damaged_newest_checkpoint_falls_back_and_is_removed(tmp_path, how, reason):
    states = {step: init(seed=step) for step in (1, 2, 3)}
    with Checkpointer(tmp_path, CheckpointConfig(max_to_keep=5)) as ckpt:
        for step, state in states.items():
            ckpt.save(step, state, Position(step=step))
    damage(tmp_path / "3", how)
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt:
        restored, position, notes = ckpt.restore_or_init(init, REPLICATED)
        assert ckpt.latest_step() == 2
    assert equal(restored.params, states[2].params) and position.step == 2
    assert notes[0].startswith(f"warning: checkpoint step 3 in {tmp_path} is unreadable (")
    assert reason in notes[0] and notes[1].startswith("resuming from step 2")


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt:
        ckpt.save(1, init(), Position())
    damage(tmp_path / "1", "truncate")
    error = pytest.raises(CheckpointError, match=f"no readable checkpoint in {tmp_path}: step 1: ")
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt, error:
        ckpt.restore_or_init(init, REPLICATED)


def test_a_save_cut_short_is_ignored_and_cleaned_up(tmp_path):
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt:
        ckpt.save(1, init(), Position())
    stale = tmp_path / "2.orbax-checkpoint-tmp-1234"
    stale.mkdir()
    (stale / "half").write_bytes(b"\0" * 10)
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt:
        assert not stale.exists() and ckpt.latest_step() == 1


def test_when_saves_happen(tmp_path):
    saved = []
    with Checkpointer(tmp_path, CheckpointConfig(every_steps=10, every_minutes=0)) as ckpt:
        for step in range(0, 35, 5):
            before = ckpt._last_step
            ckpt.maybe_save(step, init, Position(step=step))
            saved += [step] if ckpt._last_step != before else []
        ckpt.maybe_save(37, init, Position(step=37), force=True)
        ckpt.maybe_save(37, init, Position(step=37), force=True)  # the same step: not again
        assert ckpt.latest_step() == 37
    assert saved == [10, 20, 30]


def test_sigterm_saves_at_the_next_boundary_then_stops(tmp_path):
    with Checkpointer(tmp_path, CheckpointConfig(every_minutes=0)) as ckpt:
        ckpt.maybe_save(5, init, Position(step=5))  # nothing due
        os.kill(os.getpid(), signal.SIGTERM)  # the handler only notes it
        message = r"SIGTERM received; saved step 6 \(epoch 1, 6 steps into it\) in .*; run the same"
        with pytest.raises(Stopped, match=message) as stopped:
            ckpt.maybe_save(6, init, Position(step=6))
        assert stopped.value.exit_code == 143 and ckpt.latest_step() == 6
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_ctrl_c_saves_and_stops_and_a_second_one_stops_at_once(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    with Checkpointer(tmp_path, CheckpointConfig(every_minutes=0)) as ckpt:
        os.kill(os.getpid(), signal.SIGINT)  # noted; the next boundary saves and stops
        message = r"Ctrl-C \(SIGINT\) received; saved step 3 \(epoch 1, 3 steps into it\)"
        with pytest.raises(Stopped, match=message) as stopped:
            ckpt.maybe_save(3, init, Position(step=3))
        assert stopped.value.exit_code == 130 and ckpt.latest_step() == 3
        assert signal.getsignal(signal.SIGINT) is checkpoint._stop_at_once  # the second one
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup: Ctrl-C stays ignored
    with Checkpointer(tmp_path, CheckpointConfig(every_minutes=0)):
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    signal.signal(signal.SIGINT, previous)


def test_keep_epochs(tmp_path):
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"epoch": e, "x": e / 3}) + "\n" for e in (1, 2, 3)) + '{"epoch": 4, "x"'
    )
    metrics.keep_epochs(jsonl, 2)
    assert [json.loads(line)["epoch"] for line in jsonl.read_text().splitlines()] == [1, 2]
    table = tmp_path / "results.csv"
    table.write_text("a,epoch,b\nx,1,2\ny,1,3\nx,2,2\ny,2,3\nx,3")
    metrics.keep_epochs(table, 1)
    assert table.read_text() == "a,epoch,b\nx,1,2\ny,1,3\n"
    metrics.keep_epochs(table, 0)
    assert table.read_text() == "a,epoch,b\n"


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, small):
    # Plant label 255 in the first image of step 10; the loss turns NaN on that step.
    cfg = TrainConfig(epochs=2, batch_size=64, chunk_steps=4)
    idx = np.asarray(train.epoch_indices(train.root_keys(0)[1], 0, 1024, 64))
    labels = small.train["label"].copy()
    labels[idx[9, 0]] = 255
    splits = Splits({**small.train, "label": labels}, small.test, "planted")

    def nan_on_planted(logits_BK, labels_B):
        loss = losses.softmax_cross_entropy(logits_BK, jnp.minimum(labels_B, 9))
        return jnp.where(labels_B == 255, jnp.nan, loss)

    model, tx = MLP((16, 10), "relu"), optim.make_optimizer("adam", 1e-3)
    task = tasks.ImageClassification(nan_on_planted)
    state = train.create_train_state(model, tx, task, 0, EXAMPLE)
    message = rf"steps 9-12 \(first at step 10\); the last good checkpoint is step 8 in {tmp_path}"
    with Checkpointer(tmp_path, CheckpointConfig(every_steps=1)) as ckpt:
        epochs = train.fit(state, splits, cfg, parallel.make_mesh(1), checkpointer=ckpt)
        with pytest.raises(DivergedError, match=message):
            next(epochs)
    with Checkpointer(tmp_path, CheckpointConfig()) as ckpt:
        restored, position, _ = ckpt.restore_or_init(lambda: state, REPLICATED)
    assert (position.epoch, position.step) == (0, 8)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored.params))


def test_tensorboard_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"needs tensorboardX: pip install -e '.\[tensorboard\]'"):
        metrics.require_tensorboard()


@pytest.mark.parametrize(
    "error, name, path, dropped",
    [
        (KeyboardInterrupt(), "absl", "orbax/checkpoint/checkpoint_manager.py", True),
        (ValueError("RESOURCE_EXHAUSTED [os_error_code='28']"), "absl", "orbax/x.py", True),
        (ValueError("RESOURCE_EXHAUSTED [os_error_code='28']"), "asyncio", "base_events.py", True),
        (ValueError("a bug"), "absl", "orbax/checkpoint/checkpoint_manager.py", False),
        (KeyboardInterrupt(), "absl", "somewhere/else.py", False),
    ],
)
def test_only_orbax_reports_of_what_the_user_is_told_are_dropped(error, name, path, dropped):
    import logging

    record = logging.LogRecord(
        name, logging.ERROR, path, 1, "failed", None, (type(error), error, None)
    )
    assert checkpoint._LOG_FILTER.filter(record) is not dropped
