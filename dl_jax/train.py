"""Training on the device: a TrainState, a pure train step, and epochs as chunked `lax.scan`.

The whole dataset sits on the device as stored (MNIST as uint8); a `dl_jax.tasks.Task` says
how a batch becomes the model's inputs, its loss and its metrics, inside the step. The order of an
epoch is a permutation that is a pure function of (seed, epoch), so (state, epoch) is all a run
needs to continue. An epoch runs as a few compiled scan calls ("chunks"); between them the host
advances the progress bar and checks that the loss is finite.

Shape key: B batch, S steps in a chunk, N examples in a split.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding

from dl_jax import parallel, tasks
from dl_jax.checkpoint import Checkpointer, Position
from dl_jax.config import TrainConfig
from dl_jax.data import Splits, num_examples
from dl_jax.errors import ConfigError, DivergedError
from dl_jax.metrics import progress
from dl_jax.tasks import Batch, Task


class TrainState(train_state.TrainState):
    """flax's TrainState (step, params, optimizer and its state), the task it trains on, and the
    key of the run's per-step random stream, for dropout and augmentation (raw key data, so that
    it checkpoints as a plain uint32 array)."""

    step_key: jax.Array
    task: Task = struct.field(pytree_node=False)


def root_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The three streams of a run, from its one root key: (init, shuffle, step), the last for
    what each step draws (dropout masks, augmentation).

    The step stream is folded in, so that the first two are the split they always were.
    """
    root = jax.random.key(seed)
    init_key, shuffle_key = jax.random.split(root)
    return init_key, shuffle_key, jax.random.fold_in(root, 2)


def create_train_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    task: Task,
    seed: int,
    example: Batch,
) -> TrainState:
    """Initialize `model` on the inputs of `example` (a batch of the data, see
    `tasks.example_batch`) and its optimizer, from the init and step streams of `seed`."""
    init_key, _, step_key = root_keys(seed)
    params = model.init(init_key, *task.inputs(example))["params"]
    return TrainState.create(
        apply_fn=model.apply,
        params=params,
        tx=tx,
        task=task,
        step_key=jax.random.key_data(step_key),
    )


def step_rngs(state: TrainState) -> dict[str, jax.Array]:
    """The rngs of the step `state.step`: the run's stream folded with the step number, so that
    a resumed run draws what it would have drawn. "augment" is folded once more from "dropout"."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.step_key), state.step)
    return {"dropout": key, "augment": jax.random.fold_in(key, 1)}


@functools.partial(jax.jit, donate_argnums=0, static_argnames="mesh")
def train_step(
    state: TrainState, batch: Batch, mesh: Mesh | None = None
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One gradient step on the mean loss of `batch`.

    With a `mesh` whose "data" axis has several devices (the batch split over it), each device
    differentiates the mean loss of its own part of the batch (`parallel.data_parallel`), and
    the means over the devices are taken once, after the backward pass
    (`parallel.mean_over_data`): nothing inside the model's own loops, a recurrent network's
    time steps, waits for the other devices or hosts.
    Each part then draws its own dropout masks.
    """
    if mesh is None or mesh.shape[parallel.DATA_AXIS] == 1:
        loss, grads = _loss_and_grads(state, batch)
    else:
        split = functools.partial(_loss_and_grads, split=True)
        loss, grads = parallel.data_parallel(split, mesh)(state, batch)
    return state.apply_gradients(grads=grads), {"train/loss": loss}


def _loss_and_grads(state: TrainState, batch: Batch, split: bool = False):
    """The mean loss of `batch` and its gradient. `split`: `batch` is this device's part of the
    batch, and both are averaged over the "data" axis."""
    rngs = step_rngs(state)
    if split:  # each part of the batch draws its own masks
        index = jax.lax.axis_index(parallel.DATA_AXIS)
        rngs = {name: jax.random.fold_in(key, index) for name, key in rngs.items()}

    def mean_loss(params):
        outputs = state.apply_fn(
            {"params": params}, *state.task.inputs(batch), train=True, rngs=rngs
        )
        return state.task.loss(outputs, batch).mean()

    loss, grads = jax.value_and_grad(mean_loss)(state.params)
    return parallel.mean_over_data((loss, grads)) if split else (loss, grads)


@functools.partial(jax.jit, donate_argnums=0, static_argnames="sharding")
def train_chunk(
    state: TrainState, data: Batch, idx_SB: jax.Array, sharding: NamedSharding
) -> tuple[TrainState, dict[str, jax.Array]]:
    """`train_step` over the batches `data[idx_SB[s]]`, as one `lax.scan`; metrics stacked [S].

    Each batch is first augmented by the task, with the step's "augment" key.
    """

    def constrain(batch):
        return jax.lax.with_sharding_constraint(batch, sharding)

    def body(state, idx_B):
        batch = constrain(jax.tree.map(lambda x: x[idx_B], data))
        augmented = state.task.augment(step_rngs(state)["augment"], batch)
        batch = batch if augmented is batch else constrain(augmented)
        return train_step(state, batch, sharding.mesh)

    return jax.lax.scan(body, state, idx_SB)


@functools.partial(jax.jit, static_argnames=("num_examples", "batch_size"))
def epoch_indices(shuffle_key: jax.Array, epoch: int, num_examples: int, batch_size: int):
    """[steps, B] example indices of `epoch`: a fresh permutation, the remainder dropped."""
    perm = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), num_examples)
    steps = steps_per_epoch(num_examples, batch_size)
    return perm[: steps * batch_size].reshape(steps, batch_size)


def sum_over_batches(fn, data: Batch, batch_size: int, sharding: NamedSharding | None = None):
    """The sum of `fn(batch, mask_B)` over `data` in batches of `batch_size` (a `lax.map`).

    The last batch is zero-padded and `mask_B` is False on its padding, which `fn` must leave
    out of what it returns (a pytree of sums). Evaluating in batches keeps the activations of
    one batch in memory, and the compiled program small.
    """
    n = len(jax.tree.leaves(data)[0])
    pad = -n % batch_size

    def batched(x):  # [N, ...] -> [N / batch_size, batch_size, ...], zero-padded
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        return x.reshape(-1, batch_size, *x.shape[1:])

    def one(args):
        return fn(*(args if sharding is None else jax.lax.with_sharding_constraint(args, sharding)))

    mask = batched(jnp.ones(n, bool))
    return jax.tree.map(lambda x: x.sum(0), jax.lax.map(one, (jax.tree.map(batched, data), mask)))


@functools.partial(jax.jit, static_argnames=("batch_size", "sharding"))
def evaluate(
    state: TrainState, data: Batch, batch_size: int, sharding: NamedSharding
) -> dict[str, jax.Array]:
    """The task's mean loss and metrics over all of `data` (test/loss, test/accuracy, ...), in
    batches (the last one padded and masked)."""

    def sums(batch, mask_B):
        outputs = state.apply_fn({"params": state.params}, *state.task.inputs(batch))
        return tasks.evaluation_sums(state.task, outputs, batch, mask_B)

    return tasks.means(sum_over_batches(sums, data, batch_size, sharding))


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches in one pass over `num_examples` (the remainder is dropped)."""
    if batch_size > num_examples:
        raise ConfigError(
            f"--train.batch_size={batch_size} is larger than the {num_examples} training examples"
        )
    return num_examples // batch_size


def chunk_sizes(steps: int, chunk_steps: int) -> list[int]:
    """Split an epoch of `steps` into chunks of `chunk_steps` and one shorter remainder."""
    full, rest = divmod(steps, chunk_steps)
    return [chunk_steps] * full + ([rest] if rest else [])


def epoch_loop(
    *,
    epochs: int,
    steps: int,
    chunk_steps: int,
    position: Position,
    train_steps: Callable[[int, int, int], np.ndarray],
    test_metrics: Callable[[], dict],
    get_state: Callable[[], Any],
    checkpointer: Checkpointer | None,
    desc: str,
) -> Iterator[tuple[int, Any, dict, float]]:
    """Train chunk by chunk from `position` to the end of `epochs`; yield a summary per epoch.

    `train_steps(epoch, first, size)` trains steps [first, first + size) of `epoch` and returns
    their losses [..., size] on the host. An epoch yields (its number from 1, its mean training
    loss, `test_metrics()`, its training seconds). The checkpointer may save between chunks, and
    after each yielded epoch has been handled (its metrics written), so that a checkpoint never
    runs ahead of the metrics; after the last epoch it always saves.
    """
    position = dataclasses.replace(position)
    initial = position.epoch * steps + position.step
    bar = progress(epochs * steps, desc, initial, show=parallel.is_main_process())
    with bar:
        while position.epoch < epochs:
            start_time = time.perf_counter() - position.seconds
            first = 0
            for size in chunk_sizes(steps, chunk_steps):
                if first >= position.step:  # chunks already trained before a resume are skipped
                    losses = train_steps(position.epoch, first, size)
                    position.loss_sum = position.loss_sum + losses.sum(-1, dtype=np.float64)
                    position.step = first + size
                    position.seconds = time.perf_counter() - start_time
                    bar.update(size)
                    if checkpointer and position.step < steps:
                        global_step = position.epoch * steps + position.step
                        checkpointer.maybe_save(global_step, get_state, position)
                first += size
            yield position.epoch + 1, position.loss_sum / steps, test_metrics(), position.seconds
            position = Position(epoch=position.epoch + 1)
            if checkpointer:
                checkpointer.maybe_save(
                    position.epoch * steps, get_state, position, force=position.epoch == epochs
                )


def check_outputs(model: nn.Module, task: Task, splits: Splits) -> None:
    """Refuse a model with fewer outputs than the data has classes (it would train to a
    non-finite loss: a label past the last output has no logit), naming both numbers."""
    example = tasks.example_batch(splits.train)
    outputs = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), *task.inputs(example))[0]
    ).shape[-1]
    classes = 1 + max(int(np.max(split[task.labels_key])) for split in (splits.train, splits.test))
    if outputs < classes:
        raise ConfigError(
            f"the model has {outputs} outputs, but the data's {task.labels_key}s go up to "
            f"{classes - 1} ({classes} classes); give its last layer at least {classes} units "
            "(the last of --model.features for the MLP, of --model.dense_features for the "
            "CNNs; --model.num_classes for the rnn)"
        )


def check_setup(cfg: TrainConfig, mesh: Mesh, splits: Splits) -> int:
    """Refuse batch sizes that do not fit the devices or the data; the steps per epoch."""
    parallel.check_divisible(cfg.batch_size, mesh)
    parallel.check_divisible(cfg.eval_batch_size, mesh, "train.eval_batch_size")
    return steps_per_epoch(num_examples(splits.train), cfg.batch_size)


def fit(
    state: TrainState,
    splits: Splits,
    cfg: TrainConfig,
    mesh: Mesh,
    *,
    position: Position | None = None,
    checkpointer: Checkpointer | None = None,
    profile_dir: Path | None = None,
) -> Iterator[tuple[TrainState, dict[str, Any]]]:
    """Check the set-up and compile at once; return an iterator that trains one epoch per step.

    Training starts at `position` (a fresh run when None) and may be checkpointed as it goes
    (see `epoch_loop`). Each epoch yields `(state, metrics)`: epoch, train/loss (mean over the
    epoch's steps), the task's test/loss and test metrics (test/accuracy, ...) on the whole test
    split, and the wall time of
    training and of evaluation, compilation excluded. A chunk with a non-finite loss raises
    DivergedError, naming the steps and the last good checkpoint. With `profile_dir`, the first
    chunk this call trains (compiled beforehand) is traced with `jax.profiler` into it, for
    TensorBoard's profile plugin and, as perfetto_trace.json.gz, for ui.perfetto.dev.
    """
    steps = check_setup(cfg, mesh, splits)
    examples = num_examples(splits.train)
    replicated = parallel.replicated(mesh)
    batch_sharding = parallel.batch_sharding(mesh)
    train, test, state = jax.device_put((splits.train, splits.test, state), replicated)
    _, shuffle_key, _ = root_keys(cfg.seed)

    @functools.lru_cache(maxsize=1)
    def indices(epoch):
        return jax.device_put(
            epoch_indices(shuffle_key, epoch, examples, cfg.batch_size), replicated
        )

    # Compile ahead of time, so that the epoch times below are pure run time.
    chunks = {
        size: train_chunk.lower(state, train, indices(0)[:size], batch_sharding).compile()
        for size in set(chunk_sizes(steps, cfg.chunk_steps))
    }
    eval_fn = evaluate.lower(state, test, cfg.eval_batch_size, batch_sharding).compile()

    @functools.partial(trace_first_call, profile_dir=profile_dir)
    def train_steps(epoch, first, size):
        nonlocal state
        state, metrics = chunks[size](state, train, indices(epoch)[first : first + size])
        losses_S = np.asarray(jax.device_get(metrics["train/loss"]))
        _check_finite(losses_S, epoch, epoch * steps + first, checkpointer)
        return losses_S

    def test_metrics():
        start_time = time.perf_counter()
        metrics = {k: float(v) for k, v in jax.device_get(eval_fn(state, test)).items()}
        return {**metrics, "test/seconds": time.perf_counter() - start_time}

    def epochs():
        loop = epoch_loop(
            epochs=cfg.epochs,
            steps=steps,
            chunk_steps=cfg.chunk_steps,
            position=position or Position(),
            train_steps=train_steps,
            test_metrics=test_metrics,
            get_state=lambda: state,
            checkpointer=checkpointer,
            desc="training",
        )
        for epoch, loss, metrics, seconds in loop:
            yield (
                state,
                {"epoch": epoch, "train/loss": float(loss), **metrics, "train/seconds": seconds},
            )

    return epochs()


def trace_first_call(fn: Callable, profile_dir: Path | None) -> Callable:
    """`fn` with its first call traced by `jax.profiler` into `profile_dir` (for TensorBoard's
    profile plugin, and perfetto_trace.json.gz for ui.perfetto.dev); `fn` itself when None."""
    if profile_dir is None:
        return fn
    untraced = [True]

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        if not untraced:
            return fn(*args, **kwargs)
        untraced.clear()
        with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
            return fn(*args, **kwargs)

    return traced


def _check_finite(
    losses_S: np.ndarray, epoch: int, done: int, checkpointer: Checkpointer | None
) -> None:
    """Raise DivergedError if a loss of the chunk that starts after `done` steps is not finite."""
    bad = np.flatnonzero(~np.isfinite(losses_S))
    if bad.size:
        last = checkpointer.latest_step() if checkpointer else None
        kept = (
            "no checkpoint was saved"
            if last is None
            else (f"the last good checkpoint is step {last} in {checkpointer.directory}")
        )
        raise DivergedError(
            f"non-finite training loss in epoch {epoch + 1}, steps {done + 1}-"
            f"{done + len(losses_S)} (first at step {done + 1 + bad[0]}); {kept}; "
            "try a lower --optim.learning_rate"
        )
