import math

import jax.numpy as jnp
import optax
import pytest

from dl_jax import optim
from dl_jax.errors import ConfigError

P, G, LR = 1.0, 0.5, 0.1


def steps(name, n=1, **kwargs):
    """Parameter value after `n` steps from P with the constant gradient G."""
    tx = optim.make_optimizer(name, LR, **kwargs)
    params = jnp.array(P)
    state = tx.init(params)
    for _ in range(n):
        updates, state = tx.update(jnp.array(G), state, params)
        params = optax.apply_updates(params, updates)
    return float(params), state


@pytest.mark.parametrize(
    "name, n, expected",
    [
        ("sgd", 1, P - LR * G),  # 0.95
        ("momentum", 2, P - LR * G - LR * (G + 0.9 * G)),  # trace t = g + 0.9 t: 0.855
        ("adagrad", 1, P - LR * G / math.sqrt(0.1 + G**2 + 1e-7)),  # accumulator starts at 0.1
        ("rmsprop", 1, P - LR * G / math.sqrt(0.1 * G**2 + 1e-8)),  # nu = 0.9 * 0 + 0.1 g^2
        ("adam", 1, P - LR * G / (abs(G) + 1e-8)),  # bias-corrected m = g, v = g^2
    ],
)
def test_hand_computed_updates(name, n, expected):
    assert steps(name, n)[0] == pytest.approx(expected, rel=1e-6)


def test_learning_rate_lives_in_the_state():
    tx = optim.make_optimizer("sgd", LR)
    state = tx.init(jnp.array(P))
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(LR)
    state.hyperparams["learning_rate"] = jnp.array(1.0)  # change it between steps
    updates, _ = tx.update(jnp.array(G), state)
    assert float(updates) == pytest.approx(-G)


def test_cosine_schedule_decays_to_zero():
    _, state = steps("sgd", 5, schedule="cosine", total_steps=10)
    # The state holds the rate used at the 5th step (count 4): LR * (1 + cos(pi * 4/10)) / 2.
    expected = LR * (1 + math.cos(math.pi * 4 / 10)) / 2
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(expected, rel=1e-6)
    _, state = steps("sgd", 11, schedule="cosine", total_steps=10)
    assert float(state.hyperparams["learning_rate"]) == 0.0


def test_unknown_names():
    with pytest.raises(ConfigError, match="unknown optimizer 'adamw'; valid: adagrad, adam, "):
        optim.make_optimizer("adamw", LR)
    with pytest.raises(ConfigError, match="unknown learning-rate schedule 'step'"):
        optim.make_optimizer("sgd", LR, schedule="step")
