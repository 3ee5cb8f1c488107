"""Train a whole grid of one model (optimizer x activation x learning rate x seed) at once.

Every cell of the grid is the same model (any of `dl_jax.models`: the MLP, LeNet-5, the CNN)
with its own activation, learning rate, seed and optimizer. One function trains one cell for a
chunk of steps; it is compiled once for the grid and run over the cells with
`lax.map(..., batch_size=cells_per_pass)`, which vmaps it over `cells_per_pass` cells at a time:

- all cells per pass (the vmap over cells): every step touches every cell. This is the layout
  for GPUs and TPUs, where one step's kernels serve the whole grid.
- one cell per pass: each cell runs the whole chunk of steps while its weights stay in the
  core's cache (0.44 MB for the MLP). On a CPU this is twice as fast for one-example steps,
  whose cost is reading and writing every weight at every step (BENCHMARKS.md has the numbers).

On a CPU the cells are also split into `workers` groups, one per core, trained concurrently.

With more than one device the grid is one program over the "grid" axis of a device mesh
(`dl_jax.parallel`): `jax.shard_map` gives each device its own share of the cells, which it
trains with the same `lax.map`, and nothing crosses devices. The cells of each optimizer are
padded to a multiple of the "grid" axis with copies of its last cell; the copies train, and are
dropped before any loss, accuracy or checkpoint. With more devices than cells the mesh is 2-D,
grid x data: the devices along "data" split each batch of their cells and average the
gradients (`lax.pmean`), as a data-parallel single run does. `_layout` makes these choices, in
one place.

The activation of a cell is an index into the grid's activations, picked at run time by
`activations.select`; its learning rate lives in its optax state (`inject_hyperparams`). A cell
whose loss or parameters become non-finite during a chunk keeps its parameters from before that
chunk, is marked diverged, and is skipped from then on; no other cell is touched. Every array of
a grid state has the cell axis first, so a cell trains the same inside the grid as alone. Each
cell counts its steps and folds the count into its seed's dropout key, as a single run does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, PartitionSpec

from dl_jax import activations, models, optim, parallel, tasks, train
from dl_jax.checkpoint import Checkpointer, Position
from dl_jax.config import GridConfig, ModelConfig
from dl_jax.data import Splits, num_examples
from dl_jax.errors import ConfigError, unknown_name
from dl_jax.recipes import Recipe, get_recipe


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    optimizer: str
    activation: str
    learning_rate: float
    seed: int


@struct.dataclass
class CellState:
    """The training state of a group of cells; every array has the cell axis first."""

    params: Any
    opt_state: Any  # holds each cell's learning rate
    activation: jax.Array  # int32: index into the grid's activations
    order: jax.Array  # int32: which of the epoch's example orders the cell follows (its seed)
    diverged: jax.Array  # bool
    step: jax.Array  # int32: steps trained
    step_key: jax.Array  # uint32 key data: the step stream of the cell's seed (dropout)


GridState = dict[str, CellState]  # optimizer name -> its cells' states, stacked
EVAL_BATCH_SIZE = 1000  # test images per evaluation step of a cell


@dataclasses.dataclass(frozen=True)
class Program:
    """Everything static about a group's compiled training function."""

    model: ModelConfig
    activations: tuple[str, ...]
    recipe: str
    optimizer: str
    cells_per_pass: int
    data_devices: int = 1  # the mesh's "data" axis, over which each batch is split


def grid_cells(grid: GridConfig) -> list[Cell]:
    """The cells in grid order: optimizer, then activation, learning rate and seed."""
    return [
        Cell(o, a, lr, s)
        for o in grid.optimizers
        for a in grid.activations
        for lr in grid.learning_rates
        for s in grid.seeds
    ]


def check_grid(grid: GridConfig, recipe: Recipe, model: ModelConfig) -> None:
    """Refuse names that are unknown, models or optimizers the recipe does not train, and
    device counts that do not fit the machine or the grid."""
    models.build(model)  # an unknown model, pooling or conv implementation fails here
    _layout(grid, len(grid_cells(grid)) // len(grid.optimizers), recipe.batch_size)
    if model.name not in recipe.models:
        raise ConfigError(
            f"--recipe={recipe.name} is the slides' procedure for the MLP, not for "
            f"--model.name={model.name}; use --recipe=modern"
        )
    if model.activation != "auto":
        raise ConfigError(
            f"--model.activation={model.activation}: the grid's cells take theirs from "
            "--grid.activations; leave --model.activation=auto"
        )
    for name in grid.activations:
        activations.get_activation(name)  # an unknown name fails here, listing the valid ones
    if model.name == "rnn" and model.cell != "simple" and len(set(grid.activations)) > 1:
        raise ConfigError(
            f"--grid.activations={','.join(grid.activations)} over --model.cell={model.cell}: "
            "only the Elman cell has an activation to change, so every activation would train "
            "the same cells; give one activation, or use --model.cell=simple"
        )
    for name in grid.optimizers:
        if name not in optim.OPTIMIZERS:
            raise unknown_name("optimizer", name, optim.OPTIMIZERS)
        if name not in recipe.optimizers:
            raise ConfigError(
                f"--grid.optimizers: recipe {recipe.name!r} trains with "
                f"{', '.join(recipe.optimizers)} only, not {name!r}"
            )


# --------------------------------------------------------------------------- one cell


def model_config(model: ModelConfig, recipe: Recipe) -> ModelConfig:
    """The model of a recipe's cells: the slides' recipes train the MLP without biases."""
    return model if recipe.use_bias else dataclasses.replace(model, use_bias=False)


def _model(cell: CellState, program: Program):
    """The model of a cell, its activation picked by the cell's index at run time."""
    activation = activations.select(cell.activation, program.activations)
    return models.build(program.model, activation=activation)


def cell_task(recipe: Recipe) -> tasks.ImageClassification:
    """What the cells train on: the recipe's images and loss."""
    return tasks.ImageClassification(recipe.loss, recipe.preprocess)


def _train_cell(cell: CellState, data, order_RSB: jax.Array, program: Program):
    """Train one cell over the steps `order_RSB[cell.order]`; returns it and its losses [S]."""
    task = cell_task(get_recipe(program.recipe))
    model = _model(cell, program)
    tx = optim.make_optimizer(program.optimizer, 1.0)  # the rate in each cell's state is used
    step_key = jax.random.wrap_key_data(cell.step_key)

    split = program.data_devices > 1  # this device holds 1 / data_devices of each batch

    def mean_loss(params, idx_B, count):
        batch = jax.tree.map(lambda x: x[idx_B], data)
        key = jax.random.fold_in(step_key, count)  # as train.step_rngs
        if split:  # each part of the batch draws its own dropout masks
            key = jax.random.fold_in(key, jax.lax.axis_index(parallel.DATA_AXIS))
        outputs = model.apply({"params": params}, *task.inputs(batch), train=True,
                              rngs={"dropout": key})  # fmt: skip
        return task.loss(outputs, batch).mean()

    def step(carry, idx_B):
        params, opt_state, count = carry
        loss, grads = jax.value_and_grad(mean_loss)(params, idx_B, count)
        if split:  # the whole batch's mean loss and gradient, the same on every part
            loss, grads = parallel.mean_over_data((loss, grads))
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, count + 1), loss

    def run(cell):
        (params, opt_state, steps), losses_S = jax.lax.scan(
            step, (cell.params, cell.opt_state, cell.step), order_RSB[cell.order]
        )
        finite = jnp.isfinite(losses_S).all() & jnp.all(
            jnp.array([jnp.isfinite(p).all() for p in jax.tree.leaves(params)])
        )
        stepped = cell.replace(params=params, opt_state=opt_state, step=steps)
        frozen = cell.replace(diverged=jnp.array(True))  # the state from before the chunk
        return jax.tree.map(lambda a, b: jnp.where(finite, a, b), stepped, frozen), losses_S

    def skip(cell):
        return cell, jnp.full(order_RSB.shape[1], jnp.nan)

    return jax.lax.cond(cell.diverged, skip, run, cell)


def _evaluate_cell(cell: CellState, test, program: Program) -> jax.Array:
    """Test accuracy of one cell, in batches of `EVAL_BATCH_SIZE`."""
    task = cell_task(get_recipe(program.recipe))
    model = _model(cell, program)

    def sums(batch, mask_B):
        outputs = model.apply({"params": cell.params}, *task.inputs(batch))
        return tasks.evaluation_sums(task, outputs, batch, mask_B)

    batch_size = min(EVAL_BATCH_SIZE, num_examples(test))
    return tasks.means(train.sum_over_batches(sums, test, batch_size))["test/accuracy"]


def _map_cells(fn, cells: CellState, cells_per_pass: int):
    if cells_per_pass == 1:  # a plain loop, in which lax.cond skips diverged cells
        return jax.lax.map(fn, cells)
    return jax.lax.map(fn, cells, batch_size=cells_per_pass)


@functools.partial(jax.jit, static_argnames=("program", "mesh"), donate_argnums=0)
def train_chunk(cells: CellState, data, order_RSB: jax.Array, program: Program, mesh=None):
    """Train every cell of a group over one chunk of steps; returns it and losses [C, S].

    With a `mesh`, the cells are split over its "grid" axis and each device trains its own,
    on its part of each batch (the batch axis of `order_RSB` is split over "data").
    """

    def train_cells(cells, data, order_RSB):
        fn = functools.partial(_train_cell, data=data, order_RSB=order_RSB, program=program)
        return _map_cells(fn, cells, program.cells_per_pass)

    if mesh is None:
        return train_cells(cells, data, order_RSB)
    specs = (PartitionSpec(), PartitionSpec(None, None, parallel.DATA_AXIS))
    cells, losses_CS = _on_grid(train_cells, mesh, specs, outputs=2)(cells, data, order_RSB)
    return cells, parallel.gathered(losses_CS, mesh)


@functools.partial(jax.jit, static_argnames=("program", "mesh"))
def evaluate(cells: CellState, test, program: Program, mesh=None) -> tuple[jax.Array, jax.Array]:
    """Test accuracy of every cell of a group and whether it diverged, [C] each (on a mesh,
    each device evaluates its own cells; the results are gathered onto every device)."""

    def evaluate_cells(cells, test):
        fn = functools.partial(_evaluate_cell, test=test, program=program)
        return _map_cells(fn, cells, program.cells_per_pass), cells.diverged

    if mesh is None:
        return evaluate_cells(cells, test)
    outputs = _on_grid(evaluate_cells, mesh, (PartitionSpec(),), outputs=2)(cells, test)
    return parallel.gathered(outputs, mesh)


def _on_grid(fn, mesh: Mesh, in_specs: tuple[PartitionSpec, ...], outputs: int):
    """`fn(cells, *rest)` per device on its cells of the "grid" axis, `rest` split as
    `in_specs` says; its `outputs` have the cell axis first."""
    cells = PartitionSpec(parallel.GRID_AXIS)
    # No collectives but the "data" axis's pmean: each device's cells are its own.
    # check_vma=False lets the per-cell code mix device-varying values (the cells) with
    # replicated ones (the data) as it does alone.
    return jax.shard_map(
        fn, mesh=mesh, in_specs=(cells, *in_specs), out_specs=(cells,) * outputs, check_vma=False
    )


# --------------------------------------------------------------------------- the grid


def init_grid(grid: GridConfig, recipe_name: str, model: ModelConfig) -> GridState:
    """The initial state of every cell, stacked per optimizer (the form checkpoints hold).

    Cells that share a seed and an init scheme share their initial weights, so that a row of
    learning rates starts from the same point.
    """
    recipe = get_recipe(recipe_name)
    model = model_config(model, recipe)
    example = recipe.preprocess(jnp.zeros((1, 28, 28, 1), jnp.uint8))
    state = {}
    for optimizer in grid.optimizers:
        cells = []
        for cell in (c for c in grid_cells(grid) if c.optimizer == optimizer):
            init = recipe.kernel_init(cell.activation)
            module = models.build(model, activation=cell.activation, kernel_init=init)
            init_key, _, step_key = train.root_keys(cell.seed)
            params = module.init(init_key, example)["params"]
            tx = optim.make_optimizer(cell.optimizer, cell.learning_rate)
            cells.append(
                CellState(
                    params=params,
                    opt_state=tx.init(params),
                    activation=jnp.int32(grid.activations.index(cell.activation)),
                    order=jnp.int32(grid.seeds.index(cell.seed) if recipe.shuffle else 0),
                    diverged=jnp.array(False),
                    step=jnp.int32(0),
                    step_key=jax.random.key_data(step_key),
                )
            )
        state[optimizer] = jax.tree.map(lambda *xs: jnp.stack(xs), *cells)
    return state


def epoch_orders(seeds: tuple[int, ...], epoch: int, n: int, recipe: Recipe) -> jax.Array:
    """[R, steps, B] example indices of `epoch`: one order per seed, or the stored order."""
    steps = train.steps_per_epoch(n, recipe.batch_size)
    if not recipe.shuffle:
        return jnp.arange(steps * recipe.batch_size).reshape(1, steps, recipe.batch_size)
    return jnp.stack(
        [
            train.epoch_indices(train.root_keys(seed)[1], epoch, n, recipe.batch_size)
            for seed in seeds
        ]
    )


@dataclasses.dataclass
class _Group:
    """Cells of one optimizer trained by one program: their state (the first `real` cells; the
    rest pad them to the mesh) and their compiled programs."""

    optimizer: str
    program: Program
    state: CellState
    real: int
    mesh: Mesh | None = None
    train_fns: dict = dataclasses.field(default_factory=dict)  # chunk size -> compiled chunk
    eval_fn: Any = None

    def compile(self, train_data, test_data, orders_RSB: jax.Array, sizes: set[int]) -> None:
        """Compile ahead of time, so that epoch times are pure run time."""
        args = (self.program, self.mesh)
        for size in sizes:
            lowered = train_chunk.lower(self.state, train_data, orders_RSB[:, :size], *args)
            self.train_fns[size] = lowered.compile()
        self.eval_fn = evaluate.lower(self.state, test_data, *args).compile()

    def train(self, train_data, chunk_RSB: jax.Array) -> np.ndarray:
        """Train over one chunk of steps; the real cells' losses [C, S] on the host."""
        train_fn = self.train_fns[chunk_RSB.shape[1]]
        self.state, losses_CS = train_fn(self.state, train_data, chunk_RSB)
        return np.asarray(losses_CS)[: self.real]

    def evaluate(self, test_data) -> tuple[np.ndarray, np.ndarray]:
        """Test accuracy of every real cell and whether it diverged, [C] each."""
        accuracy_C, diverged_C = self.eval_fn(self.state, test_data)
        return np.asarray(accuracy_C)[: self.real], np.asarray(diverged_C)[: self.real]

    def real_state(self) -> CellState:
        """The real cells' state (on a mesh: whole on every device, which every host can read,
        checksum and save)."""
        if self.mesh is None:
            return jax.tree.map(lambda x: x[: self.real], self.state)
        return _real_cells(self.state, self.real, self.mesh)


@functools.partial(jax.jit, static_argnames=("real", "mesh"))
def _real_cells(state: CellState, real: int, mesh: Mesh) -> CellState:
    return parallel.gathered(jax.tree.map(lambda x: x[:real], state), mesh)


@dataclasses.dataclass(frozen=True)
class _Layout:
    cells_per_pass: int  # cells vmapped together (at most a group's, or a device's, cells)
    workers: int  # concurrent groups of cells (threads), on one device
    mesh: Mesh | None  # the grid x data mesh over several devices, or None for one device


def _layout(grid: GridConfig, num_cells: int, batch_size: int) -> _Layout:
    """How the grid runs here, the 0 = automatic settings resolved for this machine:

    - several devices (`grid.num_devices`, 0: all): one program over a grid x data mesh; each
      device trains its own cells, one at a time on CPUs, all in one vmap elsewhere. The
      "data" axis (`grid.data_devices`) is 1 while there are at least as many cells (of the
      largest optimizer) as devices. With fewer, the "grid" axis is the smallest divisor of
      the devices that holds every cell, and the rest split each cell's batch: 2 cells on 8
      devices train on 2 x 4, each device computing a quarter of each batch.
    - one device: on a CPU, one group of cells per core, trained by concurrent threads, each
      cell at a time (cache-resident weights: 2x faster there); elsewhere all cells in one
      vmap.
    """
    on_cpu = jax.default_backend() == "cpu"
    devices = parallel.device_count(grid.num_devices, "grid.num_devices")
    cells_per_pass = grid.cells_per_pass or (1 if on_cpu else num_cells)  # capped per group
    if devices > 1:
        data = grid.data_devices or _auto_data_devices(devices, num_cells, batch_size)
        for what, n in (("devices", devices), ("batch size", batch_size)):
            if n % data:
                raise ConfigError(
                    f"--grid.data_devices={data} does not divide the {what}, {n}; use a "
                    f"divisor of {n}, or 0 (auto)"
                )
        return _Layout(cells_per_pass, 1, parallel.make_grid_mesh(devices // data, data))
    if grid.data_devices > 1:
        raise ConfigError(
            f"--grid.data_devices={grid.data_devices}, but the grid runs on one device; "
            "use 0 (auto) or 1"
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = grid.workers or ((cores or 1) if on_cpu else 1)
    return _Layout(cells_per_pass, min(workers, num_cells), None)


def _auto_data_devices(devices: int, cells: int, batch_size: int) -> int:
    """The "data" axis for `cells` on `devices`: what is left once the "grid" axis, the
    smallest divisor of `devices` that holds all cells, is taken, and divides the batch."""
    grid = next(g for g in range(1, devices + 1) if devices % g == 0 and g >= min(cells, devices))
    return math.gcd(devices // grid, batch_size)


def _pad(state: CellState, size: int) -> CellState:
    """`state` with copies of its last cell appended, to `size` cells."""
    extra = size - len(jax.tree.leaves(state)[0])
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]), state)


def train_grid(
    grid: GridConfig,
    recipe_name: str,
    model: ModelConfig,
    splits: Splits,
    epochs: int,
    *,
    state: GridState | None = None,
    position: Position | None = None,
    checkpointer: Checkpointer | None = None,
    profile_dir: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """Train every cell of `grid`; check and compile at once, then yield one record per epoch.

    Training starts from `state` and `position` (a fresh grid when None) and may be checkpointed
    as it goes (see `train.epoch_loop`). Each record holds, in the order of `grid_cells(grid)`:
    `train_loss` (the recipe's loss, averaged over the epoch's steps), `test_accuracy` and
    `diverged` (arrays [C]), and `epoch` and `seconds` (the wall time of the epoch's training
    for the whole grid, compilation excluded). With `profile_dir`, the first chunk is traced
    with `jax.profiler` into it, as `train.fit` does.
    """
    recipe = get_recipe(recipe_name)
    check_grid(grid, recipe, model)
    cells = grid_cells(grid)
    n = num_examples(splits.train)
    steps = train.steps_per_epoch(n, recipe.batch_size)
    chunk_steps = max(1, grid.chunk_examples // recipe.batch_size)
    layout = _layout(grid, len(cells) // len(grid.optimizers), recipe.batch_size)
    mesh, workers = layout.mesh, layout.workers
    replicated = parallel.replicated(mesh) if mesh else None
    train_data, test_data = jax.device_put((splits.train, splits.test), replicated)
    state = state if state is not None else init_grid(grid, recipe.name, model)
    model = model_config(model, recipe)

    groups = []
    for optimizer in grid.optimizers:
        size = len(jax.tree.leaves(state[optimizer])[0])
        make_program = functools.partial(Program, model, grid.activations, recipe.name, optimizer)
        if mesh:  # one group of all the optimizer's cells, padded and split over the devices
            padded = _pad(state[optimizer], parallel.padded_size(size, mesh))
            per_device = len(jax.tree.leaves(padded)[0]) // mesh.shape[parallel.GRID_AXIS]
            sharded = jax.device_put(padded, parallel.grid_sharding(mesh))
            program = make_program(
                min(layout.cells_per_pass, per_device), mesh.shape[parallel.DATA_AXIS]
            )
            groups.append(_Group(optimizer, program, sharded, size, mesh))
            continue
        for part in np.array_split(np.arange(size), min(workers, size)):
            part_state = jax.tree.map(lambda x, p=part: x[p[0] : p[-1] + 1], state[optimizer])
            program = make_program(min(layout.cells_per_pass, len(part)))
            groups.append(_Group(optimizer, program, jax.device_put(part_state), len(part)))

    @functools.lru_cache(maxsize=1)
    def orders(epoch):
        return jax.device_put(epoch_orders(grid.seeds, epoch, n, recipe), replicated)

    compile_group = functools.partial(
        _Group.compile,
        train_data=train_data,
        test_data=test_data,
        orders_RSB=orders(0),
        sizes=set(train.chunk_sizes(steps, chunk_steps)),
    )
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(compile_group, groups))

    def grid_state():  # the groups put back together, one stacked state per optimizer
        return {
            o: jax.tree.map(
                lambda *xs: jnp.concatenate(xs),
                *[g.real_state() for g in groups if g.optimizer == o],
            )
            for o in grid.optimizers
        }

    def epochs_of_training():
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:

            @functools.partial(train.trace_first_call, profile_dir=profile_dir)
            def train_steps(epoch, first, size):
                run = functools.partial(
                    _Group.train,
                    train_data=train_data,
                    chunk_RSB=orders(epoch)[:, first : first + size],
                )
                return np.concatenate(list(pool.map(run, groups)))

            def test_metrics():
                run = functools.partial(_Group.evaluate, test_data=test_data)
                accuracy, diverged = zip(*pool.map(run, groups), strict=True)
                return {
                    "test_accuracy": np.concatenate(accuracy),
                    "diverged": np.concatenate(diverged),
                }

            loop = train.epoch_loop(
                epochs=epochs,
                steps=steps,
                chunk_steps=chunk_steps,
                position=position or Position(),
                train_steps=train_steps,
                test_metrics=test_metrics,
                get_state=grid_state,
                checkpointer=checkpointer,
                desc=f"{len(cells)} cells",
            )
            for epoch, loss, metrics, seconds in loop:
                yield {"epoch": epoch, "train_loss": loss, **metrics, "seconds": seconds}

    return epochs_of_training()
