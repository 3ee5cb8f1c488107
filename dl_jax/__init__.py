"""dl_jax: the canon of deep learning in JAX, flax (linen) and optax.

The package import is kept free of JAX so that command-line errors stay fast; import the
submodules (`dl_jax.models`, `dl_jax.train`, ...) for the real work.
"""

__version__ = "0.1.0"
