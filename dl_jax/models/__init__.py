"""Models as flax.linen modules with pure `init` / `apply`."""

from dl_jax.models.mlp import MLP

__all__ = ["MLP"]
