"""Pictures of a trained digit classifier: its answers on test digits, its mistakes, its
confusion matrix, and the activation functions it may use with their derivatives.

    python experiments/figures.py
    python experiments/figures.py --run=runs/mnist_mlp --data.source=idx --data.dir=PATH \\
        --workdir=runs/figures_mlp
    python experiments/figures.py --run=runs/mnist_cnn --data.source=idx --data.dir=PATH \\
        --workdir=runs/figures_cnn

--run names the work directory of a trained image run (experiments/mnist_mlp.py,
mnist_cnn.py, sequence_mnist.py). Without it, the reference MLP (784-128-64-10, ReLU, Adam at
1e-3 decayed by a cosine, batch 128) is trained for --epochs on the training split of --data.*
into --workdir/mlp; running the same command again reuses that run (or resumes it if it was
cut off). The run's model then classifies the test split of --data.*.

Writes into --workdir: config.json; digits.png (the first 40 test digits, each with the answer,
its softmax probability and the true label; wrong answers in red); mistakes.png (the first 40
misclassified test digits, the same way); confusion_matrix.png (counts of true against
predicted class); activations.png (sigmoid, tanh, ReLU, leaky ReLU and softplus, each with its
derivative from jax.grad). Prints the test accuracy and where the figures are.
"""

from dl_jax import cli
from dl_jax.config import FiguresConfig

DEFAULTS = FiguresConfig()
FIGURES = ("digits.png", "mistakes.png", "confusion_matrix.png", "activations.png")


def main(cfg: FiguresConfig) -> float:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from pathlib import Path

    import numpy as np

    from dl_jax import classifier, data, parallel, plots, runs
    from dl_jax.config import ClassifierConfig, TrainConfig

    # Everything that can fail on bad input fails before the work directory is touched.
    run = runs.load(cfg.run) if cfg.run else None
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    run_dir = Path(cfg.workdir)  # held since cli.run
    # The data may move: workdir.prepare compares its fingerprints.
    parallel.prepare_workdir(run_dir, cfg, (*runs.HARMLESS, "data."), splits.identity())
    if run is None:  # the MLP of mnist_mlp.py, briefly
        brief = ClassifierConfig(data=cfg.data, train=TrainConfig(epochs=cfg.epochs),
                                 workdir=f"{cfg.workdir}/mlp")  # fmt: skip
        run = classifier.trained(brief)

    images, labels = splits.test["image"], splits.test["label"]
    confidences, predictions = run.confidence(images)
    wrong = predictions != labels
    accuracy = 1.0 - float(np.mean(wrong))
    if parallel.is_main_process():
        name = run.config.model.name.upper()
        plots.plot_digits(images, labels, predictions, run_dir / "digits.png",
                          confidences_N=confidences, title=f"{name} on test digits")  # fmt: skip
        plots.plot_digits(images[wrong], labels[wrong], predictions[wrong],
                          run_dir / "mistakes.png", confidences_N=confidences[wrong],
                          title=f"{name}'s misclassified test digits")  # fmt: skip
        plots.plot_confusion_matrix(
            labels, predictions, run_dir / "confusion_matrix.png", num_classes=data.NUM_CLASSES
        )
        plots.plot_activations(plots.PLOTTED_ACTIVATIONS, run_dir / "activations.png")
    print(
        f"{run.workdir}: test accuracy {100 * accuracy:.2f}% on {len(labels)} test digits "
        f"({int(wrong.sum())} wrong)"
    )
    print(f"{', '.join(FIGURES)} in {run_dir}/")
    return accuracy


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
