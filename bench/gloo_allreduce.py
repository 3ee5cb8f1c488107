"""The cost of one all-reduce between two processes on this machine: what each data-parallel step
of a multi-host run on CPUs pays once (CPU collectives over Gloo, on loopback).

    python bench/gloo_allreduce.py --out=docs/results/gloo_allreduce_cpu.json

Starts two copies of itself, one CPU device each, joined by `jax.distributed.initialize`; each
times a jitted `lax.pmean` over the 2-device mesh of float32 vectors of several sizes (the
MLP's gradient is 109,386 floats, bit counting's LSTM-64 17,237) and, for comparison, the same
within one process on 2 devices. Process 0 prints and writes the milliseconds per all-reduce.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from dl_jax import cli


@dataclasses.dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (1, 1_000, 17_237, 109_386, 1_000_000)  # floats per all-reduce
    repeats: int = 200  # all-reduces timed per size
    out: str | None = None  # also write the results here as JSON
    port: int = 0  # (set for the two workers) the coordinator's port; 0: start them
    process_id: int = -1  # (set for the two workers) this worker's index; -1: in one process


def milliseconds_per_allreduce(sizes, repeats: int) -> dict[int, float]:
    """The mean time of `repeats` back-to-back all-reduces of each size, in milliseconds."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = jax.make_mesh((2,), ("data",))
    split = PartitionSpec("data")
    mean = jax.jit(
        jax.shard_map(
            lambda x: jax.lax.pmean(x, "data"), mesh=mesh, in_specs=split, out_specs=split
        )  # fmt: skip
    )
    found = {}
    for n in sizes:
        local = np.ones((jax.local_device_count(), n), np.float32)
        x = jax.make_array_from_process_local_data(NamedSharding(mesh, split), local)
        jax.block_until_ready(mean(x))
        start = time.perf_counter()
        for _ in range(repeats):
            x = mean(x)
        jax.block_until_ready(x)
        found[n] = 1e3 * (time.perf_counter() - start) / repeats
    return found


def main(cfg: Config) -> dict | None:
    if cfg.port:  # a worker
        import jax

        jax.config.update("jax_num_cpu_devices", 1)
        jax.distributed.initialize(f"127.0.0.1:{cfg.port}", 2, cfg.process_id)
        found = milliseconds_per_allreduce(cfg.sizes, cfg.repeats)
        if cfg.process_id == 0:
            print(json.dumps(found))
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, __file__, f"--port={port}", f"--sizes={cfg.sizes}",
            f"--repeats={cfg.repeats}"]  # fmt: skip
    workers = [subprocess.Popen([*args, f"--process_id={i}"], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL) for i in range(2)]  # fmt: skip
    outputs = [w.communicate()[0] for w in workers]
    two = {int(k): v for k, v in json.loads(outputs[0].splitlines()[-1]).items()}
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    one = milliseconds_per_allreduce(cfg.sizes, cfg.repeats)
    print(f"{'floats':>10s}{'2 processes (Gloo)':>20s}{'1 process, 2 devices':>22s}")
    for n in cfg.sizes:
        print(f"{n:10d}{two[n]:17.3f} ms{one[n]:19.3f} ms")
    results = {"two_processes_ms": two, "one_process_ms": one}
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
