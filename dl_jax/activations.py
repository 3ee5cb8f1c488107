"""Activation functions by name: the ones the slides use, taken from jax.nn where it has them."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dl_jax.errors import unknown_name


def linear(x: jax.Array) -> jax.Array:
    """The identity, f(z) = z."""
    return x


def step(x: jax.Array) -> jax.Array:
    """Heaviside step for the perceptron: 1 where z >= 0, else 0."""
    return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


def sign(x: jax.Array) -> jax.Array:
    """Sign for the perceptron: +1 where z >= 0, else -1 (0 counts as positive, as in the rule)."""
    return jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # slope 0.01 for z < 0
    "softplus": jax.nn.softplus,
    "linear": linear,
    "softmax": jax.nn.softmax,  # over the last axis; an output layer, not a hidden one
    "step": step,
    "sign": sign,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called `name`; an unknown name raises an error listing the valid ones."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def resolve(activation: str | Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    """A model's activation field as a function: a name is looked up, a function passes through
    (the grid passes functions that pick the activation at run time)."""
    return get_activation(activation) if isinstance(activation, str) else activation


def select(index: jax.Array, names: tuple[str, ...]) -> Callable[[jax.Array], jax.Array]:
    """The activation `names[index]` for an `index` known only at run time (a traced int).

    A `lax.switch` around the activation alone: its operands are a layer's pre-activations, so
    the branch costs little even inside a CPU loop (a switch around the whole model would pass
    the weights through the conditional, which was 3.5x slower per step). Under `vmap` JAX turns
    it into a select over every candidate.
    """
    fns = [get_activation(name) for name in names]
    if len(fns) == 1:
        return fns[0]
    return lambda x: jax.lax.switch(index, fns, x)
