"""Sequence problems generated from a seed, with no download: the data, its task and its outputs.

`make(cfg)` builds one of `TASKS` from a `config.SequenceTaskConfig`:

- `count` (many-to-one; the slides' 0 1 0 0 1 -> 2): random bit sequences of lengths 1 to
  `length`, padded to `length`; the label is the number of ones (classes 0..length). The test
  split is every one of the 2^5 sequences of length 5 and `test_examples` sequences of length
  `length` that are not in the training split; `test/accuracy_T5` and `test/accuracy_T<length>`
  report each group.
- `running_parity` (many-to-many): the same bit sequences, tagged at every step with the parity
  of the ones so far; the test sequences have length `length` and are not in the training split.
- `recall_first` (many-to-one, the memory task of the vanishing-gradient study): sequences of
  exactly `length` random bits; the label is the first bit, so the answer lies `length - 1` steps
  back from the last step.
- `addition` (seq2seq): "123+45" -> "168", operands uniform in [0, 10^digits), written without
  leading zeros; the target is the sum's digits and an end token. Test pairs are never training
  pairs. With `lsb_first` (the default) the sum is written least significant digit first, "861",
  the order in which it is worked out by hand: each digit then needs only the two digits
  under it and the carry so far. Most significant first is far harder for a recurrent decoder:
  measured with the model of experiments/seq2seq.py, 99.9% of the test sums exactly right
  after 10 epochs with `lsb_first`, and 37% after 30 epochs without.

Bits are float32 features [N, T, 1]; tokens are int32 ids of `VOCAB`. Every split is a dict of
arrays with the example axis first (see `dl_jax.tasks` for the keys each task reads). The same
config gives the same arrays on every machine (numpy's PCG64 from `cfg.seed`).
"""

from __future__ import annotations

import dataclasses
import itertools

import flax.linen as nn
import jax
import numpy as np

from dl_jax import files, models, runs, tasks
from dl_jax.config import SequenceConfig, SequenceTaskConfig, TrainConfig, check
from dl_jax.data import Splits
from dl_jax.errors import ConfigError, unknown_name

TASKS = ("count", "running_parity", "recall_first", "addition")
SEQUENCE_MODELS = ("rnn",)  # the models of `dl_jax.models` that read sequences
EXHAUSTIVE_LENGTH = 5  # count: its test split holds every sequence of this length

# Tokens of `addition`: the digits are their own ids, then "+", padding, start and end.
VOCAB = (*"0123456789", "+", "<pad>", "<go>", "<end>")
PLUS, PAD, GO, END = (VOCAB.index(t) for t in ("+", "<pad>", "<go>", "<end>"))


@dataclasses.dataclass(frozen=True)
class Problem:
    """A generated problem: its splits, its task, and what a model must output for it:
    `outputs` is a name in `models.OUTPUTS` and `classes` the classes per label or the
    vocabulary size."""

    splits: Splits
    task: tasks.Task
    outputs: str
    classes: int


def make(cfg: SequenceTaskConfig) -> Problem:
    """The problem `cfg.name`, generated from `cfg.seed`; a bad config is a one-line error."""
    if cfg.name not in TASKS:
        raise unknown_name("sequence task", cfg.name, TASKS)
    for name in ("length", "digits", "train_examples", "test_examples"):
        check(getattr(cfg, name) > 0, f"task.{name}", getattr(cfg, name), "an int > 0")
    check(cfg.digits <= 9, "task.digits", cfg.digits, "at most 9 (sums stay in int32)")
    rng = np.random.default_rng(cfg.seed)
    source = f"the generator, seed {cfg.seed}"
    if cfg.name == "addition":
        train, test = _addition(rng, cfg)
        return Problem(
            Splits(train, test, source, name=cfg.name),
            tasks.Seq2Seq(go_token=GO),
            "sequence",
            len(VOCAB),
        )
    if cfg.name == "recall_first":
        train, test = (_recall_first(rng, n, cfg.length) for n in _sizes(cfg))
        return Problem(
            Splits(train, test, source, name=cfg.name),
            tasks.SequenceClassification(),
            "class",
            2,
        )
    train_bits, test_bits = _bit_sequences(rng, cfg)
    if cfg.name == "count":
        train, test = (
            {**s, "label": s["x"][..., 0].sum(-1).astype(np.int32)} for s in (train_bits, test_bits)
        )
        task = tasks.SequenceClassification(
            report_lengths=tuple(sorted({min(EXHAUSTIVE_LENGTH, cfg.length), cfg.length}))
        )
        return Problem(Splits(train, test, source, name=cfg.name), task, "class", cfg.length + 1)
    train, test = ({**s, "target": _running_parity(s)} for s in (train_bits, test_bits))
    return Problem(Splits(train, test, source, name=cfg.name), tasks.SequenceTagging(), "step", 2)


def train_and_evaluate(cfg: SequenceConfig) -> runs.Result:
    """Train `cfg.model` on the generated task `cfg.task`, resuming from `cfg.workdir` if a run
    is there (see `runs.train_and_evaluate`)."""
    for name in ("loss", "augment_shift"):
        default = getattr(TrainConfig(), name)
        check(
            getattr(cfg.train, name) == default,
            f"train.{name}",
            getattr(cfg.train, name),
            f"{default!r}: sequence tasks bring their own loss and no augmentation",
        )
    model, problem = build(cfg)
    return runs.train_and_evaluate(cfg, model, problem.task, problem.splits)


def build(cfg: SequenceConfig) -> tuple[nn.Module, Problem]:
    """The run's model and its generated problem (what `runs.load` rebuilds too)."""
    if cfg.model.name not in SEQUENCE_MODELS:
        raise unknown_name("model for a sequence task", cfg.model.name, SEQUENCE_MODELS)
    problem = make(cfg.task)
    return models.build(cfg.model, outputs=problem.outputs, classes=problem.classes), problem


def _sizes(cfg: SequenceTaskConfig) -> tuple[int, int]:
    return cfg.train_examples, cfg.test_examples


def _bits(rng: np.random.Generator, n: int, length: int, density: float | None = None):
    """[n, length] random bits (uint8): ones with probability `density`, or, when None, each
    sequence with its own density drawn uniformly from [0, 1], so that every count from 0 to
    `length` is common (fair bits would make 18 ones in 20 a one-in-5,000 sequence)."""
    density_N1 = rng.uniform(size=(n, 1)) if density is None else np.full((n, 1), density)
    return (rng.uniform(size=(n, length)) < density_N1).astype(np.uint8)


def _as_split(bits_NT: np.ndarray, lengths_N: np.ndarray) -> dict[str, np.ndarray]:
    """Bit sequences, zeroed from each one's length on, as {"x": float32 [N, T, 1], "length"}."""
    valid_NT = np.arange(bits_NT.shape[1]) < lengths_N[:, None]
    x_NT = np.where(valid_NT, bits_NT, 0).astype(np.float32)
    return {"x": x_NT[..., None], "length": lengths_N.astype(np.int32)}


def _bit_sequences(rng: np.random.Generator, cfg: SequenceTaskConfig):
    """Train: lengths uniform in 1..length. Test: for `count`, every sequence of length 5 (of
    `length`, if shorter); then, if `length` is longer, sequences of `length` that are not in
    the training split."""
    n_train, n_test = _sizes(cfg)
    lengths_N = rng.integers(1, cfg.length + 1, n_train)
    train_bits_NT = _bits(rng, n_train, cfg.length)
    groups = []
    if cfg.name == "count":
        short = min(EXHAUSTIVE_LENGTH, cfg.length)
        every = np.array(list(itertools.product((0, 1), repeat=short)), np.uint8)
        groups.append((np.pad(every, ((0, 0), (0, cfg.length - short))), short))
    if cfg.name != "count" or cfg.length > EXHAUSTIVE_LENGTH:
        seen_NT = train_bits_NT[lengths_N == cfg.length]
        groups.append((_unseen(rng, seen_NT, n_test, cfg.length), cfg.length))
    test_bits_NT = np.concatenate([bits for bits, _ in groups])
    test_lengths_N = np.concatenate([np.full(len(bits), length) for bits, length in groups])
    return _as_split(train_bits_NT, lengths_N), _as_split(test_bits_NT, test_lengths_N)


def _unseen(rng: np.random.Generator, seen_NT: np.ndarray, n: int, length: int) -> np.ndarray:
    """`n` distinct bit sequences of `length` that are not rows of `seen_NT`."""
    if 2**length - len(np.unique(seen_NT, axis=0)) < n:
        raise ConfigError(
            f"--task.test_examples={n} is invalid: expected at most the {2**length} sequences of "
            f"length {length} less those in the training split; lower it or raise --task.length"
        )
    seen = {row.tobytes() for row in seen_NT}
    found: dict[bytes, np.ndarray] = {}
    while len(found) < n:
        for row in _bits(rng, n, length):
            key = row.tobytes()
            if key not in seen and key not in found and len(found) < n:
                found[key] = row
    return np.stack(list(found.values()))


def _running_parity(split: dict[str, np.ndarray]) -> np.ndarray:
    """[N, T] int32: the parity of the ones up to and including each step."""
    return (np.cumsum(split["x"][..., 0], axis=1) % 2).astype(np.int32)


def _recall_first(rng: np.random.Generator, n: int, length: int) -> dict[str, np.ndarray]:
    bits_NT = _bits(rng, n, length, density=0.5)  # the others tell nothing of the first
    split = _as_split(bits_NT, np.full(n, length))
    return {**split, "label": bits_NT[:, 0].astype(np.int32)}


def _addition(rng: np.random.Generator, cfg: SequenceTaskConfig):
    """Distinct (a, b) pairs, split between train and test, as token sequences."""
    n_train, n_test = _sizes(cfg)
    span = 10**cfg.digits
    if n_train + n_test > span**2:
        raise ConfigError(
            f"--task.train_examples + --task.test_examples = {n_train + n_test} is invalid: "
            f"expected at most the {span**2} pairs of {cfg.digits}-digit operands"
        )
    pairs = rng.choice(span**2, n_train + n_test, replace=False)
    a, b = np.divmod(pairs, span)
    encoded = _encode_sums(a, b, cfg.digits, cfg.lsb_first)
    return (
        {k: v[:n_train] for k, v in encoded.items()},
        {k: v[n_train:] for k, v in encoded.items()},
    )


def _encode_sums(a_N, b_N, digits: int, lsb_first: bool) -> dict[str, np.ndarray]:
    """The sources "a+b" as tokens, and the sums' digits (reversed if `lsb_first`) then <end>
    as target tokens, each padded to its width."""
    sources = [f"{a}+{b}" for a, b in zip(a_N, b_N, strict=True)]
    targets = [str(a + b)[:: -1 if lsb_first else 1] for a, b in zip(a_N, b_N, strict=True)]
    return {
        "x": _tokens(sources, 2 * digits + 1),
        "length": np.array([len(s) for s in sources], np.int32),
        "target": _tokens(targets, digits + 2, end=True),
        "target_length": np.array([len(t) + 1 for t in targets], np.int32),
    }


def _tokens(texts: list[str], width: int, end: bool = False) -> np.ndarray:
    rows = np.full((len(texts), width), PAD, np.int32)
    for i, text in enumerate(texts):
        ids = [VOCAB.index(c) for c in text] + ([END] if end else [])
        rows[i, : len(ids)] = ids
    return rows


def write_examples(result: runs.Result, path, lsb_first: bool, count: int = 20) -> None:
    """A Markdown table of test examples: the input, the model's greedy answer, the target, and
    whether the answer is right (all of it); the first `count` of the split, then up to
    `count` of those it gets wrong. Answers written `lsb_first` are shown turned back, as
    numbers are read."""
    test, state = result.splits.test, result.state
    logits = jax.jit(state.apply_fn)({"params": state.params}, *state.task.inputs(test))
    answers = np.asarray(logits.argmax(-1))
    order = -1 if lsb_first else 1
    rows = [
        (decode(source), decode(answer)[::order], decode(target)[::order])
        for source, answer, target in zip(test["x"], answers, test["target"], strict=True)
    ]
    wrong = [row for row in rows if row[1] != row[2]]
    lines = ["| input | prediction | target | right |", "|---|---|---|---|"]
    for source, got, want in rows[:count]:
        lines.append(f"| {source} | {got} | {want} | {'yes' if got == want else 'no'} |")
    lines += [
        "",
        f"Wrong: {len(wrong)} of the {len(rows)} test examples"
        + (f"; the first {min(count, len(wrong))}:" if wrong else "."),
    ]
    if wrong:
        lines += ["", "| input | prediction | target |", "|---|---|---|"]
        lines += [f"| {source} | {got} | {want} |" for source, got, want in wrong[:count]]
    with files.replacing(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def encode(texts: list[str], width: int | None = None) -> dict[str, np.ndarray]:
    """Texts of the addition task ("123+45") as a seq2seq run's inputs: {"x": int32 [N, width]
    token ids, padded, "length": int32 [N]}, for `runs.Run.predict` (width: the run's, its
    `example["x"].shape[1]`; default the longest text). Characters outside the vocabulary are
    a one-line ConfigError."""
    for text in texts:
        unknown = sorted(set(text) - set(VOCAB))
        if unknown:
            raise ConfigError(
                f"{text!r}: {', '.join(map(repr, unknown))} not in the vocabulary "
                f"({''.join(VOCAB[:11])})"
            )
    width = width or max(map(len, texts))
    if any(len(text) > width for text in texts):
        raise ConfigError(f"a text is longer than the width, {width}: {max(texts, key=len)!r}")
    return {"x": _tokens(texts, width), "length": np.array([len(t) for t in texts], np.int32)}


def decode(tokens_T) -> str:
    """Token ids as text, up to the first <end> (padding dropped)."""
    text = []
    for token in np.asarray(tokens_T).tolist():
        if token == END:
            break
        if token != PAD and 0 <= token < len(VOCAB):
            text.append(VOCAB[token])
    return "".join(text)
