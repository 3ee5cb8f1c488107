"""Direct against FFT convolution of two random float32 signals of equal length n.

    python bench/conv_fft.py
    python bench/conv_fft.py --sizes=16,256,4096 --repeats=5 --out=/tmp/conv_fft.json

Direct, O(n^2): dl_jax's jitted sliding dot product (`conv_math.convolve1d`) and the library's
`jnp.convolve` (always direct, a `lax.conv_general_dilated`). FFT, O(n log n):
`conv_math.fft_convolve` (rfft, product, irfft on n + n - 1 points). The slide's numpy/scipy
pair, `np.convolve` and `scipy.signal.fftconvolve`, is timed beside them (the slide: 1.34 s
direct against 9.5 ms FFT for two 100k-long signals). Each time is the median of --repeats calls
after one untimed warm-up call (for JAX that call compiles; every call ends in
block_until_ready). A direct method is skipped at a size where its time, extrapolated as n^2 from
the last size it ran at, would pass --max_call_s per call. The crossover is the smallest
n from which the FFT is faster at every size where both were timed.
"""

import dataclasses
import json
import os
import time
from pathlib import Path

from dl_jax import cli

# Each direct method and the FFT method its crossover is measured against.
DIRECT = {
    "convolve1d": "fft_convolve",
    "jnp.convolve": "fft_convolve",
    "np.convolve": "scipy.fftconv",
}


@dataclasses.dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (16, 64, 256, 1024, 4096, 16384, 65536, 100_000)  # signal lengths n
    repeats: int = 5  # timed calls per method and size, after one untimed warm-up call
    max_call_s: float = 2.0  # skip a direct method where its predicted seconds per call pass this
    seed: int = 0  # for the random signals
    out: str | None = "docs/results/conv_fft_cpu.json"  # also write the results here as JSON


def median_seconds(fn, args, repeats: int) -> float:
    """Median wall time of `fn(*args)` over `repeats` calls, after one untimed warm-up call."""
    import numpy as np

    def call():
        out = fn(*args)
        if hasattr(out, "block_until_ready"):
            out.block_until_ready()

    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def methods() -> dict:
    """name -> (function, whether it takes numpy rather than JAX arrays)."""
    import jax.numpy as jnp
    import numpy as np

    from dl_jax import conv_math

    found = {
        "convolve1d": (conv_math.convolve1d, False),
        "jnp.convolve": (jnp.convolve, False),  # jitted already; direct, through lax.conv
        "fft_convolve": (conv_math.fft_convolve, False),
        "np.convolve": (np.convolve, True),
    }
    try:
        import scipy.signal

        found["scipy.fftconv"] = (scipy.signal.fftconvolve, True)
    except ImportError:
        print("scipy is not installed: scipy.signal.fftconvolve is not timed")
    return found


def crossover(times: dict, direct: str, fft: str) -> int | None:
    """The smallest n from which `fft` beats `direct` at every size where both were timed; None
    when it does not beat it at the largest such size."""
    found = None
    for n in sorted(times, reverse=True):
        t_direct, t_fft = times[n].get(direct), times[n].get(fft)
        if t_direct is None or t_fft is None:
            continue
        if t_direct <= t_fft:
            break
        found = n
    return found


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "skipped"
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(cfg: Config) -> dict:
    import jax
    import numpy as np

    timed = methods()
    names = list(timed)
    print(f"{'n':>8s}" + "".join(f"{name:>15s}" for name in names))
    times, predicted, last = {}, {}, {}
    for n in cfg.sizes:
        kx, kk = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), n))
        x, k = jax.random.normal(kx, (n,)), jax.random.normal(kk, (n,))
        x_np, k_np = np.asarray(x), np.asarray(k)
        times[n] = {}
        for name, (fn, numpy_args) in timed.items():
            if name in DIRECT and name in last:
                n_last, t_last = last[name]
                guess = t_last * (n / n_last) ** 2
                if guess > cfg.max_call_s:
                    predicted.setdefault(name, {})[n] = guess
                    continue
            seconds = median_seconds(fn, (x_np, k_np) if numpy_args else (x, k), cfg.repeats)
            times[n][name] = seconds
            last[name] = (n, seconds)
        print(f"{n:8d}" + "".join(f"{format_time(times[n].get(name)):>15s}" for name in names))

    for name, skipped in predicted.items():
        sizes = ", ".join(f"{n} ({format_time(s)})" for n, s in skipped.items())
        print(f"{name} skipped, predicted per call over --max_call_s={cfg.max_call_s}: n = {sizes}")
    crossovers = {}
    for direct, fft in DIRECT.items():
        if fft not in timed:
            continue
        crossovers[f"{direct} vs {fft}"] = n_cross = crossover(times, direct, fft)
        where = f"from n = {n_cross}" if n_cross else "not at the largest size both ran at"
        print(f"crossover, {fft} faster than {direct}: {where}")
    if 100_000 in times and {"np.convolve", "scipy.fftconv"} <= times[100_000].keys():
        row = times[100_000]
        print(
            f"slide (numpy/scipy, n = 100k): 1.34 s direct vs 9.5 ms FFT; here "
            f"{format_time(row['np.convolve'])} vs {format_time(row['scipy.fftconv'])}"
        )

    versions = {"jax": jax.__version__, "numpy": np.__version__}
    if "scipy.fftconv" in timed:
        import scipy

        versions["scipy"] = scipy.__version__
    results = {
        "machine": f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPU cores",
        "versions": versions,
        "repeats": cfg.repeats,
        "seconds": {str(n): row for n, row in times.items()},
        "skipped_predicted_seconds": {
            name: {str(n): s for n, s in skipped.items()} for name, skipped in predicted.items()
        },
        "crossover_n": crossovers,
    }
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
