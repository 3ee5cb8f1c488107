import dataclasses
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax import losses, models, optim, parallel, tasks, train
from dl_jax.config import DTYPES, ModelConfig, TrainConfig
from dl_jax.errors import ConfigError, DivergedError
from dl_jax.models import CNN, MLP

SMALL_CNN = CNN((4, 8), (16, 10), dropout_rate=0.5, conv_impl="im2col")
EXAMPLE = {"image": np.zeros((1, 28, 28, 1), np.uint8), "label": np.zeros(1, np.int32)}


def make_state(
    loss_fn=losses.softmax_cross_entropy, name="adam", learning_rate=1e-3, seed=0, model=None
):
    return train.create_train_state(
        model or MLP((32, 10), "relu"),
        optim.make_optimizer(name, learning_rate),
        tasks.ImageClassification(loss_fn),
        seed,
        EXAMPLE,
    )


def batch_of(split, n=64):
    return {k: jnp.asarray(v[:n]) for k, v in split.items()}


def mean_loss(state, batch):
    logits = state.apply_fn({"params": state.params}, tasks.scale_images(batch["image"]))
    return float(state.task.loss(logits, batch).mean())


def test_one_step_lowers_the_loss(small):
    state = make_state(name="sgd", learning_rate=0.1)
    batch = batch_of(small.train)
    before = mean_loss(state, batch)
    state, metrics = train.train_step(state, batch)
    assert float(metrics["train/loss"]) == pytest.approx(before, rel=1e-5)  # loss before the step
    assert mean_loss(state, batch) < before - 0.1
    assert int(state.step) == 1


def test_epoch_indices_are_a_pure_function_of_seed_and_epoch():
    key = train.root_keys(0)[1]
    idx = train.epoch_indices(key, 3, 100, 32)
    assert idx.shape == (3, 32)  # 100 // 32 steps; 4 examples dropped
    assert len(np.unique(idx)) == 96
    np.testing.assert_array_equal(idx, train.epoch_indices(key, 3, 100, 32))
    assert not np.array_equal(idx, train.epoch_indices(key, 4, 100, 32))
    assert not np.array_equal(idx, train.epoch_indices(train.root_keys(1)[1], 3, 100, 32))


def test_root_keys_are_three_distinct_streams_and_the_first_two_are_unchanged():
    init_key, shuffle_key, step_key = (jax.random.key_data(k) for k in train.root_keys(7))
    expected = jax.random.key_data(jax.random.split(jax.random.key(7)))
    np.testing.assert_array_equal(init_key, expected[0])  # what every earlier run was seeded with
    np.testing.assert_array_equal(shuffle_key, expected[1])
    assert not np.array_equal(step_key, init_key) and not np.array_equal(step_key, shuffle_key)


def test_dropout_key_of_a_step_is_folded_from_the_run_key_and_the_step():
    state = make_state(model=SMALL_CNN, seed=3)
    first = jax.random.key_data(train.step_rngs(state)["dropout"])
    later = jax.random.key_data(train.step_rngs(state.replace(step=5))["dropout"])
    run_key = train.root_keys(3)[2]
    np.testing.assert_array_equal(first, jax.random.key_data(jax.random.fold_in(run_key, 0)))
    np.testing.assert_array_equal(later, jax.random.key_data(jax.random.fold_in(run_key, 5)))


def test_random_shift_moves_each_image_by_at_most_max_shift():
    image = jnp.zeros((64, 9, 9, 1), jnp.uint8).at[:, 4, 4, 0].set(255)  # one lit pixel, centred
    shifted = tasks.random_shift(jax.random.key(0), image, 2)
    assert shifted.shape == image.shape and shifted.dtype == jnp.uint8
    flat = np.asarray(shifted[..., 0]).reshape(64, -1)
    assert (flat.sum(1) == 255).all()  # every pixel moved, none lost, within the border
    rows, cols = np.divmod(flat.argmax(1), 9)
    assert set(rows) == set(cols) == {2, 3, 4, 5, 6}  # every offset in [-2, 2] occurs
    np.testing.assert_array_equal(tasks.random_shift(jax.random.key(0), image, 0), image)


def test_a_dropout_step_depends_on_the_step_number_only(small):
    batch = batch_of(small.train)
    a, _ = train.train_step(make_state(model=SMALL_CNN), batch)
    b, _ = train.train_step(make_state(model=SMALL_CNN), batch)  # the same step again: the same
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    c, _ = train.train_step(make_state(model=SMALL_CNN).replace(step=1), batch)  # other masks
    assert not np.allclose(a.params["Dense_0"]["kernel"], c.params["Dense_0"]["kernel"])


def test_chunk_sizes():
    assert train.chunk_sizes(468, 100) == [100, 100, 100, 100, 68]
    assert train.chunk_sizes(200, 100) == [100, 100]
    assert train.chunk_sizes(7, 100) == [7]


def test_scan_equals_an_unrolled_loop(small):
    mesh = parallel.make_mesh(1)
    data = jax.device_put(small.train)
    idx = train.epoch_indices(train.root_keys(0)[1], 0, 1024, 64)[:5]
    scanned, metrics = train.train_chunk(make_state(), data, idx, parallel.batch_sharding(mesh))
    looped, looped_losses = make_state(), []
    for idx_B in idx:
        looped, m = train.train_step(looped, jax.tree.map(lambda x, i=idx_B: x[i], data))
        looped_losses.append(m["train/loss"])
    np.testing.assert_allclose(metrics["train/loss"], looped_losses, rtol=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        scanned.params,
        looped.params,
    )


def test_evaluate_pads_and_masks_the_last_batch(small):
    state = make_state()
    mesh = parallel.make_mesh(1)
    test = jax.device_put(small.test)  # 200 examples in batches of 64: the last one is padded
    metrics = train.evaluate(state, test, 64, parallel.batch_sharding(mesh))
    logits = state.apply_fn({"params": state.params}, tasks.scale_images(test["image"]))
    expected_loss = losses.softmax_cross_entropy(logits, test["label"]).mean()
    expected_accuracy = (logits.argmax(-1) == test["label"]).mean()
    assert float(metrics["test/loss"]) == pytest.approx(float(expected_loss), rel=1e-5)
    assert float(metrics["test/accuracy"]) == pytest.approx(float(expected_accuracy))


def fit_once(splits, num_devices, model=None, **cfg):
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 64, "eval_batch_size": 40, **cfg})
    state = make_state(model=model)
    return list(train.fit(state, splits, cfg, parallel.make_mesh(num_devices)))


@pytest.mark.parametrize(
    ("model", "shift"),
    [(None, 0), (dataclasses.replace(SMALL_CNN, dropout_rate=0.0), 2)],
    ids=["mlp", "cnn with shifts"],
)
def test_eight_devices_give_the_one_device_result(small, model, shift):
    """Where the model draws nothing (no dropout; the shifts are drawn for the whole batch)."""
    assert len(jax.devices()) == 8  # conftest's simulated devices
    ((one_state, one),) = fit_once(small, 1, model, chunk_steps=7, augment_shift=shift)
    ((eight_state, eight),) = fit_once(small, 8, model, chunk_steps=7, augment_shift=shift)
    assert eight_state.params["Dense_0"]["kernel"].sharding.mesh.devices.size == 8
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5),  # Adam, 16 steps
        one_state.params,
        eight_state.params,
    )
    for key in ("train/loss", "test/loss", "test/accuracy"):
        assert eight[key] == pytest.approx(one[key], rel=1e-5)


def test_batch_that_does_not_divide_the_devices_fails_at_start(small):
    with pytest.raises(ConfigError, match="--train.batch_size=60 does not divide over 8 devices"):
        train.fit(make_state(), small, TrainConfig(batch_size=60), parallel.make_mesh(8))
    with pytest.raises(ConfigError, match="--train.eval_batch_size=100 does not divide over 8"):
        train.fit(make_state(), small, TrainConfig(eval_batch_size=100), parallel.make_mesh(8))
    with pytest.raises(ConfigError, match="--train.batch_size=2048 is larger than the 1024"):
        train.fit(make_state(), small, TrainConfig(batch_size=2048), parallel.make_mesh(1))


def test_on_eight_devices_each_part_of_the_batch_draws_its_own_dropout_masks(small):
    """The step's gradient is the mean of the 8 parts' gradients, part d's dropout masks drawn
    with the step's keys folded with d."""
    mesh = parallel.make_mesh(8)
    state = make_state(name="sgd", learning_rate=1.0, model=SMALL_CNN)
    batch = batch_of(small.train, 64)
    stepped, _ = train.train_step(  # a copy of the state: the step donates it
        jax.device_put(make_state(name="sgd", learning_rate=1.0, model=SMALL_CNN),
                       parallel.replicated(mesh)),
        jax.device_put(batch, parallel.batch_sharding(mesh)),
        mesh,
    )  # fmt: skip

    def part_gradient(d):
        part = jax.tree.map(lambda x: x[8 * d : 8 * (d + 1)], batch)
        rngs = {k: jax.random.fold_in(key, d) for k, key in train.step_rngs(state).items()}

        def loss(params):
            logits = state.apply_fn({"params": params}, *state.task.inputs(part), train=True,
                                    rngs=rngs)  # fmt: skip
            return state.task.loss(logits, part).mean()

        return jax.grad(loss)(state.params)

    mean = jax.tree.map(lambda *g: sum(g) / 8, *[part_gradient(d) for d in range(8)])
    jax.tree.map(
        lambda p, g, new: np.testing.assert_allclose(new, p - g, rtol=1e-5, atol=1e-6),
        state.params,
        mean,
        stepped.params,
    )


def test_non_finite_loss_stops_the_run_naming_the_steps(small):
    def nan_after_step_one(logits_BK, labels_B):
        # A finite loss whose gradient is huge: the first SGD step blows the weights up.
        return losses.softmax_cross_entropy(logits_BK * 1e30, labels_B)

    state = make_state(nan_after_step_one, name="sgd", learning_rate=1e30)
    cfg = TrainConfig(epochs=2, batch_size=64, chunk_steps=5)
    epochs = train.fit(state, small, cfg, parallel.make_mesh(1))
    with pytest.raises(
        DivergedError,
        match=r"non-finite training loss in epoch 1, steps 1-5 \(first at step [12]\); "
        r"no checkpoint was saved; try a lower --optim.learning_rate",
    ):
        next(epochs)


def test_two_epochs_on_the_sample_learn(sample):
    cfg = TrainConfig(epochs=2, batch_size=128)
    records = [r for _, r in train.fit(make_state(), sample, cfg, parallel.make_mesh(1))]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[1]["train/loss"] < records[0]["train/loss"]
    assert records[1]["test/accuracy"] > 0.75  # chance is 0.1; a 32-unit net, 78 steps


@pytest.mark.slow
def test_full_mnist_one_epoch(mnist_dir):
    from dl_jax import data

    splits = data.load(dir=mnist_dir)
    state = train.create_train_state(
        MLP((128, 64, 10), "relu"),
        optim.make_optimizer("adam", 1e-3),
        tasks.ImageClassification(),
        0,
        EXAMPLE,
    )
    ((_, record),) = train.fit(state, splits, TrainConfig(epochs=1), parallel.make_mesh(1))
    assert record["test/accuracy"] > 0.945  # 95.2% measured


@pytest.mark.slow
def test_full_mnist_cnn_one_epoch(mnist_dir):
    from dl_jax import data, models
    from dl_jax.config import ModelConfig

    splits = data.load(dir=mnist_dir)
    state = train.create_train_state(
        models.build(ModelConfig(name="cnn")),
        optim.make_optimizer("momentum", 0.1),
        tasks.ImageClassification(),
        0,
        EXAMPLE,
    )
    ((_, record),) = train.fit(state, splits, TrainConfig(epochs=1), parallel.make_mesh(1))
    assert record["test/accuracy"] > 0.98  # 98.35% measured


def test_bfloat16_compute_trains_the_mlp_within_2_points_of_float32(sample):
    # The parameters and the optimizer state stay float32; the matmuls run in bfloat16.
    cfg = TrainConfig(epochs=3, batch_size=64, eval_batch_size=100)
    accuracy = {}
    for dtype in DTYPES:
        model = models.build(ModelConfig(features=(128, 64, 10), dtype=dtype))
        state = make_state(model=model)
        *_, (state, record) = train.fit(state, sample, cfg, parallel.make_mesh(1))
        accuracy[dtype] = record["test/accuracy"]
        assert {x.dtype for x in jax.tree.leaves((state.params, state.opt_state))} <= {
            jnp.dtype("float32"), jnp.dtype("int32")}  # fmt: skip
        jaxpr = str(jax.make_jaxpr(model.apply)({"params": state.params}, EXAMPLE["image"] / 255))
        assert ("bf16[" in jaxpr) == (dtype == "bfloat16")
    assert accuracy["float32"] > 0.85
    assert abs(accuracy["bfloat16"] - accuracy["float32"]) < 0.02, accuracy


def test_a_profiled_fit_traces_one_chunk_of_training_steps(small, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=64, chunk_steps=4, eval_batch_size=100)
    list(train.fit(make_state(), small, cfg, parallel.make_mesh(1), profile_dir=tmp_path))
    (trace,) = tmp_path.glob("plugins/profile/*/*.trace.json.gz")
    assert b"train_chunk" in gzip.decompress(trace.read_bytes())
    assert list(tmp_path.glob("plugins/profile/*/perfetto_trace.json.gz"))
