import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import activations, sweep
from dl_jax.config import GridConfig, ModelConfig
from dl_jax.errors import ConfigError
from dl_jax.recipes import get_recipe

MODEL = ModelConfig(features=(32, 10))
CNN = ModelConfig(name="cnn", conv_features=(4, 8), dense_features=(16, 10), dropout_rate=0.5)
ELMAN = ModelConfig(name="rnn", cell="simple", hidden=8)


def run(small, recipe="modern", epochs=2, model=MODEL, **grid):
    """The records of `grid` on `small`. Small grids would split each cell's batch over the
    idle devices (a 2-D mesh, equal to float tolerance only): give them a device each."""
    grid = GridConfig(**{"chunk_examples": 256, "data_devices": 1, **grid})
    return list(sweep.train_grid(grid, recipe, model, small, epochs))


def column(records, key, i):
    return np.array([r[key][i] for r in records])


def test_cells_are_in_grid_order():
    grid = GridConfig(
        activations=("tanh", "relu"),
        learning_rates=(0.1, 1.0),
        seeds=(0, 1),
        optimizers=("sgd", "adam"),
    )
    cells = sweep.grid_cells(grid)
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0] == sweep.Cell("sgd", "tanh", 0.1, 0)
    assert cells[1] == sweep.Cell("sgd", "tanh", 0.1, 1)
    assert cells[-1] == sweep.Cell("adam", "relu", 1.0, 1)


@pytest.mark.parametrize("recipe", ["modern", "seed_exact"])
def test_a_cell_trains_the_same_inside_the_grid_as_alone(small, recipe):
    grid = dict(activations=("sigmoid", "tanh", "relu"), learning_rates=(0.03, 0.3), seeds=(0, 1))
    together = run(small, recipe, **grid, workers=2)
    cells = sweep.grid_cells(GridConfig(**grid))
    i = cells.index(sweep.Cell("sgd", "tanh", 0.3, 1))
    alone = run(small, recipe, activations=("tanh",), learning_rates=(0.3,), seeds=(1,))
    for key in ("train_loss", "test_accuracy"):
        np.testing.assert_array_equal(column(together, key, i), column(alone, key, 0))
    assert together[-1]["test_accuracy"][i] > 0.3  # and it learned (chance is 0.1)


@pytest.mark.slow  # the MLP's and the Elman RNN's cells check the same in the default set
def test_a_cnn_cell_with_dropout_trains_the_same_inside_the_grid_as_alone(small):
    grid = dict(activations=("tanh", "relu"), learning_rates=(0.03, 0.3), seeds=(0, 1))
    together = run(small, model=CNN, **grid, workers=2)
    cells = sweep.grid_cells(GridConfig(**grid))
    i = cells.index(sweep.Cell("sgd", "relu", 0.3, 1))
    alone = run(small, model=CNN, activations=("relu",), learning_rates=(0.3,), seeds=(1,))
    for key in ("train_loss", "test_accuracy"):
        np.testing.assert_array_equal(column(together, key, i), column(alone, key, 0))
    assert together[-1]["test_accuracy"][i] > 0.3


def test_an_elman_cell_trains_the_same_inside_the_grid_as_alone_with_its_own_activation(small):
    grid = dict(activations=("tanh", "relu"), learning_rates=(0.03,), optimizers=("adam",))
    together = run(small, model=ELMAN, epochs=4, **grid)
    alone = run(small, model=ELMAN, epochs=4, activations=("relu",), learning_rates=(0.03,),
                optimizers=("adam",))  # fmt: skip
    for key in ("train_loss", "test_accuracy"):
        np.testing.assert_array_equal(column(together, key, 1), column(alone, key, 0))
    assert together[-1]["train_loss"][0] != together[-1]["train_loss"][1]  # tanh is not relu
    assert min(together[-1]["test_accuracy"]) > 0.2  # chance is 0.1; 8 units, 32 steps


@pytest.mark.parametrize("devices", [8, 4])
def test_the_grid_sharded_over_devices_gives_exactly_the_results_of_one_device(small, devices):
    # 6 cells: padded to 8 on 8 devices (1 each) and on 4 (2 each); the padding never shows.
    grid = dict(activations=("sigmoid", "tanh", "relu"), learning_rates=(0.1, 3.0))
    sharded = run(small, **grid, num_devices=devices)
    alone = run(small, **grid, num_devices=1)
    for key in ("train_loss", "test_accuracy", "diverged"):
        np.testing.assert_array_equal(
            column(sharded, key, slice(None)), column(alone, key, slice(None))
        )
    assert sharded[-1]["test_accuracy"].shape == (6,)


def test_the_default_45_cell_grid_runs_on_4_and_on_8_devices(small):
    on_4, on_8 = (run(small, epochs=1, num_devices=d) for d in (4, 8))
    assert on_4[-1]["test_accuracy"].shape == (45,)
    for key in ("train_loss", "test_accuracy", "diverged"):
        np.testing.assert_array_equal(on_4[-1][key], on_8[-1][key])
    assert on_8[-1]["test_accuracy"].max() > 0.5


def test_a_grid_on_a_2d_mesh_matches_one_device_to_float_tolerance(small):
    # 2 cells on 8 devices: a 2 x 4 (grid x data) mesh, each device a quarter of each batch.
    grid = dict(activations=("tanh", "relu"), learning_rates=(0.1,))
    assert sweep._layout(GridConfig(**grid), 2, 128).mesh.shape == {"grid": 2, "data": 4}
    alone = run(small, **grid, num_devices=1)
    for layout in (
        {"data_devices": 0},
        {"num_devices": 4, "data_devices": 2},
        {"num_devices": 2, "data_devices": 2, "cells_per_pass": 2},
    ):  # and vmapped
        split = run(small, **grid, **layout)
        for key in ("train_loss", "test_accuracy"):
            np.testing.assert_allclose(
                column(split, key, slice(None)), column(alone, key, slice(None)), rtol=1e-5
            )
    assert alone[-1]["test_accuracy"].min() > 0.5


@pytest.mark.parametrize(
    "devices, cells, batch, data",
    [(8, 45, 128, 1), (8, 8, 128, 1), (8, 6, 128, 1), (8, 3, 128, 2), (8, 2, 128, 4),
     (8, 1, 128, 8), (8, 1, 1, 1), (8, 1, 2, 2), (6, 2, 128, 1), (6, 2, 96, 3), (4, 1, 100, 4)],
)  # fmt: skip
def test_the_data_axis_takes_the_devices_the_cells_leave(devices, cells, batch, data):
    assert sweep._auto_data_devices(devices, cells, batch) == data


def test_a_bad_data_axis_is_refused_in_one_line():
    modern, seed = get_recipe("modern"), get_recipe("seed")
    with pytest.raises(ConfigError, match="data_devices=3 does not divide the devices, 8; use"):
        sweep.check_grid(GridConfig(data_devices=3), modern, MODEL)
    with pytest.raises(ConfigError, match="data_devices=2 does not divide the batch size, 1"):
        sweep.check_grid(GridConfig(data_devices=2), seed, MODEL)
    with pytest.raises(ConfigError, match="data_devices=2, but the grid runs on one device"):
        sweep.check_grid(GridConfig(data_devices=2, num_devices=1), modern, MODEL)
    with pytest.raises(ConfigError, match="--grid.num_devices=9, but only 8 device"):
        sweep.check_grid(GridConfig(num_devices=9), modern, MODEL)


def test_a_diverging_cell_is_frozen_and_flagged_and_disturbs_nothing(small):
    with_it = run(small, activations=("relu",), learning_rates=(0.1, 1e30), seeds=(0, 1))
    without = run(small, activations=("relu",), learning_rates=(0.1,), seeds=(0, 1))
    for r in with_it:
        np.testing.assert_array_equal(r["diverged"], [False, False, True, True])
        assert np.isnan(r["train_loss"][2:]).all()
    for key in ("train_loss", "test_accuracy"):
        for i in (0, 1):
            np.testing.assert_array_equal(column(with_it, key, i), column(without, key, i))


def test_the_vmap_layout_agrees_with_one_cell_at_a_time(small):
    grid = dict(activations=("tanh", "relu"), learning_rates=(0.05, 0.2))
    looped = run(small, **grid, cells_per_pass=1, workers=1)
    vmapped = run(small, **grid, cells_per_pass=4, workers=1)
    for key in ("train_loss", "test_accuracy"):
        np.testing.assert_allclose(looped[-1][key], vmapped[-1][key], rtol=1e-3, atol=5e-3)


def test_records(small):
    records = run(small, activations=("tanh",), learning_rates=(0.1, 0.5), epochs=3)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(r["seconds"] > 0 and r["test_accuracy"].shape == (2,) for r in records)
    assert records[-1]["train_loss"][0] < records[0]["train_loss"][0]


def test_epoch_orders():
    modern, seed = get_recipe("modern"), get_recipe("seed")
    orders = sweep.epoch_orders((0, 7), 3, 1000, modern)
    assert orders.shape == (2, 7, 128)
    assert not np.array_equal(orders[0], orders[1])  # one order per seed
    np.testing.assert_array_equal(orders, sweep.epoch_orders((0, 7), 3, 1000, modern))
    stored = sweep.epoch_orders((0, 7), 3, 1000, seed)
    np.testing.assert_array_equal(stored, np.arange(1000).reshape(1, 1000, 1))


def test_bad_grids():
    modern, seed = get_recipe("modern"), get_recipe("seed")
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        sweep.check_grid(GridConfig(activations=("tanh", "swish")), modern, MODEL)
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'"):
        sweep.check_grid(GridConfig(optimizers=("lbfgs",)), modern, MODEL)
    with pytest.raises(ConfigError, match="recipe 'seed' trains with sgd only, not 'adam'"):
        sweep.check_grid(GridConfig(optimizers=("adam",)), seed, MODEL)
    with pytest.raises(ConfigError, match="--recipe=seed is the slides' procedure for the MLP"):
        sweep.check_grid(GridConfig(), seed, CNN)
    with pytest.raises(ConfigError, match="--model.activation=tanh: the grid's cells take"):
        sweep.check_grid(GridConfig(), modern, ModelConfig(activation="tanh"))
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        sweep.check_grid(GridConfig(), modern, ModelConfig(name="vgg"))
    with pytest.raises(ConfigError, match="--grid.seeds=.*expected distinct values"):
        GridConfig(seeds=(0, 0))
    with pytest.raises(ConfigError, match="--grid.learning_rates=.*expected numbers > 0"):
        GridConfig(learning_rates=(0.1, -1.0))


def test_select_picks_the_activation_at_run_time():
    names = ("sigmoid", "tanh", "relu")
    x = jnp.array([-1.0, 0.5, 2.0])
    for i, name in enumerate(names):
        pick = jax.jit(lambda x, i: activations.select(i, names)(x))
        np.testing.assert_allclose(pick(x, i), activations.get_activation(name)(x), rtol=1e-6)
        grad = jax.grad(lambda x, i=i: activations.select(i, names)(x).sum())(x)
        expected = jax.grad(lambda x, name=name: activations.get_activation(name)(x).sum())(x)
        np.testing.assert_allclose(grad, expected, rtol=1e-6)
    batched = jax.vmap(lambda i: activations.select(i, names)(x))(jnp.arange(3))
    np.testing.assert_allclose(batched[2], [0, 0.5, 2.0])
