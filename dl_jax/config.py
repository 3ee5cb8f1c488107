"""Frozen dataclass configs, dotted command-line overrides, and the one command-line boundary.

A config is a tree of frozen dataclasses (hashable, so it can be a static jit argument; variants
are `dataclasses.replace`). Overrides name a field by its dotted path and give a Python literal:

    --model.activation=tanh --optim.learning_rate=0.1 --model.features='(256, 10)'

Values are parsed with `ast.literal_eval` and checked against the field's type; unknown keys are
rejected with the list of valid ones. Strings may be written without quotes, tuples of strings
as `a,b,c`. The command line itself is read by `dl_jax.cli.run`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from dl_jax.errors import ConfigError

DTYPES = ("float32", "bfloat16")  # compute dtypes of a model


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"  # mlp | lenet5 | cnn | rnn; dl_jax.models.build makes the module
    activation: str = "auto"  # a name in activations.ACTIVATIONS; auto: relu, tanh for lenet5, rnn
    features: tuple[int, ...] = (128, 64, 10)  # mlp: dense widths; the last is the class count
    use_bias: bool = True  # mlp: the slides' network has no biases
    conv_features: tuple[int, ...] = (32, 64)  # cnn: filters of each 3x3 conv (+ 2x2 pooling)
    dense_features: tuple[int, ...] = (256, 10)  # cnn: dense widths; the last is the class count
    pooling: str = "avg"  # lenet5, cnn: avg | max (2x2, stride 2)
    dropout_rate: float = 0.0  # cnn: dropout after each hidden dense layer, in training
    conv_impl: str = "auto"  # lenet5, cnn: lax | im2col; auto: im2col on CPU, lax on GPU/TPU
    cell: str = "lstm"  # rnn: simple (Elman) | lstm | optimized_lstm | gru | slide_gru
    hidden: int = 128  # rnn: hidden units of the recurrent layer
    num_classes: int = 10  # rnn: outputs of its dense layer (images: read row by row)
    gate_bias: float = 0.0  # rnn: initial bias of the gate that keeps a gated cell's memory
    dtype: str = "float32"  # compute dtype: float32 | bfloat16; parameters stay float32

    def __post_init__(self):
        for name in ("features", "conv_features", "dense_features"):
            value = getattr(self, name)
            check(
                (len(value) > 0 or name == "conv_features") and min(value, default=1) > 0,
                f"model.{name}",
                value,
                "a non-empty tuple of positive widths",
            )
        check(0 <= self.dropout_rate < 1, "model.dropout_rate", self.dropout_rate, "0 <= rate < 1")
        for name in ("hidden", "num_classes"):
            check(getattr(self, name) > 0, f"model.{name}", getattr(self, name), "a positive int")
        check(self.dtype in DTYPES, "model.dtype", self.dtype, " or ".join(DTYPES))


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # a name in optim.OPTIMIZERS: sgd, momentum, adagrad, rmsprop, adam
    learning_rate: float = 1e-3  # step size (peak of a schedule); kept in the optimizer state
    schedule: str = "constant"  # constant | cosine (decays to 0 at the last step)

    def __post_init__(self):
        check(self.learning_rate > 0, "optim.learning_rate", self.learning_rate, "a number > 0")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "auto"  # auto (what --data.dir holds; else mnist) | mnist | fashion_mnist
    source: str = "auto"  # auto | idx | tfds | sample; data.load documents the order
    dir: str | None = None  # folder of IDX gz files (train-images-idx3-ubyte.gz, ...)
    tfds_dir: str | None = None  # TFDS data_dir; None means TFDS's default (~/tensorflow_datasets)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # global batch, split over the devices of the mesh
    loss: str = "softmax_cross_entropy"  # a name in losses.LOSSES
    seed: int = 0  # root of every random key: init, and the shuffle of each epoch
    chunk_steps: int = 100  # train steps per compiled scan call; progress updates in between
    eval_batch_size: int = 1000  # test-set evaluation batch
    num_devices: int = 0  # devices on the "data" mesh axis; 0 means all local devices
    augment_shift: int = 0  # translate each training image by up to this many pixels (0: off)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "chunk_steps", "eval_batch_size"):
            check(getattr(self, name) > 0, f"train.{name}", getattr(self, name), "an int > 0")
        check(self.augment_shift >= 0, "train.augment_shift", self.augment_shift, "0 (off) or more")
        check(self.num_devices >= 0, "train.num_devices", self.num_devices, "0 (all) or more")


@dataclasses.dataclass(frozen=True)
class GridConfig:
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
    seeds: tuple[int, ...] = (0,)  # each seed draws its own initial weights and epoch orders
    optimizers: tuple[str, ...] = ("sgd",)  # an axis of the grid, outermost
    chunk_examples: int = 12800  # examples per cell per compiled call; progress shows in between
    cells_per_pass: int = 0  # cells vmapped together; 0: 1 on CPU (cache-resident), all elsewhere
    workers: int = 0  # groups of cells trained concurrently; 0: one per core on CPU, 1 elsewhere
    num_devices: int = 0  # devices the grid runs on; 0: all
    data_devices: int = 0  # of those, devices that split each cell's batch; 0: auto (see sweep)

    def __post_init__(self):
        for name in ("activations", "learning_rates", "seeds", "optimizers"):
            check(
                len(getattr(self, name)) > 0,
                f"grid.{name}",
                getattr(self, name),
                "a non-empty tuple",
            )
            check(
                len(set(getattr(self, name))) == len(getattr(self, name)),
                f"grid.{name}",
                getattr(self, name),
                "distinct values",
            )
        check(
            min(self.learning_rates) > 0, "grid.learning_rates", self.learning_rates, "numbers > 0"
        )
        check(self.chunk_examples > 0, "grid.chunk_examples", self.chunk_examples, "an int > 0")
        for name in ("cells_per_pass", "workers", "num_devices", "data_devices"):
            check(getattr(self, name) >= 0, f"grid.{name}", getattr(self, name), "0 (auto) or more")


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 0  # save every this many training steps (0: no step-based saves)
    every_minutes: float = 5.0  # and once this many minutes have passed since the last save
    max_to_keep: int = 3  # newest checkpoints kept; older ones are deleted

    def __post_init__(self):
        check(self.every_steps >= 0, "checkpoint.every_steps", self.every_steps, "0 (off) or more")
        check(
            self.every_minutes >= 0,
            "checkpoint.every_minutes",
            self.every_minutes,
            "0 (off) or more",
        )
        check(self.max_to_keep >= 1, "checkpoint.max_to_keep", self.max_to_keep, "an int >= 1")


@dataclasses.dataclass(frozen=True)
class LogConfig:
    tensorboard: bool = False  # also write TensorBoard event files (needs dl_jax[tensorboard])
    profile: bool = False  # trace one chunk of training steps with jax.profiler into profile/


@dataclasses.dataclass(frozen=True)
class DistConfig:
    coordinator: str | None = None  # multi-host: process 0's HOST:PORT (jax.distributed)
    num_processes: int = 1  # multi-host: processes in the run, one per host
    process_id: int = 0  # multi-host: this process's index, 0 to num_processes - 1
    auto: bool = False  # multi-host: let jax.distributed find them (TPU pods, SLURM)

    def __post_init__(self):
        check(self.num_processes >= 1, "dist.num_processes", self.num_processes, "an int >= 1")
        check(
            0 <= self.process_id < self.num_processes,
            "dist.process_id",
            self.process_id,
            f"0 to {self.num_processes - 1} (--dist.num_processes={self.num_processes})",
        )
        check(
            self.num_processes == 1 or self.coordinator is not None,
            "dist.coordinator",
            self.coordinator,
            "HOST:PORT of process 0 when --dist.num_processes > 1",
        )

    @property
    def enabled(self) -> bool:
        return self.auto or self.num_processes > 1


def check(ok: bool, key: str, value: Any, expected: str) -> None:
    """Refuse a config value: `--key=value is invalid: expected ...`."""
    if not ok:
        raise ConfigError(f"--{key}={value!r} is invalid: expected {expected}")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """A single image-classifier run (experiments/mnist_mlp.py, mnist_cnn.py; their defaults)."""

    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig(schedule="cosine")
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    dist: DistConfig = DistConfig()
    workdir: str = "runs/mnist_mlp"  # config, metrics, checkpoints and plots of the run


@dataclasses.dataclass(frozen=True)
class SweepTrainConfig:
    epochs: int = 10  # passes over the training set, for every cell

    def __post_init__(self):
        check(self.epochs > 0, "train.epochs", self.epochs, "an int > 0")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of one model trained at once (experiments/activation_lr_grid.py; its defaults)."""

    grid: GridConfig = GridConfig()
    recipe: str = "modern"  # modern | seed | seed_exact (see dl_jax/recipes.py)
    model: ModelConfig = ModelConfig()  # the cells' model; their activation is --grid.*
    data: DataConfig = DataConfig()
    train: SweepTrainConfig = SweepTrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    dist: DistConfig = DistConfig()
    workdir: str = "runs/activation_lr_grid"  # where the results go


@dataclasses.dataclass(frozen=True)
class SequenceTaskConfig:
    name: str = "count"  # count | running_parity | recall_first | addition (dl_jax.sequences)
    length: int = 20  # bit tasks: the longest sequence (recall_first: every sequence's length)
    digits: int = 3  # addition: the most digits of each operand
    lsb_first: bool = True  # addition: the sum written least significant digit first
    train_examples: int = 20000  # generated training examples
    test_examples: int = 2000  # generated test examples, none of them a training example
    seed: int = 0  # the data's own seed (train.seed draws the weights and the order)


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    """A single run on a generated sequence task (experiments/bit_counting.py, seq2seq.py)."""

    model: ModelConfig = ModelConfig(name="rnn")
    optim: OptimConfig = OptimConfig(schedule="cosine")
    task: SequenceTaskConfig = SequenceTaskConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    dist: DistConfig = DistConfig()
    workdir: str = "runs/bit_counting"  # config, metrics, checkpoints and plots of the run


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    cells: tuple[str, ...] = ("simple", "lstm", "gru")  # the recurrent cells compared
    lengths: tuple[int, ...] = (10, 20, 50, 100)  # memory task lengths T, one run per cell and T
    gate_biases: tuple[float, ...] = (0.0, 3.0)  # gated cells: a run per keep-gate bias (0: flax's)

    def __post_init__(self):
        for name in ("cells", "lengths", "gate_biases"):
            check(
                len(getattr(self, name)) > 0,
                f"study.{name}",
                getattr(self, name),
                "a non-empty tuple",
            )
        check(min(self.lengths, default=0) > 1, "study.lengths", self.lengths, "lengths > 1")


@dataclasses.dataclass(frozen=True)
class VanishingConfig:
    """The vanishing-gradient study (experiments/vanishing_gradients.py): one run of the memory
    task per cell and length, each a `SequenceConfig` run in its own sub-directory."""

    study: StudyConfig = StudyConfig()
    model: ModelConfig = ModelConfig(name="rnn", hidden=32)
    optim: OptimConfig = OptimConfig(learning_rate=3e-3, schedule="cosine")
    task: SequenceTaskConfig = SequenceTaskConfig(
        name="recall_first", train_examples=50000, test_examples=1000
    )
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    dist: DistConfig = DistConfig()
    workdir: str = "runs/vanishing_gradients"  # one sub-directory per run, and the figure


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    train_examples: int = 1000  # generated training examples of each toy problem
    test_examples: int = 1000  # and test examples, drawn after them
    epochs: int = 40  # passes over the training examples
    batch_size: int = 32  # examples per step
    learning_rate: float = 0.01  # Adam's

    def __post_init__(self):
        for name in ("train_examples", "test_examples", "epochs", "batch_size"):
            check(getattr(self, name) > 0, f"toy.{name}", getattr(self, name), "an int > 0")
        check(self.learning_rate > 0, "toy.learning_rate", self.learning_rate, "a number > 0")


@dataclasses.dataclass(frozen=True)
class PerceptronConfig:
    points: int = 200  # linearly separable points, 2 features uniform in [-1, 1]
    margin: float = 0.05  # their least distance to the separator that labels them
    epochs: int = 20  # passes of the perceptron rule
    seed: int = 0  # draws the points and the separator

    def __post_init__(self):
        for name in ("points", "epochs"):
            check(getattr(self, name) > 0, f"perceptron.{name}", getattr(self, name), "an int > 0")
        check(0 <= self.margin < 1, "perceptron.margin", self.margin, "a number in [0, 1)")


@dataclasses.dataclass(frozen=True)
class ToyStudyConfig:
    """The perceptron and the toy classifiers (experiments/toy_problems.py)."""

    toy: ToyConfig = ToyConfig()
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # a run per problem, model and seed
    perceptron: PerceptronConfig = PerceptronConfig()
    workdir: str = "runs/toy_problems"  # results and figures

    def __post_init__(self):
        check(len(self.seeds) > 0, "seeds", self.seeds, "a non-empty tuple")


@dataclasses.dataclass(frozen=True)
class OverconfidenceConfig:
    """Over-confidence on noise (experiments/overconfidence.py)."""

    mlp: str | None = None  # work directory of a trained MLP run; None: train one in workdir/mlp
    cnn: str | None = None  # work directory of a trained CNN run; None: train one in workdir/cnn
    data: DataConfig = DataConfig(source="sample")  # the test digits; training data if trained
    noise_images: int = 1000  # random images shown to each model
    seed: int = 0  # numpy default_rng seed of the noise pixels
    epochs: int = 3  # training epochs of a model that is not given
    workdir: str = "runs/overconfidence"  # config, results, figures and the runs trained here

    def __post_init__(self):
        check(self.noise_images > 0, "noise_images", self.noise_images, "an int > 0")
        check(self.epochs > 0, "epochs", self.epochs, "an int > 0")


@dataclasses.dataclass(frozen=True)
class FiguresConfig:
    """The pictures of a trained image run (experiments/figures.py)."""

    run: str | None = None  # work directory of a trained image run; None: train an MLP here
    data: DataConfig = DataConfig(source="sample")  # the test digits; training data if trained
    epochs: int = 3  # training epochs of the MLP when --run is not given
    workdir: str = "runs/figures"  # config, figures, and the MLP trained here (workdir/mlp)

    def __post_init__(self):
        check(self.epochs > 0, "epochs", self.epochs, "an int > 0")


# --------------------------------------------------------------------------- overrides


def field_paths(cfg) -> dict[str, type]:
    """Every overridable dotted path of a config tree, mapped to its declared type."""
    paths = {}
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            paths.update({f"{f.name}.{k}": t for k, t in field_paths(value).items()})
        else:
            paths[f.name] = hints[f.name]
    return paths


def override(cfg, path: str, value: Any):
    """A copy of `cfg` with the field at dotted `path` replaced (sub-configs are rebuilt)."""
    head, _, rest = path.partition(".")
    if rest:
        return dataclasses.replace(cfg, **{head: override(getattr(cfg, head), rest, value)})
    return dataclasses.replace(cfg, **{head: value})


def parse_value(path: str, text: str, kind: type) -> Any:
    """Parse `text` for a field of type `kind`, or raise a ConfigError naming what was expected."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # unquoted strings: --model.activation=tanh
    try:
        return _coerce(value, kind)
    except (TypeError, ValueError):
        raise ConfigError(f"--{path}={text}: expected {_type_name(kind)}, got {value!r}") from None


def _coerce(value: Any, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):  # X | None
        if value is None or value == "None":
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner)
    if origin is tuple:
        if isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, list | tuple):
            value = (value,)
        return tuple(_coerce(v, args[0]) for v in value)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if kind is str:
        return str(value)
    raise TypeError(f"unsupported field type {kind}")


def _type_name(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"a tuple of {_type_name(args[0])}"
    return "None" if kind is type(None) else kind.__name__


def parse_overrides(cfg, argv: Sequence[str]):
    """Apply `--dotted.key=value` arguments to `cfg`; unknown or malformed ones are errors.

    Each sub-config is rebuilt once with all of its new values, so that the checks relating
    two fields (`--dist.num_processes` and `--dist.process_id`) hold whatever their order.
    """
    paths = field_paths(cfg)
    changes = {}
    for arg in argv:
        match = re.fullmatch(r"--([\w.]+)=(.*)", arg, flags=re.DOTALL)
        if not match:
            raise ConfigError(f"malformed argument {arg!r}: expected --key=value (see --help)")
        path, text = match.groups()
        if path not in paths:
            raise ConfigError(f"unknown key --{path}; valid keys: {', '.join(paths)}")
        *parents, name = path.split(".")
        node = changes
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = parse_value(path, text, paths[path])
    return _replaced(cfg, changes)


def _replaced(cfg, changes: dict):
    """`cfg` with `changes` (a nested dict of new field values), each dataclass rebuilt once."""
    fields = {
        name: _replaced(getattr(cfg, name), value) if isinstance(value, dict) else value
        for name, value in changes.items()
    }
    return dataclasses.replace(cfg, **fields) if fields else cfg


def from_dict(default_cfg, tree: dict):
    """A config of `default_cfg`'s type holding `tree`, its `to_dict` form (config.json): each
    value is checked as its override would be; a field `tree` lacks keeps its default."""
    hints = typing.get_type_hints(type(default_cfg))
    names = {f.name for f in dataclasses.fields(default_cfg)}
    unknown = sorted(set(tree) - names)
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {', '.join(unknown)}; valid: {', '.join(names)}"
        )
    fields = {}
    for name, value in tree.items():
        default = getattr(default_cfg, name)
        if dataclasses.is_dataclass(default):
            fields[name] = from_dict(default, value)
            continue
        try:
            fields[name] = _coerce(value, hints[name])
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r}: expected {_type_name(hints[name])}") from None
    return dataclasses.replace(default_cfg, **fields)


def to_dict(cfg) -> dict:
    """The config as plain JSON-ready data."""
    return dataclasses.asdict(cfg)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as {dotted.path: value}, tuples as lists (as JSON has them)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.loads(json.dumps(value))
    return flat


def differences(saved: dict, cfg, harmless: tuple[str, ...] = ()) -> list[str]:
    """`key: saved value -> new value` for every field that differs, except the `harmless` ones
    (exact dotted keys, or prefixes ending in a dot). A field that a run saved before it existed
    lacks is unchanged while it keeps its default: the run was made with what that does."""
    old, new = flatten(saved), flatten(to_dict(cfg))
    defaults = flatten(to_dict(type(cfg)()))
    changed = []
    for key in sorted(old.keys() | new.keys()):
        if any(key == h or (h.endswith(".") and key.startswith(h)) for h in harmless):
            continue
        if key not in old and key in defaults and new[key] == defaults[key]:
            continue
        if old.get(key, "<absent>") != new.get(key, "<absent>"):
            changed.append(f"{key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
    return changed


def describe(cfg, prefix: str = "") -> list[str]:
    """One help line per field: `--path=default  # comment from the dataclass source`."""
    comments = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.*)$", inspect.getsource(type(cfg)), re.M))
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines += describe(value, f"{prefix}{f.name}.")
        else:
            note = comments.get(f.name, "")
            lines.append(f"  --{prefix}{f.name}={value!r}" + (f"  # {note}" if note else ""))
    return lines
