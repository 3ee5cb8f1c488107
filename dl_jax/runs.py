"""One run trained end to end into its work directory, for any model, task and data.

`train_and_evaluate` is the body of every single-run experiment (mnist_mlp.py, mnist_cnn.py,
sequence_mnist.py, bit_counting.py, seq2seq.py): the experiment builds the model, the task and
the data splits from its config, and `train_and_evaluate` does the rest. The work directory gets
config.json, metrics.jsonl (one JSON object per epoch, appended as each ends), checkpoints/,
curves.png, with --log.tensorboard=True tensorboard/, and with --log.profile=True profile/, a
`jax.profiler` trace of one chunk of training steps. Running the same command again resumes.

The config is any config tree with `optim`, `train`, `checkpoint`, `log` and `workdir` fields
(`config.ClassifierConfig`, `config.SequenceConfig`). In a multi-host run (`--dist.*`) every
process trains its share of each batch and takes part in the checkpoint saves; only process 0
writes config.json, metrics.jsonl, the plots and TensorBoard files.

`load(workdir)` picks a trained run back up, for research code and for the experiments that
study a trained model: a `Run` with the module, the trained parameters, the config, `predict`
on raw inputs and `to_nnx` (the module through flax's linen-to-NNX bridge).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dl_jax import checkpoint, config, metrics, models, optim, parallel, plots, tasks, train
from dl_jax import workdir as workdirs
from dl_jax.data import Splits
from dl_jax.errors import CheckpointError, ConfigError
from dl_jax.tasks import Task
from dl_jax.train import TrainState

# Fields a resumed run may change in every experiment: they do not change its results.
HARMLESS = ("workdir", "checkpoint.", "log.", "dist.")


@dataclasses.dataclass
class Result:
    """What a finished run leaves in memory: its model, trained state, data and directory."""

    model: nn.Module
    state: TrainState
    splits: Splits
    run_dir: Path
    main_process: bool = True  # whether this process writes the run's files (multi-host: 0)


def train_and_evaluate(
    cfg, model: nn.Module, task: Task, splits: Splits, harmless: tuple[str, ...] = ()
) -> Result:
    """Train `model` on `task` over `splits`, resuming from `cfg.workdir` if a run is there.

    A resumed run may change only the `HARMLESS` fields and `harmless` (dotted keys, or
    prefixes ending in a dot), and must see the same data (compared by fingerprints).
    Everything that can fail on bad input fails before the work directory is touched.
    """
    mesh = parallel.make_mesh(cfg.train.num_devices)
    if cfg.log.tensorboard:
        metrics.require_tensorboard()
    print(
        f"data: {splits.describe()}; model: {cfg.model.name}; devices: {mesh.devices.size} x "
        f"{jax.devices()[0].platform}"
    )
    steps = train.check_setup(cfg.train, mesh, splits)
    train.check_outputs(model, task, splits)
    init = _init_fn(cfg, model, task, tasks.example_batch(splits.train), steps)
    run_dir = Path(cfg.workdir)  # held by process 0 since cli.run
    parallel.check_same_data(splits.fingerprints)
    main_process = parallel.is_main_process()  # the one that writes files; all save checkpoints
    if _more_epochs(run_dir, cfg):
        harmless = (*harmless, "train.epochs")
    parallel.prepare_workdir(run_dir, cfg, HARMLESS + tuple(harmless), splits.identity())
    with checkpoint.Checkpointer(run_dir / "checkpoints", cfg.checkpoint) as checkpointer:
        state, position, notes = checkpointer.restore_or_init(init, parallel.replicated(mesh))
        for note in notes:
            print(note)
        profile_dir = run_dir / "profile" if cfg.log.profile else None
        epochs = train.fit(
            state,
            splits,
            cfg.train,
            mesh,
            position=position,
            checkpointer=checkpointer,
            profile_dir=profile_dir,
        )
        writer = board = None
        if main_process:
            metrics.keep_epochs(run_dir / "metrics.jsonl", position.epoch)
            writer = metrics.JsonlWriter(run_dir / "metrics.jsonl")
            if cfg.log.tensorboard:
                board = metrics.TensorBoardWriter(run_dir / "tensorboard", position.epoch + 1)
        for trained, record in epochs:
            state = trained
            if main_process:  # the other processes print their start-up line and errors only
                print(metrics.format_epoch(record, cfg.train.epochs), flush=True)
            if writer:
                writer.write(record)
            if board:
                board.write(record["epoch"], {k: v for k, v in record.items() if "/" in k})
        if board:
            board.close()

    if position.epoch == cfg.train.epochs:
        print(f"all {cfg.train.epochs} epochs were already done in {run_dir}")
    elif profile_dir:
        print(
            f"profile: one chunk of training steps traced in {profile_dir} (tensorboard "
            f"--logdir={profile_dir}, or its perfetto_trace.json.gz in ui.perfetto.dev)"
        )
    if main_process:
        plots.plot_history(metrics.read_jsonl(run_dir / "metrics.jsonl"), run_dir / "curves.png")
    return Result(model, state, splits, run_dir, main_process)


def _more_epochs(run_dir: Path, cfg) -> bool:
    """Whether `cfg` asks the run in `run_dir` for more epochs than it was set to, which it
    may train on to: with a constant learning rate, nothing else depends on the run's length.
    With a schedule over the run's length (cosine), more epochs would change the epochs
    already trained: refused in one line."""
    try:
        saved = json.loads((run_dir / workdirs.CONFIG).read_text())["train"]["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no run there, or one that `workdir.prepare` refuses for itself
    if cfg.train.epochs <= saved:
        return False
    if cfg.optim.schedule != "constant":
        raise ConfigError(
            f"--train.epochs={cfg.train.epochs}: the run in {run_dir} was set to {saved} epochs "
            f"and its learning rate follows a {cfg.optim.schedule} schedule over them, which "
            "more epochs would change; train longer in a new --workdir (runs with "
            "--optim.schedule=constant can be extended)"
        )
    return True


def _init_fn(cfg, model: nn.Module, task: Task, example, steps: int):
    """The run's initial TrainState, as a function (for `Checkpointer.restore_or_init`)."""
    tx = optim.make_optimizer(
        cfg.optim.name,
        cfg.optim.learning_rate,
        cfg.optim.schedule,
        total_steps=steps * cfg.train.epochs,
    )
    return lambda: train.create_train_state(model, tx, task, cfg.train.seed, example)


# --------------------------------------------------------------------------- loading


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run, loaded from its work directory by `load`: the flax module, its trained
    parameters, the run's config and task, and the step of the checkpoint they come from."""

    model: nn.Module
    params: Any
    config: Any  # config.ClassifierConfig, SequenceConfig or SweepConfig (for a grid's cell)
    task: Task
    step: int
    workdir: Path
    example: dict  # a batch of one example, the shapes the model takes
    cell: Any = None  # the grid's sweep.Cell, for a cell of a grid

    def predict(self, inputs, batch_size: int = 1000) -> np.ndarray:
        """Logits for raw inputs as the dataset stores them, with the run's own input
        transform: uint8 images [N, 28, 28, 1] for an image run, or a sequence run's
        {"x", "length"} (`sequences.encode` makes them from text); in batches of `batch_size`.
        Inputs of another shape or dtype get a one-line ConfigError naming the expected ones."""
        expected = {k: v for k, v in self.example.items() if k not in _TARGETS}
        if not isinstance(inputs, dict):
            if "image" not in expected:
                raise ConfigError(f"this is a sequence run, not an image run: {_takes(expected)}")
            inputs = {"image": inputs}
        batch = {k: np.asarray(v) for k, v in inputs.items()}
        for key, want in expected.items():
            got = batch.get(key)
            if got is None or got.shape[1:] != want.shape[1:] or got.dtype.kind != want.dtype.kind:
                given = "nothing" if got is None else f"{got.dtype} {list(got.shape)}"
                raise ConfigError(f"inputs[{key!r}] is {given}; {_takes(expected)}")
        n = len(batch[next(iter(expected))])
        for key in self.example.keys() - batch.keys():  # the targets, which predicting never reads
            batch[key] = np.zeros((n, *self.example[key].shape[1:]), self.example[key].dtype)
        starts = range(0, n, batch_size)
        parts = [{k: v[i : i + batch_size] for k, v in batch.items()} for i in starts]
        return np.concatenate(
            [np.asarray(_logits(self.model, self.task, self.params, part)) for part in parts]
        )

    def confidence(self, inputs, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """The top softmax probability [N] of each input (how sure the answer is) and the class
        it picks [N], from `predict`'s logits."""
        logits_NK = self.predict(inputs, batch_size).astype(np.float64)
        z_NK = logits_NK - logits_NK.max(-1, keepdims=True)  # exp(z) <= 1: nothing overflows
        return 1.0 / np.exp(z_NK).sum(-1), z_NK.argmax(-1)  # the top one is exp(0) / sum

    def to_nnx(self):
        """The model as a `flax.nnx` module holding the trained parameters (through flax's
        linen-to-NNX bridge), for NNX code: `module(*inputs)` gives the linen module's outputs."""
        example = jax.tree.map(jnp.asarray, self.example)
        return models.to_nnx(self.model, self.params, *self.task.inputs(example))


_TARGETS = ("label", "target", "target_length")  # what a batch holds besides a model's inputs


def _takes(expected: dict) -> str:
    """What `Run.predict` takes, from the run's example: "{'image': uint8 [N, 28, 28, 1]}"."""
    shapes = ", ".join(
        f"{k!r}: {v.dtype} [{', '.join(['N', *map(str, v.shape[1:])])}]"
        for k, v in expected.items()
    )
    return f"this run predicts from {{{shapes}}}"


@functools.partial(jax.jit, static_argnums=(0, 1))
def _logits(model: nn.Module, task: Task, params, batch) -> jax.Array:
    return model.apply({"params": params}, *task.inputs(batch))


def load(workdir, cell=None, *, strict: bool = False) -> Run:
    """The trained run in `workdir`, from its config.json and its newest verified checkpoint
    (any model the package trains: mnist_mlp.py, mnist_cnn.py, sequence_mnist.py,
    bit_counting.py, seq2seq.py). For a grid (activation_lr_grid.py), `cell` picks one cell by
    its coordinates, a dict with any of optimizer, activation, learning_rate and seed (or a
    `sweep.Cell`), enough to name one. Nothing in `workdir` is changed, so a run that is still
    training can be loaded; a missing directory, one that holds no run, and a run with no
    checkpoint yet each get a one-line error. A damaged newest checkpoint is passed over for
    the one before it with a warning, or, with `strict=True`, refused (CheckpointError)."""
    from dl_jax import classifier, sequences, sweep  # they build on this module
    from dl_jax.recipes import get_recipe

    run_dir = Path(workdir)
    saved = _saved_config(run_dir)
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    if "grid" in saved:
        cfg = config.from_dict(config.SweepConfig(), saved)
        picked = _pick_cell(sweep.grid_cells(cfg.grid), cell, run_dir)
        state, step = _restore(
            run_dir, cfg, lambda: sweep.init_grid(cfg.grid, cfg.recipe, cfg.model), one, strict
        )
        group = [c for c in sweep.grid_cells(cfg.grid) if c.optimizer == picked.optimizer]
        params = jax.tree.map(lambda x: x[group.index(picked)], state[picked.optimizer].params)
        recipe = get_recipe(cfg.recipe)
        model = models.build(sweep.model_config(cfg.model, recipe), activation=picked.activation)
        example = _image_example()
        return Run(model, params, cfg, sweep.cell_task(recipe), step, run_dir, example, picked)
    if cell is not None:
        raise ConfigError(f"{run_dir} holds a single run, not a grid: leave out cell=")
    if "study" in saved:
        raise ConfigError(
            f"{run_dir} holds a vanishing-gradient study; load one of its runs, "
            f"{run_dir}/<cell>/T<length>"
        )
    if not set(saved) <= set(config.to_dict(config.SequenceConfig())) | set(
        config.to_dict(config.ClassifierConfig())
    ):
        raise ConfigError(
            f"{run_dir} holds no trained run that runs.load reads (its config.json has "
            f"{', '.join(saved)}): load the runs an experiment trained, in its sub-directories"
        )
    if "task" in saved:
        cfg = config.from_dict(config.SequenceConfig(), saved)
        model, problem = sequences.build(cfg)
        task, example = problem.task, tasks.example_batch(problem.splits.train)
    else:
        cfg = config.from_dict(config.ClassifierConfig(), saved)
        (model, task), example = classifier.build(cfg), _image_example()
    # The schedule's length (total steps) does not change the optimizer state's shapes.
    init = _init_fn(cfg, model, task, example, steps=1)
    state, step = _restore(run_dir, cfg, init, one, strict)
    return Run(model, state.params, cfg, task, step, run_dir, example)


def _saved_config(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise ConfigError(f"no run in {run_dir}: no such directory")
    path = run_dir / workdirs.CONFIG
    if not path.exists():
        raise ConfigError(f"{run_dir} holds no dl_jax run (it has no {workdirs.CONFIG})")
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is unreadable ({e})") from None
    saved.pop("dataset", None)
    saved.pop("provenance", None)
    return saved


def _restore(run_dir: Path, cfg, init, sharding, strict: bool):
    """The state and step of the run's newest readable checkpoint: past damaged newer ones with
    a warning each, as the command line does, or (`strict`) not at all."""
    directory = run_dir / "checkpoints"
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint in {directory}: the run saved none yet")
    checkpointer = checkpoint.Checkpointer(directory, cfg.checkpoint, read_only=True)
    try:
        state, step, failures = checkpointer.restore_newest(init, sharding)
    finally:
        checkpointer.close()
    for newer, reason in failures:
        unreadable = f"checkpoint step {newer} in {directory} is unreadable ({reason})"
        if strict:
            raise CheckpointError(
                f"{unreadable}; the newest readable one is step {step}, which strict=False loads"
            )
        warnings.warn(f"{unreadable}; loading step {step}", stacklevel=3)
    return state, step


def _image_example() -> dict:
    """A batch of one MNIST-shaped example (every image dataset here is 28 x 28 x 1)."""
    return {"image": np.zeros((1, 28, 28, 1), np.uint8), "label": np.zeros(1, np.int32)}


def _pick_cell(cells: list, cell, run_dir: Path):
    """The one cell of `cells` whose coordinates match `cell` (a dict, or a sweep.Cell)."""
    if cell is None:
        raise ConfigError(
            f"{run_dir} holds a grid of {len(cells)} cells; pick one with cell={{'activation': "
            "..., 'learning_rate': ...}"
        )
    wanted = dataclasses.asdict(cell) if dataclasses.is_dataclass(cell) else dict(cell)
    names = [f.name for f in dataclasses.fields(cells[0])]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown cell coordinate(s) {', '.join(unknown)}; valid: {', '.join(names)}"
        )
    matches = [c for c in cells if all(getattr(c, k) == v for k, v in wanted.items())]
    if len(matches) == 1:
        return matches[0]

    def values(name, among):  # a coordinate's distinct values, in grid order
        return ", ".join(map(str, dict.fromkeys(getattr(c, name) for c in among)))

    if not matches:
        choices = "; ".join(f"{n}: {values(n, cells)}" for n in names)
        raise ConfigError(f"no cell {wanted} in the grid of {run_dir} ({choices})")
    open_names = [n for n in names if n not in wanted and len({getattr(c, n) for c in matches}) > 1]
    raise ConfigError(
        f"cell {wanted} matches {len(matches)} cells of {run_dir}; also give "
        + "; ".join(f"{n} (one of {values(n, matches)})" for n in open_names)
    )
