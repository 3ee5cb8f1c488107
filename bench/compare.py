"""What the benchmarks against PyTorch share: eager PyTorch training as its users write it, and
alternating rounds of the sides being compared. Imported by the bench scripts beside it."""

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
