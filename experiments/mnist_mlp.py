"""Train one MLP on MNIST (or Fashion-MNIST) and report test accuracy per epoch.

    python experiments/mnist_mlp.py --data.dir=PATH --workdir=runs/mlp
    python experiments/mnist_mlp.py --data.source=sample --train.epochs=2
    python experiments/mnist_mlp.py --model.activation=tanh --optim.name=sgd \
        --optim.learning_rate=0.1 --optim.schedule=constant

The defaults are the reference run: 784-128-64-10, ReLU, Adam at 1e-3 decayed by a cosine over
the run (--optim.schedule=constant keeps it fixed), batch 128, 10 epochs.

Writes config.json, metrics.jsonl (one JSON object per epoch, appended as each ends) and, at
the end, curves.png (loss and test accuracy against epoch) into --workdir when given.
"""

import dataclasses
from pathlib import Path

from dl_jax import config
from dl_jax.config import DataConfig, ModelConfig, OptimConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig(schedule="cosine")
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    workdir: str | None = None  # where config.json, metrics.jsonl, curves.png go; None: nowhere


def main(cfg: Config) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    import jax

    from dl_jax import data, losses, metrics, optim, parallel, train
    from dl_jax.models import MLP

    model = MLP(cfg.model.features, cfg.model.activation, cfg.model.use_bias)
    loss_fn = losses.get_loss(cfg.train.loss)
    mesh = parallel.make_mesh(cfg.train.num_devices)
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    print(
        f"data: {splits.source}: {len(splits.train['label'])} train, "
        f"{len(splits.test['label'])} test; devices: {mesh.devices.size} x "
        f"{jax.devices()[0].platform}"
    )

    steps = train.steps_per_epoch(len(splits.train["label"]), cfg.train.batch_size)
    tx = optim.make_optimizer(
        cfg.optim.name,
        cfg.optim.learning_rate,
        cfg.optim.schedule,
        total_steps=steps * cfg.train.epochs,
    )
    init_key, _ = train.root_keys(cfg.train.seed)
    example = train.scale_images(splits.train["image"][:1])
    state = train.create_train_state(model, tx, loss_fn, init_key, example)
    epochs = train.fit(state, splits, cfg.train, mesh)

    # Everything that can fail on bad input has run; only now touch the work directory.
    writer = None
    if cfg.workdir:
        workdir = Path(cfg.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        config.write_json(cfg, workdir / "config.json")
        (workdir / "metrics.jsonl").unlink(missing_ok=True)
        writer = metrics.JsonlWriter(workdir / "metrics.jsonl")

    history = []
    for _, record in epochs:
        print(metrics.format_epoch(record, cfg.train.epochs), flush=True)
        history.append(record)
        if writer:
            writer.write(record)
    if cfg.workdir:
        metrics.plot_history(history, Path(cfg.workdir) / "curves.png")


if __name__ == "__main__":
    config.run(main, Config(), __doc__)
