"""Train a convolutional network (the flax example's CNN, or LeNet-5) on MNIST.

    python experiments/mnist_cnn.py --data.dir=PATH --workdir=runs/cnn
    python experiments/mnist_cnn.py --model.name=lenet5 --data.dir=PATH --workdir=runs/lenet5
    python experiments/mnist_cnn.py --data.source=sample --train.epochs=2
    python experiments/mnist_cnn.py --model.dropout_rate=0.5 --model.pooling=max

The defaults: `--model.name=cnn`, the flax MNIST example's network (conv 32 and conv 64, 3x3,
SAME, ReLU, 2x2 average pooling, dense 256, dense 10), SGD with momentum 0.9 at 0.1 decayed
by a cosine over the run, batch 128, 10 epochs. `--model.name=lenet5` is LeNet-5 (tanh,
average pooling; dl_jax/models/cnn.py lists how it differs from the 1998 paper). Any image model
of dl_jax.models runs here, the MLP too. The convolutions are computed as im2col on a CPU and
by XLA's convolution on GPU/TPU (`--model.conv_impl=auto`; lax or im2col force one).

Writes into --workdir what mnist_mlp.py writes (config.json, metrics.jsonl, checkpoints/,
curves.png), and two pictures of the trained network: filters.png, its first-layer filters, and
feature_maps.png, the maps of one test digit after each conv layer. Running the same command
again resumes an interrupted run from its last checkpoint.
"""

from dl_jax import cli
from dl_jax.config import ClassifierConfig, ModelConfig, OptimConfig

DEFAULTS = ClassifierConfig(
    model=ModelConfig(name="cnn"),
    optim=OptimConfig(name="momentum", learning_rate=0.1, schedule="cosine"),
    workdir="runs/mnist_cnn",
)


def main(cfg: ClassifierConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    from dl_jax import classifier, plots, tasks
    from dl_jax.models import cnn

    result = classifier.train_and_evaluate(cfg)
    if cfg.model.name == "mlp" or not result.main_process:
        return  # no convolutions to draw, or another process draws them
    variables = {"params": result.state.params}
    plots.plot_filters(cnn.first_conv_kernel(result.state.params), result.run_dir / "filters.png")
    image = result.splits.test["image"][:1]
    maps = cnn.conv_outputs(result.model, variables, tasks.scale_images(image))
    plots.plot_feature_maps(
        tasks.scale_images(image)[0],
        {name: m[0] for name, m in maps.items() if m.shape[1] > 1},  # not LeNet's 1x1 C5
        result.run_dir / "feature_maps.png",
        label=int(result.splits.test["label"][0]),
    )
    print(f"filters.png and feature_maps.png in {result.run_dir}/")


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
