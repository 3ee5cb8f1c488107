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

from dl_jax import cli
from dl_jax.config import OverconfidenceConfig

DEFAULTS = OverconfidenceConfig()


def main(cfg: OverconfidenceConfig) -> dict:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import confidence

    results = confidence.study(cfg)
    print(f"\n{confidence.table(results)}")
    print(f"results.json, confidence.png, noise_mlp.png and noise_cnn.png in {cfg.workdir}/")
    return results


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
