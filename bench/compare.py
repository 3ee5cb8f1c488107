"""What the benchmarks against PyTorch share: eager PyTorch training as its users write it,
alternating rounds of the sides being compared, and the PyTorch side run by another Python where
this one has no PyTorch. Imported by the bench scripts beside it."""

import inspect
import json
import subprocess
import time


def jax_train_and_test(model, tx, splits, epochs: int, seed: int):
    """dl_jax's own training loop, `train.fit` on one device, batch 128, as the experiment
    scripts run it: per-epoch `train/seconds` (compilation excluded) and final test accuracy."""
    from dl_jax import parallel, tasks, train
    from dl_jax.config import TrainConfig

    cfg = TrainConfig(epochs=epochs, batch_size=128, seed=seed)
    example = tasks.example_batch(splits.train)
    state = train.create_train_state(model, tx, tasks.ImageClassification(), seed, example)
    records = [r for _, r in train.fit(state, splits, cfg, parallel.make_mesh(1))]
    return [r["train/seconds"] for r in records], records[-1]["test/accuracy"]


def torch_train_and_test(
    model, opt, images, labels, test_images, test_labels, epochs, schedule=None
):
    """Train `model` eagerly: a fresh permutation every epoch, batches of 128 (the remainder
    dropped), uint8 `images` (tensors in the model's input layout) scaled per batch, softmax
    cross-entropy, `opt` stepped (and `schedule`, if given) after every batch. Returns the
    seconds of each epoch and the accuracy on the test images (numpy labels)."""
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    steps = len(labels) // 128
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(len(labels))
        for s in range(steps):
            idx = perm[s * 128 : (s + 1) * 128]
            loss = loss_fn(model(images[idx].float() / 255.0), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        batches = (test_images.float() / 255.0).split(1000)
        predictions = torch.cat([model(x).argmax(-1) for x in batches]).numpy()
    return seconds, float((predictions == test_labels).mean())


def alternate(sides: dict, rounds: int, epochs: int, label: str = "", digits: int = 2):
    """Run every side (a function of (epochs, seed) giving per-epoch seconds and accuracy) for
    1 + `epochs` epochs, round after round, so that drift in machine load touches all alike.
    The first epoch of every run warms caches and allocators up and is not counted. Returns the
    counted seconds and the last accuracy of each side."""
    times = {side: [] for side in sides}
    accuracy = {}
    for r in range(rounds):
        for side, run in sides.items():
            seconds, accuracy[side] = run(1 + epochs, r)
            times[side] += seconds[1:]
            print(f"{label}round {r + 1}: {side:22s} epochs "
                  f"{', '.join(f'{s:.{digits}f}' for s in seconds)} s", flush=True)  # fmt: skip
    return times, accuracy


def summary(times: dict, accuracy: dict) -> dict:
    """Per side: its epoch seconds, their median and minimum, and its final test accuracy."""
    import numpy as np

    return {
        side: {
            "epoch_s": seconds,
            "median_s": float(np.median(seconds)),
            "min_s": float(np.min(seconds)),
            "final_test_accuracy": accuracy[side],
        }
        for side, seconds in times.items()
    }


def torch_side(function, splits, data_dir: str, python: str | None, *args):
    """The PyTorch side: a function of (epochs, seed) that calls `function(splits, *args, epochs,
    seed)`, a bench script's eager PyTorch training. With `python` (`--torch_python`: an
    interpreter that has PyTorch and dl_jax, for a stack PyTorch ships no wheel for, such as
    Python 3.13 here), that interpreter runs it in a subprocess, on the same data from
    `data_dir`; its seconds are timed there as here."""
    if not python:
        return lambda epochs, seed: function(splits, *args, epochs, seed)
    call = f"{function.__name__}(data.load(dir={data_dir!r}), *{args!r}, {{}}, {{}})"
    return lambda epochs, seed: json.loads(_run_in(python, function, call.format(epochs, seed)))


def torch_version(python: str | None) -> dict:
    """PyTorch's version and thread count, here or in `python`."""
    if not python:
        import torch

        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    code = "import json, torch; print(json.dumps([torch.__version__, torch.get_num_threads()]))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    version, threads = json.loads(out.stdout)
    return {"torch": version, "torch_threads": threads, "torch_python": python}


def _run_in(python: str, function, call: str) -> str:
    """The JSON of `call`, evaluated by `python` in the namespace of `function`'s bench script."""
    script = inspect.getfile(function)
    code = (
        "import importlib.util, json, pathlib, sys\n"
        f"sys.path.insert(0, str(pathlib.Path({script!r}).parent))\n"
        f"spec = importlib.util.spec_from_file_location('bench_script', {script!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "from dl_jax import data\n"
        f"print(json.dumps(eval({call!r}, vars(module), {{'data': data}})))\n"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the PyTorch side failed in {python}:\n{done.stderr}")
    return done.stdout.splitlines()[-1]
