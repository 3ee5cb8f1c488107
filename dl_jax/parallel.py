"""The one place that builds device meshes: `jax.jit` and `jax.shard_map` over named axes.

- "data": a single run's batch is split over it; parameters, optimizer state and the
  on-device dataset are replicated, and XLA inserts the gradient all-reduce. One device is a
  mesh of size 1, so there is a single code path.
- "grid": the cells of a sweep (`dl_jax.sweep`) are split over it. Cells are independent, so
  nothing crosses it: each device trains its own cells with `jax.shard_map`. A grid whose cell
  count does not divide the devices is padded (`padded_size`) with cells that never reach an
  output or a checkpoint.

(This is what the spec's "pmap'd across devices" means today: `jax.pmap` is in maintenance mode
and is itself implemented on `shard_map` since JAX 0.8.)
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from dl_jax.errors import ConfigError

DATA_AXIS = "data"
GRID_AXIS = "grid"


def make_mesh(num_devices: int = 0, axis: str = DATA_AXIS, key: str = "train.num_devices") -> Mesh:
    """A mesh over the first `num_devices` local devices (0 means all) with one axis, `axis`;
    `key` is the option that chose the count, for the error if there are fewer devices."""
    available = len(jax.devices())
    if num_devices > available:
        raise ConfigError(f"--{key}={num_devices}, but only {available} device(s) are available")
    num_devices = num_devices or available
    return jax.make_mesh(
        (num_devices,), (axis,), axis_types=(AxisType.Auto,), devices=jax.devices()[:num_devices]
    )


def grid_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (cell) axis split over the "grid" axis."""
    return NamedSharding(mesh, PartitionSpec(GRID_AXIS))


def padded_size(cells: int, mesh: Mesh) -> int:
    """The smallest multiple of the mesh's size that holds `cells`."""
    return -(-cells // mesh.devices.size) * mesh.devices.size


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the devices, everything else whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


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


def barrier(name: str) -> None:
    """Wait here until every process of a multi-host run arrives (nothing on one host)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
