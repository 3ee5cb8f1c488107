"""A data-parallel step communicates once, after its loops: no collective inside a time loop.

Each program is compiled for the 8 simulated devices as training runs it (a chunk of steps, a
`lax.scan`), and its HLO is read with `tests/hlo.py`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from dl_jax import models, optim, parallel, sequences, sweep, train
from dl_jax.config import GridConfig, ModelConfig, SequenceTaskConfig
from hlo import collectives, collectives_in_inner_loops


def compiled_chunk(model_cfg: ModelConfig, problem, batch_size: int = 16) -> str:
    """The HLO of `train.train_chunk` (2 steps) for `model_cfg` on `problem`, on 8 devices."""
    mesh = parallel.make_mesh(8)
    model = models.build(model_cfg, outputs=problem.outputs, classes=problem.classes)
    example = {k: v[:1] for k, v in problem.splits.train.items()}
    state = train.create_train_state(
        model, optim.make_optimizer("adam", 1e-3), problem.task, 0, example
    )
    data = jax.device_put(problem.splits.train, parallel.replicated(mesh))
    idx_SB = jnp.arange(2 * batch_size).reshape(2, batch_size)
    lowered = train.train_chunk.lower(state, data, idx_SB, parallel.batch_sharding(mesh))
    return lowered.compile().as_text()


def problem(name: str, **kwargs):
    cfg = SequenceTaskConfig(name=name, train_examples=64, test_examples=8, **kwargs)
    return sequences.make(cfg)


def test_the_helper_finds_a_collective_inside_a_loop_and_none_outside():
    mesh = parallel.make_mesh(8)

    def per_device(x_TB):  # a time loop that averages over the devices at every step
        def step(h, x_B):
            h = jnp.tanh(h + x_B)
            return jax.lax.pmean(h, parallel.DATA_AXIS), None

        return jax.lax.scan(step, jnp.zeros(x_TB.shape[1:]), x_TB)[0]

    spec = PartitionSpec(None, parallel.DATA_AXIS)
    looped = jax.shard_map(per_device, mesh=mesh, in_specs=spec, out_specs=PartitionSpec())

    def outer(x_STB):  # the chunk's loop over steps, around the step's loop over time
        return jax.lax.scan(lambda c, x: (c + looped(x).sum(), None), 0.0, x_STB)[0]

    hlo = jax.jit(outer).lower(jnp.ones((2, 5, 8))).compile().as_text()
    assert collectives_in_inner_loops(hlo), hlo
    once = jax.jit(lambda x: jax.lax.scan(lambda c, x: (c + x.sum(), None), 0.0, x)[0])
    x = jax.device_put(np.ones((2, 8), np.float32), NamedSharding(mesh, spec))
    hlo = once.lower(x).compile().as_text()
    assert collectives(hlo)  # the sum over the devices, in the outer loop only
    assert not collectives_in_inner_loops(hlo)


def test_no_collective_inside_the_recurrent_classifiers_time_loop():
    for cell in ("lstm", "gru", "simple"):
        hlo = compiled_chunk(ModelConfig(name="rnn", cell=cell, hidden=8), problem("count"))
        assert collectives(hlo), "the step's gradient mean is missing"
        assert collectives_in_inner_loops(hlo) == [], cell


def test_no_collective_inside_the_encoder_decoder_loops():
    hlo = compiled_chunk(
        ModelConfig(name="rnn", cell="lstm", hidden=8), problem("addition", digits=2)
    )
    assert collectives_in_inner_loops(hlo) == []


def test_no_collective_inside_the_grids_time_loops(small):
    """On a 2-D mesh (2 cells x 4 devices each) every cell's batch is split; the gradient mean
    over "data" is the only collective, once a step, outside the Elman network's time loop."""
    grid = GridConfig(activations=("tanh", "relu"), learning_rates=(0.1,))
    recipe = sweep.get_recipe("modern")
    model = sweep.model_config(ModelConfig(name="rnn", cell="simple", hidden=8), recipe)
    mesh = parallel.make_grid_mesh(2, 4)
    cells = jax.device_put(
        sweep.init_grid(grid, "modern", model)["sgd"], parallel.grid_sharding(mesh)
    )
    program = sweep.Program(model, grid.activations, "modern", "sgd", 1, 4)
    data = jax.device_put(small.train, parallel.replicated(mesh))
    orders = sweep.epoch_orders(grid.seeds, 0, len(small.train["label"]), recipe)[:, :2]
    hlo = sweep.train_chunk.lower(cells, data, orders, program, mesh).compile().as_text()
    assert collectives(hlo)
    assert collectives_in_inner_loops(hlo) == []
