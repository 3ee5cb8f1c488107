"""The vanishing-gradient measure, the keep-gate bias, and the study that puts them together."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import gradients, models, sequences, tasks
from dl_jax.config import (
    ModelConfig,
    SequenceTaskConfig,
    StudyConfig,
    TrainConfig,
    VanishingConfig,
)
from dl_jax.errors import ConfigError
from dl_jax.models.rnn import KEEP_GATES


def test_input_gradients_of_a_linear_elman_rnn_are_powers_of_its_recurrent_matrix():
    # h_t = W_i x_t + b + W_h h_{t-1} (linear), logits = V h_T + c: dL/dx_t = g V W_h^(T-t) W_i,
    # with g = softmax(logits) - onehot(label), so the lag k = T - t brings in W_h^k.
    model = models.build(ModelConfig(name="rnn", cell="simple", hidden=3, activation="linear"),
                         classes=2)  # fmt: skip
    batch = {"x": jax.random.normal(jax.random.key(0), (1, 6, 2)), "length": jnp.array([6]),
             "label": jnp.array([1])}  # fmt: skip
    task = tasks.SequenceClassification()
    params = model.init(jax.random.key(1), *task.inputs(batch))["params"]
    norms = gradients.input_gradient_norms(model.apply, params, task, batch)

    p = jax.tree.map(np.asarray, params)
    w_i, w_h = p["cell"]["i"]["kernel"].T, p["cell"]["h"]["kernel"].T
    v = p["output"]["kernel"].T
    logits = np.asarray(model.apply({"params": params}, *task.inputs(batch)))[0]
    g = np.exp(logits) / np.exp(logits).sum() - np.eye(2)[1]
    expected = [np.linalg.norm(g @ v @ np.linalg.matrix_power(w_h, k) @ w_i) for k in range(6)]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


@pytest.mark.parametrize("cell", sorted(KEEP_GATES))
def test_the_gate_bias_sets_the_keep_gate_only(cell):
    x = jnp.ones((2, 4, 3))
    plain = models.build(ModelConfig(name="rnn", cell=cell, hidden=5)).init(jax.random.key(0), x)
    model = models.build(ModelConfig(name="rnn", cell=cell, hidden=5, gate_bias=3.0))
    opened = model.init(jax.random.key(0), x)
    name, sign = KEEP_GATES[cell]
    np.testing.assert_array_equal(opened["params"]["cell"][name]["bias"], np.full(5, sign * 3.0))
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), plain, opened)
    flat = jax.tree_util.tree_flatten_with_path(changed)[0]
    assert [jax.tree_util.keystr(k) for k, c in flat if c] == [
        f"['params']['cell']['{name}']['bias']"
    ]


@pytest.mark.parametrize("cell", ["gru", "slide_gru"])
def test_a_wide_open_keep_gate_keeps_a_gru_state(cell):
    # With the keep gate's bias at 30 the state hardly moves from its start (zeros), whatever
    # the input: the sign in KEEP_GATES is the right one for each GRU form.
    model = models.build(ModelConfig(name="rnn", cell=cell, hidden=4, gate_bias=30.0),
                         outputs="step", classes=4)  # fmt: skip
    x = 5 * jax.random.normal(jax.random.key(0), (2, 6, 3))
    params = model.init(jax.random.key(1), x)["params"]
    assert np.abs(np.asarray(model.apply({"params": params}, x)
                             - params["output"]["bias"])).max() < 1e-6  # fmt: skip


def test_the_elman_cell_has_no_gate_to_bias():
    with pytest.raises(ConfigError, match="--model.gate_bias=3.0 is invalid for --model.cell="
                                          "simple: it has no gate"):  # fmt: skip
        models.build(ModelConfig(name="rnn", cell="simple", gate_bias=3.0))


@pytest.mark.slow  # 6 small runs, then 1 more: 15 s on a fresh machine
def test_the_study_trains_each_series_writes_its_figure_and_adds_lengths(tmp_path):
    cfg = VanishingConfig(
        study=StudyConfig(cells=("simple", "gru"), lengths=(3, 6), gate_biases=(0.0, 3.0)),
        model=ModelConfig(name="rnn", hidden=8),
        task=SequenceTaskConfig(name="recall_first", train_examples=512, test_examples=64),
        train=TrainConfig(epochs=2, batch_size=64, num_devices=1),
        workdir=str(tmp_path),
    )
    results = gradients.study(cfg)
    assert list(results["accuracy"]) == ["simple", "gru", "gru, gate bias 3"]
    assert all(len(v["initial"]) == 6 for v in results["gradients"].values())
    assert (tmp_path / "vanishing_gradients.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["accuracy"]["gru"] == {"3": results["accuracy"]["gru"][3],
                                        "6": results["accuracy"]["gru"][6]}  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "gru",
        "gru_gate3",
        "simple",
    ]
    assert json.loads((tmp_path / "gru_gate3" / "T6" / "config.json").read_text())["model"][
        "gate_bias"] == 3.0  # fmt: skip

    more = dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, cells=("simple",),
                                                              lengths=(3, 6, 8)))  # fmt: skip
    before = (tmp_path / "simple" / "T3" / "metrics.jsonl").read_text()
    results = gradients.study(more)
    assert list(results["accuracy"]["simple"]) == [3, 6, 8]
    assert (tmp_path / "simple" / "T3" / "metrics.jsonl").read_text() == before  # reused
    with pytest.raises(ConfigError, match="holds a run with a different config"):
        gradients.study(
            dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, learning_rate=0.1))
        )


def test_the_memory_task_has_one_length():
    test = sequences.make(SequenceTaskConfig(name="recall_first", length=7)).splits.test
    assert (test["length"] == 7).all() and test["x"].shape == (2000, 7, 1)


def test_the_study_refuses_what_it_sets_itself(tmp_path):
    for cfg in (VanishingConfig(model=ModelConfig(name="rnn", hidden=32, gate_bias=3.0)),
                VanishingConfig(task=SequenceTaskConfig(name="count"))):  # fmt: skip
        with pytest.raises(ConfigError, match="is invalid here"):
            gradients.study(dataclasses.replace(cfg, workdir=str(tmp_path / "study")))
    assert not (tmp_path / "study").exists()
