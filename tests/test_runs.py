"""`runs.load`: a trained run picked up from its work directory, in linen and in NNX."""

import csv
import json

import jax
import numpy as np
import pytest
from test_checkpoint import damage

from dl_jax import classifier, cli, config, runs, sequences
from dl_jax.config import (
    ClassifierConfig,
    ModelConfig,
    SequenceConfig,
    SequenceTaskConfig,
    TrainConfig,
)
from dl_jax.errors import CheckpointError, ConfigError
from scripts import GRID, load_experiment

SMALL_MLP = ClassifierConfig(
    model=ModelConfig(features=(32, 10)), train=TrainConfig(epochs=1, batch_size=64)
)
SMALL_CNN = ClassifierConfig(
    model=ModelConfig(name="cnn", conv_features=(4, 8), dense_features=(16, 10), dropout_rate=0.5),
    train=TrainConfig(epochs=1, batch_size=64, num_devices=1),
)


def train(cfg, tmp_path, name):
    """The config of a run on the sample in `tmp_path / name`, and its result."""
    cfg = config.parse_overrides(cfg, ["--data.source=sample", f"--workdir={tmp_path / name}"])
    (tmp_path / name).mkdir()  # which the command line would hold
    return cfg, classifier.train_and_evaluate(cfg)


def test_a_loaded_run_predicts_what_its_training_run_saw(tmp_path, sample):
    cfg, trained = train(SMALL_MLP, tmp_path, "mlp")
    run = runs.load(tmp_path / "mlp")
    jax.tree.map(np.testing.assert_array_equal, run.params, trained.state.params)  # bitwise
    logits = run.predict(sample.test["image"], batch_size=300)  # in 4 batches, the last short
    expected = trained.model.apply({"params": trained.state.params}, sample.test["image"] / 255)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    final = json.loads((tmp_path / "mlp" / "metrics.jsonl").read_text().splitlines()[-1])
    accuracy = (logits.argmax(-1) == sample.test["label"]).mean()
    assert accuracy == pytest.approx(final["test/accuracy"], abs=1e-6)
    assert run.config == cfg and run.step == 78  # 5,000 images in batches of 64: 78 steps


@pytest.mark.parametrize("cfg", [SMALL_MLP, SMALL_CNN], ids=["mlp", "cnn with dropout"])
def test_the_nnx_module_of_a_loaded_run_computes_the_linen_outputs(cfg, tmp_path, sample):
    train(cfg, tmp_path, "run")
    run = runs.load(tmp_path / "run")
    module = run.to_nnx()
    images = sample.test["image"][:50]
    nnx_logits = module(*run.task.inputs({"image": images}))
    np.testing.assert_allclose(nnx_logits, run.predict(images), rtol=1e-5, atol=1e-5)


def test_a_sequence_run_loads_and_predicts_a_batch_of_its_inputs(tmp_path):
    cfg = SequenceConfig(
        model=ModelConfig(name="rnn", cell="lstm", hidden=8),
        task=SequenceTaskConfig(length=10, train_examples=512, test_examples=64),
        train=TrainConfig(epochs=1, batch_size=64, num_devices=1),
        workdir=str(tmp_path),
    )
    sequences.train_and_evaluate(cfg)
    run = runs.load(tmp_path)
    test = sequences.make(cfg.task).splits.test
    inputs = {"x": test["x"], "length": test["length"]}
    final = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    accuracy = (run.predict(inputs).argmax(-1) == test["label"]).mean()
    assert accuracy == pytest.approx(final["test/accuracy"], abs=1e-6)
    np.testing.assert_allclose(run.to_nnx()(test["x"], test["length"]), run.predict(inputs),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    takes = r"this run predicts from \{'length': int32 \[N\], 'x': float32 \[N, 10, 1\]\}"
    with pytest.raises(ConfigError, match="this is a sequence run, not an image run: " + takes):
        run.predict(test["x"])
    with pytest.raises(ConfigError, match=r"inputs\['x'\] is float32 \[96, 10\]; " + takes):
        run.predict({"x": test["x"][..., 0], "length": test["length"]})
    with pytest.raises(ConfigError, match=r"inputs\['length'\] is nothing; "):
        run.predict({"x": test["x"]})


def test_a_seq2seq_run_predicts_from_text_without_targets(tmp_path):
    cfg = SequenceConfig(
        model=ModelConfig(name="rnn", cell="gru", hidden=16),
        task=SequenceTaskConfig(name="addition", digits=2, train_examples=512, test_examples=64),
        train=TrainConfig(epochs=1, batch_size=64, num_devices=1),
        workdir=str(tmp_path),
    )
    sequences.train_and_evaluate(cfg)
    run = runs.load(tmp_path)
    test = sequences.make(cfg.task).splits.test
    texts = [sequences.decode(x) for x in test["x"][:5]]  # "12+7", ...
    inputs = sequences.encode(texts, width=run.example["x"].shape[1])
    np.testing.assert_array_equal(inputs["x"], test["x"][:5])
    logits = run.predict(inputs)  # no "target": the decoder writes its own answer
    np.testing.assert_allclose(logits, run.predict({k: v[:5] for k, v in test.items()}),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    with pytest.raises(ConfigError, match=r"'1a\+2': 'a' not in the vocabulary \(0123456789\+\)"):
        sequences.encode(["1a+2"])
    with pytest.raises(ConfigError, match=r"a text is longer than the width, 5: '123\+45'"):
        sequences.encode(["123+45"], width=5)


def test_a_grid_cell_loads_by_its_coordinates(tmp_path, sample):
    args = ["--data.source=sample", "--train.epochs=1", "--grid.activations=tanh,relu",
            "--grid.learning_rates=(0.1, 0.3)", f"--workdir={tmp_path}"]  # fmt: skip
    module = load_experiment(GRID)
    cli.run(module.main, module.DEFAULTS, "", argv=args)
    run = runs.load(tmp_path, cell={"activation": "relu", "learning_rate": 0.3})
    assert (run.cell.activation, run.cell.learning_rate, run.cell.seed) == ("relu", 0.3, 0)
    with open(tmp_path / "results.csv") as f:
        row = next(r for r in csv.DictReader(f) if (r["activation"], r["learning_rate"]) ==
                   ("relu", "0.3"))  # fmt: skip
    accuracy = (run.predict(sample.test["image"]).argmax(-1) == sample.test["label"]).mean()
    assert f"{accuracy:.4f}" == row["test_accuracy"]
    with pytest.raises(ConfigError, match="matches 2 cells .*; also give learning_rate "
                                          r"\(one of 0.1, 0.3\)"):  # fmt: skip
        runs.load(tmp_path, cell={"activation": "relu"})
    with pytest.raises(ConfigError, match="no cell .* activation: tanh, relu; learning_rate"):
        runs.load(tmp_path, cell={"activation": "swish"})
    with pytest.raises(ConfigError, match="holds a grid of 4 cells; pick one with cell="):
        runs.load(tmp_path)


def test_what_is_not_a_trained_run_gets_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        runs.load(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no dl_jax run .it has no config.json."):
        runs.load(tmp_path)
    run_dir = tmp_path / "fresh"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(SMALL_MLP)))
    with pytest.raises(CheckpointError, match="no checkpoint in .*: the run saved none yet"):
        runs.load(run_dir)
    (run_dir / "config.json").write_text(json.dumps({"model": {"colour": "red"}}))
    with pytest.raises(ConfigError, match="unknown config field.s. colour"):
        runs.load(run_dir)


def test_a_damaged_newest_checkpoint_is_passed_over_with_a_warning_or_refused(tmp_path):
    saves = ["--train.chunk_steps=20", "--checkpoint.every_steps=20", "--checkpoint.max_to_keep=2"]
    cfg = config.parse_overrides(SMALL_MLP, saves)
    train(cfg, tmp_path, "mlp")  # saves at steps 20, 40, 60 and 78, and keeps the last two
    damage(tmp_path / "mlp" / "checkpoints" / "78", "flip")
    with pytest.warns(UserWarning, match=r"checkpoint step 78 in .* is unreadable \(.*checksum"):
        run = runs.load(tmp_path / "mlp")
    assert run.step == 60
    with pytest.raises(CheckpointError, match="the newest readable one is step 60, which strict"):
        runs.load(tmp_path / "mlp", strict=True)
