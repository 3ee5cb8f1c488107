"""Where the time of one LSTM training step goes, on sequential MNIST's sizes (batch 128, 28
steps of 28 features, hidden 128): a profile by parts, in milliseconds.

    python bench/lstm_profile.py

1. The whole step of `RNNClassifier` (flax's `LSTMCell` and `OptimizedLSTMCell` under `nn.RNN`):
   forward only, forward and backward, and with Adam.
2. A scan of 28 steps of: the full LSTM step (one fused GEMM on [x, h], the gates); the GEMM
   alone; the gate arithmetic alone; nothing. Forward, and forward and backward.
3. One [128, 156] x [156, 512] GEMM, the step's matmul, in GFLOP/s; and, with PyTorch
   installed, the same shapes in PyTorch (forward, and the two GEMMs of the backward pass).

BENCHMARKS.md ("LSTM epoch time against PyTorch") reads these numbers.
"""

import functools
import time

import jax
import jax.numpy as jnp
import optax

from dl_jax.models import RNNClassifier

B, T, F, H = 128, 28, 28, 128


def best_ms(f, *args, n=200):
    """The best of 5 timings of n / 5 calls, in milliseconds a call."""
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n // 5):
            out = f(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / (n // 5))
    return 1e3 * min(times)


def whole_steps(x, y):
    for cell in ("lstm", "optimized_lstm"):
        model = RNNClassifier(cell, H, 10)
        params = model.init(jax.random.key(2), x)["params"]
        tx = optax.adam(1e-3)

        def loss(p, x, model=model):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        @jax.jit
        def step(p, opt_state, x, loss=loss, tx=tx):
            value, grads = jax.value_and_grad(loss)(p, x)
            updates, opt_state = tx.update(grads, opt_state, p)
            return optax.apply_updates(p, updates), opt_state, value

        forward = best_ms(jax.jit(loss), params, x)
        backward = best_ms(jax.jit(jax.grad(loss)), params, x)
        whole = best_ms(step, params, tx.init(params), x)
        print(f"{cell}: forward {forward:.2f} ms, forward and backward {backward:.2f} ms, "
              f"the step with Adam {whole:.2f} ms")  # fmt: skip


def lstm_step(w, carry, x_t):
    c, h = carry
    i, f, g, o = jnp.split(jnp.concatenate([x_t, h], -1) @ w, 4, -1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def gemm_step(w, carry, x_t):
    c, h = carry
    return c, (jnp.concatenate([x_t, h], -1) @ w)[:, :H]


def gates_step(w, carry, x_t):
    c, h = carry
    i, f, g, o = jnp.split(jnp.tile(h, (1, 4)) * w[0, 0] + x_t.sum(), 4, -1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def scanned(body, w, xs_TBF):
    zeros = jnp.zeros((B, H))
    (_, h), _ = jax.lax.scan(lambda carry, x_t: (body(w, carry, x_t), None), (zeros, zeros), xs_TBF)
    return h.sum()


def parts(x):
    w = jax.random.normal(jax.random.key(3), (F + H, 4 * H)) * 0.05
    xs = jnp.swapaxes(x, 0, 1)
    for name, body in (("the LSTM step", lstm_step), ("its GEMM only", gemm_step),
                       ("its gate arithmetic only", gates_step)):  # fmt: skip
        run = functools.partial(scanned, body)
        forward = best_ms(jax.jit(run), w, xs)
        backward = best_ms(jax.jit(jax.grad(run)), w, xs)
        print(
            f"28 steps of {name}: forward {forward:.2f} ms, forward and backward {backward:.2f} ms"
        )


def gemms():
    flop = 2 * B * (F + H) * 4 * H
    a = jax.random.normal(jax.random.key(4), (B, F + H))
    w = jax.random.normal(jax.random.key(5), (F + H, 4 * H))
    ms = best_ms(jax.jit(lambda a, w: a @ w), a, w, n=2000)
    print(f"one [128, 156] x [156, 512] GEMM: {1e3 * ms:.0f} us, {flop / ms / 1e6:.0f} GFLOP/s")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch==2.13.0): no GEMM numbers for it")
        return
    torch.set_num_threads(2)
    ta, tw, tg = torch.randn(B, F + H), torch.randn(F + H, 4 * H), torch.randn(B, 4 * H)
    for name, f in (("forward", lambda: ta @ tw), ("dX", lambda: tg @ tw.T),
                    ("dW", lambda: ta.T @ tg)):  # fmt: skip
        print(f"PyTorch, the same {name} GEMM: {flop / best_ms(f, n=2000) / 1e6:.0f} GFLOP/s")


def main():
    x = jax.random.uniform(jax.random.key(0), (B, T, F))
    y = jax.random.randint(jax.random.key(1), (B,), 0, 10)
    whole_steps(x, y)
    parts(x)
    gemms()


if __name__ == "__main__":
    main()
