"""Over-confidence, measured: how sure a trained digit classifier is of what it answers, on
the test digits and on images of uniform random noise (the slides' "a neural network's
arrogance knows no bounds").

A softmax classifier has no way to say "none of these": it shares all of its probability among
the ten digits, whatever it is shown. `study` compares the top softmax probability of each
model on both sets of images; the noise is an integer 0..255 per pixel, drawn independently
with numpy's `default_rng(seed)`, as the slides draw their "rubbish" digit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dl_jax import classifier, data, files, parallel, plots, runs
from dl_jax.config import ClassifierConfig, ModelConfig, OverconfidenceConfig, TrainConfig

# The models compared, by name, and what is trained when a name's run is not given.
MODELS = {"mlp": ModelConfig(), "cnn": ModelConfig(name="cnn")}
# Fields a rerun may change besides runs.HARMLESS: the data may move (workdir.prepare compares
# its fingerprints), and the noise is drawn afresh on every run, its results rewritten whole.
HARMLESS = ("data.", "noise_images", "seed")


def noise_images(n: int, seed: int) -> np.ndarray:
    """uint8 [n, 28, 28, 1]: every pixel an integer 0..255, uniform and independent."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)


def study(cfg: OverconfidenceConfig) -> dict:
    """Load (or train briefly) the MLP and the CNN, show both the noise and the test digits,
    and write into `cfg.workdir` results.json (per model: the test accuracy; the mean and
    median top probability on each set, the share above 0.9 and 0.99; how often each class
    is the answer on noise), confidence.png and noise_<model>.png. Returns the results."""
    # Everything that can fail on bad input fails before the work directory is touched.
    given = {name: runs.load(getattr(cfg, name)) for name in MODELS if getattr(cfg, name)}
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    run_dir = Path(cfg.workdir)  # held since cli.run
    parallel.prepare_workdir(run_dir, cfg, (*runs.HARMLESS, *HARMLESS), splits.identity())
    loaded = {name: given.get(name) or classifier.trained(_brief(cfg, name)) for name in MODELS}

    noise = noise_images(cfg.noise_images, cfg.seed)
    images, labels = splits.test["image"], splits.test["label"]
    results = {"noise_images": cfg.noise_images, "seed": cfg.seed, "data": splits.describe(),
               "test_images": len(labels)}  # fmt: skip
    results["models"], histograms = {}, {}
    for name, run in loaded.items():
        noise_top, noise_class = run.confidence(noise)
        real_top, real_class = run.confidence(images)
        accuracy = float(np.mean(real_class == labels))
        results["models"][name] = {
            "workdir": str(run.workdir),
            "model": run.config.model.name,
            "test_accuracy": accuracy,
            "noise": {
                **summary(noise_top),
                "predicted": np.bincount(noise_class, minlength=data.NUM_CLASSES).tolist(),
            },
            "real": summary(real_top),
        }
        histograms[f"{name.upper()} (test accuracy {100 * accuracy:.1f}%)"] = (noise_top, real_top)
        if parallel.is_main_process():
            title = f"{name.upper()} on uniform random pixels"
            plots.plot_noise_predictions(
                noise, noise_class, noise_top, run_dir / f"noise_{name}.png", title=title
            )
    if parallel.is_main_process():
        plots.plot_confidence_histograms(histograms, run_dir / "confidence.png")
        with files.replacing(run_dir / "results.json") as tmp:
            tmp.write_text(json.dumps(results, indent=1) + "\n")
    return results


def _brief(cfg: OverconfidenceConfig, name: str) -> ClassifierConfig:
    """The brief training run of model `name` in `workdir/<name>`, when none is given."""
    return ClassifierConfig(model=MODELS[name], data=cfg.data,
                            train=TrainConfig(epochs=cfg.epochs),
                            workdir=f"{cfg.workdir}/{name}")  # fmt: skip


def summary(top_N: np.ndarray) -> dict:
    """The mean and median of top probabilities, and the shares above 0.9 and 0.99."""
    return {
        "mean": float(np.mean(top_N)),
        "median": float(np.median(top_N)),
        "above_0.9": float(np.mean(top_N > 0.9)),
        "above_0.99": float(np.mean(top_N > 0.99)),
    }


def table(results: dict) -> str:
    """`study`'s results as a text table: a row per model and set of images."""
    header = f"{'model':<6}{'images':<20}{'mean':>7}{'median':>8}{'>0.9':>7}{'>0.99':>7}"
    lines = [f"{'top softmax probability':>52}", header]
    for name, r in results["models"].items():
        for images, key in ((f"noise ({results['noise_images']})", "noise"),
                            (f"test digits ({results['test_images']})", "real")):  # fmt: skip
            s = r[key]
            numbers = "".join(
                f"{100 * s[k]:>{w}.1f}%"
                for k, w in (("mean", 6), ("median", 7), ("above_0.9", 6), ("above_0.99", 6))
            )
            if key == "noise":
                counts = r["noise"]["predicted"]
                top = max(range(len(counts)), key=counts.__getitem__)
                note = f"  answer {top} for {counts[top]} of them"
            else:
                note = f"  accuracy {100 * r['test_accuracy']:.1f}%"
            lines.append(f"{name:<6}{images:<20}{numbers}{note}")
    return "\n".join(lines) + "\n"
