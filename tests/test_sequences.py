"""The generated sequence problems, their tasks, the encoder-decoder, and bit counting trained."""

import dataclasses
import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from dl_jax import models, sequences, tasks
from dl_jax.config import ModelConfig, SequenceTaskConfig, TrainConfig
from dl_jax.errors import ConfigError
from dl_jax.models.rnn import Decoder, Seq2SeqRNN

SMALL = SequenceTaskConfig(length=8, train_examples=300, test_examples=50)


def rows(x_NT1) -> set[bytes]:
    return {row.tobytes() for row in np.asarray(x_NT1)[..., 0].astype(np.uint8)}


def test_the_same_config_generates_the_same_arrays_and_another_seed_others():
    for name in sequences.TASKS:
        cfg = dataclasses.replace(SMALL, name=name)
        one, two = sequences.make(cfg).splits, sequences.make(cfg).splits
        assert one.fingerprints == two.fingerprints
        other = sequences.make(dataclasses.replace(cfg, seed=1)).splits
        assert other.fingerprints[0] != one.fingerprints[0]
        assert one.identity()["name"] == name


def test_count_tests_every_length_5_sequence_and_unseen_long_ones():
    problem = sequences.make(SMALL)
    train, test = problem.splits.train, problem.splits.test
    assert problem.outputs == "class" and problem.classes == 9  # 0..8 ones
    short = test["length"] == 5
    assert short.sum() == 32 and len(rows(test["x"][short])) == 32  # all 2^5, once each
    long = test["length"] == 8
    assert long.sum() == 50
    assert not rows(test["x"][long]) & rows(train["x"][train["length"] == 8])
    for split in (train, test):
        np.testing.assert_array_equal(split["label"], split["x"][..., 0].sum(1))
        after = np.arange(8) >= split["length"][:, None]
        assert not split["x"][..., 0][after].any()  # padding is zeros
    assert train["length"].min() == 1 and train["length"].max() == 8
    assert problem.task.report_lengths == (5, 8)


def test_running_parity_tags_each_step_with_the_parity_so_far():
    split = sequences.make(dataclasses.replace(SMALL, name="running_parity")).splits.train
    bits = split["x"][..., 0].astype(int)
    expected = np.array([[sum(row[: t + 1]) % 2 for t in range(8)] for row in bits])
    np.testing.assert_array_equal(split["target"], expected)


def test_recall_first_labels_the_first_bit_and_its_fair_bits_tell_nothing_else():
    cfg = dataclasses.replace(SMALL, name="recall_first", train_examples=4000)
    split = sequences.make(cfg).splits.train
    np.testing.assert_array_equal(split["label"], split["x"][:, 0, 0])
    assert (split["length"] == 8).all()
    rest_ones = split["x"][:, 1:, 0].mean(1)
    first = split["label"] == 1
    assert abs(rest_ones[first].mean() - rest_ones[~first].mean()) < 0.02


@pytest.mark.parametrize("lsb_first", [True, False])
def test_addition_writes_sums_and_never_tests_a_training_pair(lsb_first):
    cfg = SequenceTaskConfig(name="addition", digits=3, train_examples=2000,
                             test_examples=500, lsb_first=lsb_first)  # fmt: skip
    problem = sequences.make(cfg)
    train, test = problem.splits.train, problem.splits.test
    assert problem.outputs == "sequence" and problem.classes == len(sequences.VOCAB)
    for split in (train, test):
        for i in range(0, len(split["x"]), 97):
            a, b = map(int, sequences.decode(split["x"][i]).split("+"))
            answer = sequences.decode(split["target"][i])
            assert int(answer[::-1] if lsb_first else answer) == a + b
            assert split["target_length"][i] == len(answer) + 1  # and <end>
            assert split["length"][i] == len(f"{a}+{b}")
    sources = {sequences.decode(x) for x in train["x"]}
    assert not sources & {sequences.decode(x) for x in test["x"]}


def test_bad_sequence_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown sequence task 'sort'; valid: addition, count"):
        sequences.make(SequenceTaskConfig(name="sort"))
    with pytest.raises(ConfigError, match="--task.length=0 is invalid"):
        sequences.make(SequenceTaskConfig(length=0))
    with pytest.raises(ConfigError, match="--task.test_examples=300 is invalid"):
        sequences.make(dataclasses.replace(SMALL, name="running_parity", test_examples=300))
    with pytest.raises(ConfigError, match="at most the 100 pairs"):
        sequences.make(SequenceTaskConfig(name="addition", digits=1, train_examples=100))
    with pytest.raises(ConfigError, match="cannot output a token sequence; valid: rnn"):
        models.build(ModelConfig(name="mlp"), outputs="sequence")


def test_sequence_tagging_counts_valid_steps_only():
    task = tasks.SequenceTagging()
    batch = {"x": jnp.zeros((2, 3, 1)), "length": jnp.array([3, 1]),
             "target": jnp.array([[1, 0, 1], [0, 1, 1]])}  # fmt: skip
    logits = jax.nn.one_hot(jnp.array([[1, 1, 1], [0, 0, 0]]), 2) * 5  # 2/3 right; 1/1 right
    (tokens, steps), (exact, _) = task.metrics(logits, batch).values()
    np.testing.assert_array_equal(tokens, [2, 1])
    np.testing.assert_array_equal(steps, [3, 1])
    np.testing.assert_array_equal(exact, [0, 1])
    sums = tasks.evaluation_sums(task, logits, batch, jnp.array([True, True]))
    means = tasks.means(sums)
    assert float(means["test/token_accuracy"]) == 3 / 4
    assert float(means["test/exact_accuracy"]) == 1 / 2
    per_step = -jax.nn.log_softmax(logits)
    np.testing.assert_allclose(
        task.loss(logits, batch),
        [(per_step[0, 0, 1] + per_step[0, 1, 0] + per_step[0, 2, 1]) / 3, per_step[1, 0, 0]],
        rtol=1e-5,
    )


def test_seq2seq_feeds_the_decoder_the_start_token_then_the_target_shifted():
    task = tasks.Seq2Seq(go_token=9)
    batch = {"x": jnp.ones((1, 2), int), "length": jnp.array([2]),
             "target": jnp.array([[4, 5, 6]]), "target_length": jnp.array([2])}  # fmt: skip
    _, _, decoder_tokens = task.inputs(batch)
    np.testing.assert_array_equal(decoder_tokens, [[9, 4, 5]])
    np.testing.assert_array_equal(task.mask(batch), [[True, True, False]])


def addition_model_and_batch(hidden=16):
    problem = sequences.make(SequenceTaskConfig(name="addition", digits=2, train_examples=64,
                                                test_examples=8))  # fmt: skip
    model = models.build(ModelConfig(name="rnn", cell="gru", hidden=hidden),
                         outputs=problem.outputs, classes=problem.classes)  # fmt: skip
    batch = {k: jnp.asarray(v[:5]) for k, v in problem.splits.train.items()}
    params = model.init(jax.random.key(0), *problem.task.inputs(batch))["params"]
    return model, params, problem.task, batch


def test_greedy_decoding_in_the_scan_equals_a_python_loop_feeding_back_each_prediction():
    model, params, task, batch = addition_model_and_batch()
    source, lengths, decoder_tokens = task.inputs(batch)
    greedy = model.apply({"params": params}, source, lengths, decoder_tokens)
    tokens = decoder_tokens[:, :1]
    for _ in range(decoder_tokens.shape[1]):  # re-run teacher-forced on its own output so far
        forced = model.apply({"params": params}, source, lengths, tokens, train=True)
        tokens = jnp.concatenate([tokens, forced[:, -1:].argmax(-1)], axis=1)
    np.testing.assert_allclose(greedy, forced, atol=1e-5)
    assert greedy.shape == (5, decoder_tokens.shape[1], len(sequences.VOCAB))


def test_source_padding_changes_nothing():
    model, params, task, batch = addition_model_and_batch()
    source, lengths, decoder_tokens = task.inputs(batch)
    padded = jnp.pad(source, ((0, 0), (0, 4)), constant_values=sequences.PLUS)  # junk after
    for train in (True, False):
        np.testing.assert_allclose(
            model.apply({"params": params}, padded, lengths, decoder_tokens, train=train),
            model.apply({"params": params}, source, lengths, decoder_tokens, train=train),
            atol=1e-6,
        )


def test_shapes_many_to_one_many_to_many_and_one_to_many():
    x = jnp.ones((3, 7, 2))
    for outputs, shape in (("class", (3, 4)), ("step", (3, 7, 4))):
        model = models.build(ModelConfig(name="rnn", hidden=8), outputs=outputs, classes=4)
        params = model.init(jax.random.key(0), x)
        assert model.apply(params, x).shape == shape
    # One to many: one vector sets the decoder's state; it writes a sequence of 6 tokens.
    decoder = Decoder("lstm", hidden=8, vocab_size=5)
    vector = jnp.ones((3, 8))
    carry, start = (vector, vector), jnp.zeros((3, 6), jnp.int32)
    params = decoder.init(jax.random.key(0), carry, start, teacher_force=False)
    assert decoder.apply(params, carry, start, teacher_force=False).shape == (3, 6, 5)


def test_seq2seq_parameters_are_an_encoder_and_a_decoder_step():
    model, params, _, _ = addition_model_and_batch(hidden=16)
    assert isinstance(model, Seq2SeqRNN)
    assert set(params) == {"embed", "encoder", "decoder"}
    assert set(params["decoder"]["step"]) == {"embed", "cell", "output"}
    count = sum(p.size for p in jax.tree.leaves(params))
    gru = 3 * (16 * 16 + 16) + 3 * (16 * 16) + 16  # flax's GRUCell: 3 gates; only hn has 2 biases
    vocab = len(sequences.VOCAB)
    assert count == 2 * (vocab * 16 + gru) + 16 * vocab + vocab


def load_defaults(script):
    spec = importlib.util.spec_from_file_location(script, ROOT / "experiments" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEFAULTS


def test_bit_counting_defaults_count_every_length_5_sequence_and_unseen_length_20_ones(tmp_path):
    cfg = load_defaults("bit_counting")  # on one of the 8 simulated devices: 6x faster here
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_devices=1),
                              workdir=str(tmp_path))  # fmt: skip
    last = sequences.train_and_evaluate(cfg)
    records = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(records) == cfg.train.epochs
    final = json.loads(records[-1])
    assert final["test/accuracy_T5"] == 1.0  # all 32 sequences of length 5
    assert final["test/accuracy_T20"] == 1.0  # 2,000 of length 20, none of them trained on
    assert last.splits.test["length"].tolist().count(5) == 32


def test_sequence_runs_refuse_image_options_and_image_models():
    cfg = dataclasses.replace(load_defaults("bit_counting"), train=TrainConfig(augment_shift=1))
    with pytest.raises(ConfigError, match="--train.augment_shift=1 is invalid"):
        sequences.train_and_evaluate(cfg)
    cfg = dataclasses.replace(cfg, model=ModelConfig(name="cnn"), train=TrainConfig())
    with pytest.raises(ConfigError, match="unknown model for a sequence task 'cnn'; valid: rnn"):
        sequences.train_and_evaluate(cfg)
