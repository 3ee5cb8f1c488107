"""The one place that builds device meshes: `jax.jit` and `jax.shard_map` over named axes.

- "data": a single run's batch is split over it; parameters, optimizer state and the
  on-device dataset are replicated. The training step's loss and gradient are computed by each
  device on its part of the batch (`data_parallel`, a `shard_map`) and averaged once, after the
  backward pass (`mean_over_data`): under `jax.jit`'s automatic partitioning, the gradient of
  a recurrent network was all-reduced inside its backward time loop, at every time step. One
  device is a mesh of size 1, so there is a single code path.
- "grid": the cells of a sweep (`dl_jax.sweep`) are split over it. Cells are independent, so
  nothing crosses it: each device trains its own cells with `jax.shard_map`. A grid whose cell
  count does not divide the devices is padded (`padded_size`) with cells that never reach an
  output or a checkpoint. With more devices than cells, a sweep's mesh is 2-D (grid x data):
  each cell's batch is split over "data" too, and its gradients are averaged over it.

(This is what the spec's "pmap'd across devices" means today: `jax.pmap` is in maintenance mode
and is itself implemented on `shard_map` since JAX 0.8.)
"""

import contextlib
import hashlib
import math
from collections.abc import Iterator

import jax
import jax.flatten_util
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from dl_jax import provenance, workdir
from dl_jax.errors import ConfigError, DataError, DLJaxError

DATA_AXIS = "data"
GRID_AXIS = "grid"


def device_count(num_devices: int = 0, key: str = "train.num_devices") -> int:
    """`num_devices`, or all devices for 0; `key` is the option that chose it, for the error if
    there are fewer devices."""
    available = len(jax.devices())
    if num_devices > available:
        raise ConfigError(f"--{key}={num_devices}, but only {available} device(s) are available")
    return num_devices or available


def make_mesh(num_devices: int = 0, axis: str = DATA_AXIS, key: str = "train.num_devices") -> Mesh:
    """A mesh over the first `num_devices` devices (0 means all) with one axis, `axis`."""
    return _mesh({axis: device_count(num_devices, key)})


def make_grid_mesh(grid_devices: int, data_devices: int) -> Mesh:
    """The 2-D mesh of a sweep: its cells split over "grid", each cell's batch over "data"."""
    return _mesh({GRID_AXIS: grid_devices, DATA_AXIS: data_devices})


def _mesh(shape: dict[str, int]) -> Mesh:
    size = math.prod(shape.values())
    return jax.make_mesh(
        tuple(shape.values()),
        tuple(shape),
        axis_types=(AxisType.Auto,) * len(shape),
        devices=jax.devices()[:size],
    )


def grid_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (cell) axis split over the "grid" axis (and whole along "data")."""
    return NamedSharding(mesh, PartitionSpec(GRID_AXIS))


def padded_size(cells: int, mesh: Mesh) -> int:
    """The smallest multiple of the mesh's "grid" axis that holds `cells`."""
    return -(-cells // mesh.shape[GRID_AXIS]) * mesh.shape[GRID_AXIS]


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the devices, everything else whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def data_parallel(fn, mesh: Mesh):
    """`fn(state, batch)` on each device of `mesh`, with its rows of `batch` (split over the
    "data" axis) and the whole `state`; its outputs, which `fn` averages over "data" itself
    (`lax.pmean`), are the same on every device."""
    replicated, split = PartitionSpec(), PartitionSpec(DATA_AXIS)
    # check_vma=False: flax's scans start a carry that is the same on every device (zeros)
    # and end it different on each, as plain per-device code does.
    return jax.shard_map(
        fn, mesh=mesh, in_specs=(replicated, split), out_specs=replicated, check_vma=False
    )


def mean_over_data(tree):
    """The mean of `tree` over the "data" axis, inside `shard_map`, as one collective.

    Across processes the arrays go as one flattened vector: CPU collectives over Gloo pay a
    round trip per array (15 for an LSTM's gradient: bit counting's two-process epoch took
    3.7 s as a tuple and 1.0 s flattened, against 0.5 s in one process). Within a process the
    tuple is the fast form (the MLP's step on 2 CPU devices: 1 ms, against 2-12 ms flattened).
    """
    if jax.process_count() == 1:
        return jax.lax.pmean(tree, DATA_AXIS)
    flat, unflatten = jax.flatten_util.ravel_pytree(tree)
    return unflatten(jax.lax.pmean(flat, DATA_AXIS))


def gathered(tree, mesh: Mesh):
    """`tree` whole on every device, inside a jitted function: what each host then reads."""
    return jax.lax.with_sharding_constraint(tree, replicated(mesh))


def check_divisible(batch_size: int, mesh: Mesh, key: str = "train.batch_size") -> None:
    """A batch must split evenly over the devices; say so at start-up, with both numbers."""
    devices = mesh.devices.size
    if batch_size % devices:
        raise ConfigError(
            f"--{key}={batch_size} does not divide over {devices} devices; "
            f"use a multiple of {devices}"
        )


def initialize(dist) -> None:
    """Join a multi-host run (`config.DistConfig`) with `jax.distributed.initialize`, before
    anything touches the devices; a single-host run (the default) does nothing. Afterwards the
    meshes span every process's devices."""
    if not dist.enabled:
        return
    if dist.auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=dist.coordinator,
            num_processes=dist.num_processes,
            process_id=dist.process_id,
        )


def is_main_process() -> bool:
    """Process 0 of a multi-host run (or the only one): the one that writes files."""
    return jax.process_index() == 0


def prepare_workdir(run_dir, cfg, harmless: tuple[str, ...], dataset: dict | None) -> None:
    """`workdir.prepare` on process 0 only (the only process, on one host); the others wait
    for it. If it refuses the directory, every process fails: process 0 with its error, the
    others with one line that points to it (instead of waiting for a collective that never
    comes)."""
    error = None
    if is_main_process():
        try:
            note = workdir.prepare(run_dir, cfg, harmless, dataset, provenance.collect())
        except DLJaxError as e:
            error = e
        else:
            if note:
                print(note, flush=True)
    agree(error, f"prepare {run_dir}")


@contextlib.contextmanager
def held_by_main_process(path) -> Iterator[None]:
    """`workdir.hold(path)` on process 0, for every process of the run (on one host: the
    process itself); all of them fail, in one line each, if it cannot be held."""
    with contextlib.ExitStack() as stack:
        error = None
        if is_main_process():
            try:
                stack.enter_context(workdir.hold(path))
            except DLJaxError as e:
                error = e
        agree(error, f"hold the work directory {path}")
        yield


def check_same_data(fingerprints: tuple[str, ...]) -> None:
    """Refuse a multi-host run whose processes loaded different data (each host reads its own
    copy, and each trains on it as if it were every other host's)."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256("".join(fingerprints).encode()).digest(), np.uint8)
    every = np.asarray(multihost_utils.process_allgather(digest))  # [processes, 32]
    differ = [i for i, d in enumerate(every) if not np.array_equal(d, every[0])]
    if differ:
        raise DataError(
            f"process(es) {', '.join(map(str, differ))} loaded other data than process 0 (the "
            "sha256 of the decoded arrays differs); give every host the same files"
        )


def local_copy(tree):
    """This process's own copy of a replicated tree of arrays, on its first device: what it can
    compute with alone, without the other processes of a multi-host run."""
    return jax.tree.map(lambda x: x.addressable_data(0), tree)


def agree(error: DLJaxError | None, what: str) -> None:
    """Every process of a run learns whether process 0 failed to do `what` (its `error`, None
    for the others), and fails too if it did. On one host: raise `error`, if any."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        failed = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
        if failed and error is None:
            raise ConfigError(f"process 0 could not {what}; its error above says why")
    if error is not None:
        raise error
