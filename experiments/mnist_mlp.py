"""Train one MLP on MNIST (or Fashion-MNIST) and report test accuracy per epoch.

    python experiments/mnist_mlp.py --data.dir=PATH --workdir=runs/mlp
    python experiments/mnist_mlp.py --data.source=sample --train.epochs=2
    python experiments/mnist_mlp.py --model.activation=tanh --optim.name=sgd \\
        --optim.learning_rate=0.1 --optim.schedule=constant

The defaults are the reference run: 784-128-64-10, ReLU, Adam at 1e-3 decayed by a cosine over
the run (--optim.schedule=constant keeps it fixed), batch 128, 10 epochs.

Writes into --workdir: config.json, metrics.jsonl (one JSON object per epoch, appended as each
ends), checkpoints/, curves.png (loss and test accuracy against epoch) and, with
--log.tensorboard=True, tensorboard/. Running the same command again resumes an interrupted run
from its last checkpoint (see dl_jax/checkpoint.py).
"""

import dataclasses
from pathlib import Path

from dl_jax import cli
from dl_jax.config import (
    CheckpointConfig,
    DataConfig,
    LogConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

# Fields a resumed run may change: they do not change its results. The data may move, or come
# from another source, but must be the same: workdir.prepare compares its fingerprints.
HARMLESS = ("workdir", "data.", "checkpoint.", "log.")


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig(schedule="cosine")
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()
    workdir: str = "runs/mnist_mlp"  # config, metrics, checkpoints and plots of the run


def main(cfg: Config) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    import jax

    from dl_jax import checkpoint, data, losses, metrics, optim, parallel, plots, train, workdir
    from dl_jax.models import MLP

    model = MLP(cfg.model.features, cfg.model.activation, cfg.model.use_bias)
    loss_fn = losses.get_loss(cfg.train.loss)
    mesh = parallel.make_mesh(cfg.train.num_devices)
    if cfg.log.tensorboard:
        metrics.require_tensorboard()
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    print(f"data: {splits.describe()}; devices: {mesh.devices.size} x {jax.devices()[0].platform}")
    steps = train.check_setup(cfg.train, mesh, splits)
    tx = optim.make_optimizer(
        cfg.optim.name,
        cfg.optim.learning_rate,
        cfg.optim.schedule,
        total_steps=steps * cfg.train.epochs,
    )
    example = train.scale_images(splits.train["image"][:1])

    def init():
        return train.create_train_state(
            model, tx, loss_fn, train.root_keys(cfg.train.seed)[0], example
        )

    # Everything that can fail on bad input has run; only now touch the work directory.
    run_dir = Path(cfg.workdir)  # held by this process since cli.run
    workdir.prepare(run_dir, cfg, HARMLESS, splits.identity())
    with checkpoint.Checkpointer(run_dir / "checkpoints", cfg.checkpoint) as checkpointer:
        state, position, notes = checkpointer.restore_or_init(init, parallel.replicated(mesh))
        for note in notes:
            print(note)
        epochs = train.fit(
            state, splits, cfg.train, mesh, position=position, checkpointer=checkpointer
        )
        metrics.keep_epochs(run_dir / "metrics.jsonl", position.epoch)
        writer = metrics.JsonlWriter(run_dir / "metrics.jsonl")
        board = None
        if cfg.log.tensorboard:
            board = metrics.TensorBoardWriter(run_dir / "tensorboard", position.epoch + 1)
        for _, record in epochs:
            print(metrics.format_epoch(record, cfg.train.epochs), flush=True)
            writer.write(record)
            if board:
                board.write(record["epoch"], {k: v for k, v in record.items() if "/" in k})
        if board:
            board.close()

    if position.epoch == cfg.train.epochs:
        print(f"all {cfg.train.epochs} epochs were already done in {run_dir}")
    plots.plot_history(metrics.read_jsonl(run_dir / "metrics.jsonl"), run_dir / "curves.png")


if __name__ == "__main__":
    cli.run(main, Config(), __doc__)
