import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_jax.errors import ConfigError
from dl_jax.models.rnn import CELLS, RNNClassifier, SlideGRUCell, make_cell


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def one_step(cell, carry):
    """One step of `cell` from `carry` on a random input [2, 4]: its new carry and output, and
    its parameters, carry and input as numpy arrays."""
    x = jax.random.normal(jax.random.key(1), (2, 4))
    params = cell.init(jax.random.key(0), carry, x)["params"]
    new_carry, out = cell.apply({"params": params}, carry, x)
    numpy = functools.partial(jax.tree.map, np.asarray)
    return new_carry, out, numpy(params), numpy(carry), np.asarray(x)


def test_slide_gru_step_equals_the_slides_equations_in_numpy():
    h = jax.random.normal(jax.random.key(2), (2, 3))
    new_h, out, p, hn, xn = one_step(SlideGRUCell(3), h)
    hx = np.concatenate([hn, xn], -1)
    z = sigmoid(hx @ p["z"]["kernel"] + p["z"]["bias"])
    r = sigmoid(hx @ p["r"]["kernel"] + p["r"]["bias"])
    cand = np.tanh(
        np.concatenate([r * hn, xn], -1) @ p["candidate"]["kernel"] + p["candidate"]["bias"]
    )
    np.testing.assert_allclose(new_h, (1 - z) * hn + z * cand, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new_h, out)


def test_lstm_step_equals_the_slides_equations_in_numpy():
    carry = tuple(jax.random.normal(jax.random.key(k), (2, 3)) for k in (5, 6))  # (c, h)
    (new_c, new_h), _, p, (cn, hn), xn = one_step(make_cell("lstm", 3), carry)

    def gate(name):  # flax: an input kernel, and a recurrent kernel with the bias
        return xn @ p[f"i{name}"]["kernel"] + hn @ p[f"h{name}"]["kernel"] + p[f"h{name}"]["bias"]

    f, i, o, c_tilde = (
        sigmoid(gate("f")),
        sigmoid(gate("i")),
        sigmoid(gate("o")),
        np.tanh(gate("g")),
    )
    c_t = f * cn + i * c_tilde
    np.testing.assert_allclose(new_c, c_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_h, o * np.tanh(c_t), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_the_scanned_rnn_equals_a_python_loop_of_its_cell(cell):
    model = RNNClassifier(cell, hidden=5, num_classes=3, head="every")
    x = jax.random.normal(jax.random.key(0), (2, 6, 4))
    variables = model.init(jax.random.key(1), x)
    logits_BTK = model.apply(variables, x)

    cell_module = make_cell(cell, 5)
    cell_params = {"params": variables["params"]["cell"]}
    carry = cell_module.initialize_carry(jax.random.key(0), x[:, 0].shape)
    outputs = []
    for t in range(x.shape[1]):
        carry, h = cell_module.apply(cell_params, carry, x[:, t])
        outputs.append(h)
    dense = variables["params"]["output"]
    expected = jnp.stack(outputs, 1) @ dense["kernel"] + dense["bias"]
    np.testing.assert_allclose(logits_BTK, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru", "slide_gru"])
def test_padding_does_not_change_a_sequence_output(cell):
    model = RNNClassifier(cell, hidden=8, num_classes=3)
    x = jax.random.normal(jax.random.key(0), (1, 5, 2))
    padded = jnp.concatenate([x, jax.random.normal(jax.random.key(9), (1, 4, 2))], axis=1)
    variables = model.init(jax.random.key(1), x)
    alone = model.apply(variables, x)
    with_padding = model.apply(variables, padded, jnp.array([5]))
    np.testing.assert_allclose(with_padding, alone, rtol=1e-6, atol=1e-6)
    every = RNNClassifier(cell, hidden=8, num_classes=3, head="every")
    np.testing.assert_allclose(
        every.apply(variables, padded, jnp.array([5]))[:, :5], every.apply(variables, x), atol=1e-6
    )


def test_shapes_of_the_heads_and_images_read_row_by_row():
    images = jnp.zeros((2, 28, 28, 1))
    last = RNNClassifier("gru", hidden=16)
    variables = last.init(jax.random.key(0), images)
    assert last.apply(variables, images).shape == (2, 10)  # many-to-one
    every = RNNClassifier("gru", hidden=16, head="every")
    assert every.apply(variables, images).shape == (2, 28, 10)  # many-to-many: a row each
    assert variables["params"]["cell"]["ir"]["kernel"].shape == (28, 16)  # 28 features


def test_parameter_counts():
    # The slides' LSTM: 4 gates, each W on [h, x] and b: 4 (h (h + x) + h). flax splits each W
    # into an input kernel [x, h] with the bias and a recurrent kernel [h, h]: the same count.
    h, x = 128, 28
    lstm = make_cell("lstm", h)
    params = lstm.init(
        jax.random.key(0), lstm.initialize_carry(jax.random.key(0), (1, x)), jnp.zeros((1, x))
    )
    assert sum(p.size for p in jax.tree.leaves(params)) == 4 * (h * (h + x) + h) == 80_384
    gru = SlideGRUCell(h)
    params = gru.init(jax.random.key(0), jnp.zeros((1, h)), jnp.zeros((1, x)))
    assert sum(p.size for p in jax.tree.leaves(params)) == 3 * (h * (h + x) + h) == 60_288


def test_unknown_cell_and_head_are_one_line_errors():
    with pytest.raises(
        ConfigError,
        match="unknown recurrent cell 'elman'; valid: gru, lstm, optimized_lstm, simple, slide_gru",
    ):
        make_cell("elman", 4)
    with pytest.raises(ConfigError, match="unknown recurrent head 'first'"):
        RNNClassifier(head="first").init(jax.random.key(0), jnp.zeros((1, 3, 2)))


def test_build_makes_the_rnn_by_name_and_refuses_unknown_cells():
    from dl_jax import models
    from dl_jax.config import ModelConfig

    model = models.build(ModelConfig(name="rnn", cell="simple", hidden=8))
    assert model == RNNClassifier("simple", 8, 10, activation="tanh")
    relu = models.build(ModelConfig(name="rnn", cell="simple", activation="relu"))
    assert relu.activation == "relu"
    with pytest.raises(ConfigError, match="unknown recurrent cell 'elman'"):
        models.build(ModelConfig(name="rnn", cell="elman"))


def test_flax_gru_step_equals_its_documented_equations():
    # flax: r = s(W_ir x + b_ir + W_hr h), z = s(W_iz x + b_iz + W_hz h),
    # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
    h = jax.random.normal(jax.random.key(2), (2, 3))
    new_h, _, p, hn, xn = one_step(make_cell("gru", 3), h)

    def dense(name, v):
        return v @ p[name]["kernel"] + p[name].get("bias", 0)

    r = sigmoid(dense("ir", xn) + dense("hr", hn))
    z = sigmoid(dense("iz", xn) + dense("hz", hn))
    n = np.tanh(dense("in", xn) + r * dense("hn", hn))
    np.testing.assert_allclose(new_h, (1 - z) * n + z * hn, rtol=1e-5, atol=1e-6)


def test_bptt_gradient_is_the_slides_sum_over_time_of_jacobian_products():
    # A tiny Elman RNN, h_t = tanh(W_hh h_{t-1} + W_xh x_t + b), loss L = sum(h_T). BPTT:
    # dL/dW_hh = sum_k (dL/dh_T J_T J_{T-1} ... J_{k+1}) * (1 - h_k^2) outer h_{k-1},
    # with J_j = dh_j/dh_{j-1} = diag(1 - h_j^2) W_hh, every Jacobian an explicit matrix.
    hidden, steps = 3, 5
    model = RNNClassifier("simple", hidden=hidden, num_classes=1, head="every")
    x = jax.random.normal(jax.random.key(0), (1, steps, 2))
    params = model.init(jax.random.key(1), x)["params"]

    rnn = nn.RNN(make_cell("simple", hidden))  # the scan RNNClassifier runs

    def loss(params):
        return rnn.apply({"params": {"cell": params["cell"]}}, x)[:, -1].sum()

    grad_kernel = np.asarray(jax.grad(loss)(params)["cell"]["h"]["kernel"])  # [H, H], W_hh^T

    p = jax.tree.map(np.asarray, params["cell"])
    w_hh, w_xh, b = p["h"]["kernel"].T, p["i"]["kernel"].T, p["i"]["bias"]
    hs = [np.zeros(hidden)]
    for t in range(steps):
        hs.append(np.tanh(w_hh @ hs[-1] + w_xh @ np.asarray(x[0, t]) + b))
    expected = np.zeros((hidden, hidden))
    for k in range(1, steps + 1):
        v = np.ones(hidden)  # dL/dh_T
        for j in range(steps, k, -1):
            v = v @ (np.diag(1 - hs[j] ** 2) @ w_hh)
        expected += np.outer(v * (1 - hs[k] ** 2), hs[k - 1])
    np.testing.assert_allclose(grad_kernel, expected.T, rtol=1e-5, atol=1e-6)
