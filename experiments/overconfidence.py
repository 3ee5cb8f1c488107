"""Over-confidence, measured: what a trained digit classifier answers when shown random noise.

    python experiments/overconfidence.py
    python experiments/overconfidence.py --mlp=runs/mnist_mlp --cnn=runs/mnist_cnn \\
        --data.source=idx --data.dir=PATH
    python experiments/overconfidence.py --noise_images=10000 --seed=1

A softmax classifier has no way to say "none of these": it shares all of its probability among
the ten digits, whatever it is shown. Here an MLP and a CNN see --noise_images images of
uniform noise, each pixel an integer 0..255 drawn independently by numpy's
`default_rng(--seed)`, and the test digits of --data.*; for both sets, the top softmax
probability (how sure the answer is) is compared.

--mlp and --cnn name the work directories of trained image runs (experiments/mnist_mlp.py,
mnist_cnn.py; any image model of the package will do). A model that is not given is trained
for --epochs on the training split of --data.* into --workdir/mlp or --workdir/cnn: the MLP
784-128-64-10 with ReLU, or the flax example's CNN, both with Adam at 1e-3 decayed by a cosine,
batch 128. Running the same command again reuses those runs (or resumes one that was cut off).

Writes into --workdir: config.json; results.json (per model: the test accuracy; the mean and
median top probability on noise and on the test digits, and the share of each above 0.9 and
0.99; how often each class is the answer on noise); confidence.png (histograms of the top
probability, noise against test digits); noise_mlp.png and noise_cnn.png (the first 20 noise
images with each model's answer and its probability). Prints a table of the same numbers.
"""

import dataclasses

from dl_jax import cli, config
from dl_jax.config import DataConfig, ModelConfig

# The models compared, by name, and what is trained when a name's run is not given.
MODELS = {"mlp": ModelConfig(), "cnn": ModelConfig(name="cnn")}
# Fields a rerun may change besides runs.HARMLESS: the data may move (workdir.prepare compares
# its fingerprints), and the noise is drawn afresh on every run, its results rewritten whole.
HARMLESS = ("data.", "noise_images", "seed")


@dataclasses.dataclass(frozen=True)
class OverconfidenceConfig:
    mlp: str | None = None  # work directory of a trained MLP run; None: train one in workdir/mlp
    cnn: str | None = None  # work directory of a trained CNN run; None: train one in workdir/cnn
    data: DataConfig = DataConfig(source="sample")  # the test digits; training data if trained
    noise_images: int = 1000  # random images shown to each model
    seed: int = 0  # numpy default_rng seed of the noise pixels
    epochs: int = 3  # training epochs of a model that is not given
    workdir: str = "runs/overconfidence"  # config, results, figures and the runs trained here

    def __post_init__(self):
        config.check(self.noise_images > 0, "noise_images", self.noise_images, "an int > 0")
        config.check(self.epochs > 0, "epochs", self.epochs, "an int > 0")


DEFAULTS = OverconfidenceConfig()


def main(cfg: OverconfidenceConfig) -> dict:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    import json
    from pathlib import Path

    import numpy as np

    from dl_jax import classifier, data, files, parallel, plots, runs
    from dl_jax import workdir as workdirs

    # Everything that can fail on bad input fails before the work directory is touched.
    given = {name: runs.load(getattr(cfg, name)) for name in MODELS if getattr(cfg, name)}
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    run_dir = Path(cfg.workdir)  # held since cli.run
    parallel.on_main_process(
        lambda: workdirs.prepare(
            run_dir, cfg, (*runs.HARMLESS, *HARMLESS), dataset=splits.identity()
        ),
        f"prepare {run_dir}",
    )
    loaded = {name: given.get(name) or classifier.trained(_brief(cfg, name)) for name in MODELS}

    noise = np.random.default_rng(cfg.seed).integers(
        0, 256, size=(cfg.noise_images, 28, 28, 1), dtype=np.uint8
    )
    images, labels = splits.test["image"], splits.test["label"]
    results = {"noise_images": cfg.noise_images, "seed": cfg.seed, "data": splits.describe()}
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
                **_summary(noise_top),
                "predicted": np.bincount(noise_class, minlength=data.NUM_CLASSES).tolist(),
            },
            "real": _summary(real_top),
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
    _print_table(results, len(labels))
    print(f"results.json, confidence.png, noise_mlp.png and noise_cnn.png in {run_dir}/")
    return results


def _brief(cfg: OverconfidenceConfig, name: str):
    """The brief training run of model `name` in `workdir/<name>`, when none is given."""
    from dl_jax.config import ClassifierConfig, TrainConfig

    return ClassifierConfig(model=MODELS[name], data=cfg.data,
                            train=TrainConfig(epochs=cfg.epochs),
                            workdir=f"{cfg.workdir}/{name}")  # fmt: skip


def _summary(top_N) -> dict:
    import numpy as np

    return {
        "mean": float(np.mean(top_N)),
        "median": float(np.median(top_N)),
        "above_0.9": float(np.mean(top_N > 0.9)),
        "above_0.99": float(np.mean(top_N > 0.99)),
    }


def _print_table(results: dict, test_images: int) -> None:
    print(f"\n{'top softmax probability':>52}")
    print(f"{'model':<6}{'images':<20}{'mean':>7}{'median':>8}{'>0.9':>7}{'>0.99':>7}")
    for name, r in results["models"].items():
        for images, key in ((f"noise ({results['noise_images']})", "noise"),
                            (f"test digits ({test_images})", "real")):  # fmt: skip
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
            print(f"{name:<6}{images:<20}{numbers}{note}")
    print()


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
