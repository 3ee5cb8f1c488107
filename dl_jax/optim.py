"""Optimizers by name, all from optax, with the learning rate held in the optimizer state.

Each is wrapped in `optax.inject_hyperparams`, so `opt_state.hyperparams["learning_rate"]` is an
array: it can be read, changed between steps, checkpointed, and vmapped over (the grid sweep
trains one learning rate per cell in a single program).
"""

from collections.abc import Callable

import optax

from dl_jax.errors import unknown_name


def momentum(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """SGD with heavy-ball momentum: t <- g + momentum * t, p <- p - learning_rate * t."""
    return optax.sgd(learning_rate, momentum=momentum)


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": momentum,
    "adagrad": optax.adagrad,
    "rmsprop": optax.rmsprop,
    "adam": optax.adam,
}


SCHEDULES = ("constant", "cosine")


def make_optimizer(
    name: str,
    learning_rate: float,
    schedule: str = "constant",
    total_steps: int | None = None,
    **hyperparams,
) -> optax.GradientTransformation:
    """The optax optimizer called `name`, its learning rate (and `hyperparams`) in its state.

    `schedule="cosine"` decays the rate from `learning_rate` to 0 at `total_steps`; the state
    then holds the rate of the current step.
    """
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)
    if schedule not in SCHEDULES:
        raise unknown_name("learning-rate schedule", schedule, SCHEDULES)
    if schedule == "cosine":
        if not total_steps:
            raise ValueError("a cosine schedule needs total_steps")
        learning_rate = optax.cosine_decay_schedule(learning_rate, total_steps)
    return optax.inject_hyperparams(OPTIMIZERS[name])(learning_rate=learning_rate, **hyperparams)
