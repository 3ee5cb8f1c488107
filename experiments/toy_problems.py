"""The perceptron rule and the slides' toy classifiers: what a linear rule can and cannot learn.

    python experiments/toy_problems.py
    python experiments/toy_problems.py --seeds='(0,)' --toy.epochs=10   # a quick look

The perceptron (dl_jax/perceptron.py): Rosenblatt's rule, one example at a time, on linearly
separable points (it stops making mistakes, within Novikoff's bound (R / gamma)^2) and on XOR
(it never does). The toy problems (dl_jax/toys.py), features uniform in [-1, 1]: c1 if
f1 > f2, if f1 > f2 + f3, and if f1 * f2 > 0, each learned by one linear layer, by a hidden
layer without a non-linearity, and by hidden layers with tanh and with ReLU (16 units, Adam at
1e-2, batch 32, 40 epochs of 1,000 examples, tested on 1,000 others), for each of --seeds.

Writes into --workdir results.json, results.md (the test accuracies: mean and range over the
seeds), decision_boundaries.png (the first seed's models on the 2-feature problems, side by
side) and perceptron.png (mistakes per epoch, and the final lines).
"""

from dl_jax import cli
from dl_jax.config import ToyStudyConfig

DEFAULTS = ToyStudyConfig()


def main(cfg: ToyStudyConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import toys

    results = toys.study(cfg)
    print(f"\n{toys.table(results['toy'])}")
    for name, run in results["perceptron"].items():
        print(f"perceptron, {name}: mistakes per epoch {run['mistakes_per_epoch']}")
    for problem, accuracy in results["best_line"].items():
        print(f"the best line on {problem}: {100 * accuracy:.1f}%")
    bound = results["perceptron"]["separable"]["mistake_bound"]
    print(f"Novikoff's bound on the separable points' mistakes: {bound:.0f}")
    print(f"results in {cfg.workdir}/")


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
