"""The three training recipes of the activation x learning-rate study.

- `seed`: the slides' procedure as written. No biases; weights drawn from N(0, 1) * sqrt(1/fan_out);
  inputs x/255 * 0.99 + 0.01; targets 0.01 / 0.99; a softmax output with the squared-error cost
  C = sum (a3 - y)^2; plain SGD on one example per step, through the training set in its stored
  order.
- `seed_exact`: the same, but with the update that the slides' numpy code really applies. Its
  output error is 2 (z3 - y) / 10 * s (1 - s) with s = softmax(z3): the difference is taken on the
  pre-softmax z3 instead of a3, and the softmax Jacobian is cut to its diagonal. It is not the
  gradient of any cost we could write down, so `slide_exact_cost` carries it as a custom VJP. It
  exists because it is what reproduces the slides' printed curve (tanh, learning rate 1:
  92.74% after one epoch, 97.17% after ten); the true gradient (`seed`) behaves differently at
  that learning rate.
- `modern`: biases, LeCun (sigmoid, tanh) or He (the ReLU family) initialization, inputs in
  [0, 1], softmax cross-entropy, minibatches of 128 shuffled each epoch from (seed, epoch).

A recipe's loss is per example, `loss(logits_BK, labels_B) -> loss_B`; training follows its
gradient, and the train loss reported for a recipe is its value.
"""

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_jax import losses, optim
from dl_jax.errors import unknown_name
from dl_jax.tasks import scale_images

Loss = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    batch_size: int  # examples per step
    shuffle: bool  # a new order each epoch from (seed, epoch); otherwise the stored order
    use_bias: bool  # False: the model is trained without biases, whatever its config says
    loss: Loss
    preprocess: Callable[[jax.Array], jax.Array]  # uint8 images -> network inputs
    kernel_init: Callable[[str], nn.initializers.Initializer]  # activation name -> initializer
    optimizers: tuple[str, ...]  # the optimizers the recipe allows
    models: tuple[str, ...] = ("mlp",)  # the models it trains (dl_jax.models.MODELS)


def slide_inputs(image_u8: jax.Array) -> jax.Array:
    """x / 255 * 0.99 + 0.01: pixels in [0.01, 1], never exactly zero."""
    return image_u8.astype(jnp.float32) / 255.0 * 0.99 + 0.01


def slide_targets(labels_B: jax.Array, num_classes: int) -> jax.Array:
    """0.99 for the true class, 0.01 elsewhere."""
    return jax.nn.one_hot(labels_B, num_classes) * 0.98 + 0.01


def slide_cost(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """The slides' cost sum_j (softmax(z3)_j - y_j)^2 with 0.01 / 0.99 targets."""
    targets_BK = slide_targets(labels_B, logits_BK.shape[-1])
    return jnp.sum((jax.nn.softmax(logits_BK) - targets_BK) ** 2, axis=-1)


@jax.custom_vjp
def slide_exact_cost(logits_BK: jax.Array, labels_B: jax.Array) -> jax.Array:
    """`slide_cost`, whose gradient is replaced by the output error the slides' code applies."""
    return slide_cost(logits_BK, labels_B)


def _slide_exact_fwd(logits_BK, labels_B):
    return slide_cost(logits_BK, labels_B), (logits_BK, labels_B)


def _slide_exact_bwd(residuals, cotangent_B):
    logits_BK, labels_B = residuals
    num_classes = logits_BK.shape[-1]
    s_BK = jax.nn.softmax(logits_BK)
    # 2 (z3 - y) / 10 * s (1 - s): z3 where a3 belongs, and the diagonal of d softmax / d z3.
    error_BK = 2 * (logits_BK - slide_targets(labels_B, num_classes)) / num_classes
    error_BK = error_BK * s_BK * (1 - s_BK)
    return cotangent_B[:, None] * error_BK, None


slide_exact_cost.defvjp(_slide_exact_fwd, _slide_exact_bwd)


def slide_init(activation: str) -> nn.initializers.Initializer:
    """N(0, 1) * sqrt(1 / fan_out), whatever the activation (the slides' DNN class)."""
    del activation
    return nn.initializers.variance_scaling(1.0, "fan_out", "normal")  # untruncated


def modern_init(activation: str) -> nn.initializers.Initializer:
    """He normal for the ReLU family, LeCun normal for the rest."""
    if activation in ("relu", "leaky_relu", "softplus"):
        return nn.initializers.he_normal()
    return nn.initializers.lecun_normal()


RECIPES = {
    "seed": Recipe("seed", 1, False, False, slide_cost, slide_inputs, slide_init, ("sgd",)),
    "seed_exact": Recipe(
        "seed_exact", 1, False, False, slide_exact_cost, slide_inputs, slide_init, ("sgd",)
    ),
    "modern": Recipe(
        "modern",
        128,
        True,
        True,
        losses.softmax_cross_entropy,
        scale_images,
        modern_init,
        tuple(optim.OPTIMIZERS),
        ("mlp", "lenet5", "cnn", "rnn"),
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise unknown_name("recipe", name, RECIPES)
    return RECIPES[name]
