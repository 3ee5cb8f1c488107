"""Data parallelism as `jax.jit` over a one-axis device mesh with `NamedSharding`.

The batch is split over the "data" axis; parameters, optimizer state and the on-device dataset
are replicated. XLA inserts the gradient all-reduce. One device is a mesh of size 1, so there is
a single code path. (This is what the spec's "pmap'd across devices" means today: `jax.pmap` is in
maintenance mode and is itself implemented on `shard_map` since JAX 0.8.)
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from dl_jax.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(num_devices: int = 0) -> Mesh:
    """A mesh over the first `num_devices` local devices (0 means all) with one "data" axis."""
    available = len(jax.devices())
    if num_devices > available:
        raise ConfigError(
            f"--train.num_devices={num_devices}, but only {available} device(s) are available"
        )
    num_devices = num_devices or available
    return jax.make_mesh(
        (num_devices,),
        (DATA_AXIS,),
        axis_types=(AxisType.Auto,),
        devices=jax.devices()[:num_devices],
    )


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
