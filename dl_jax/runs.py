"""One run trained end to end into its work directory, for any model, task and data.

`train_and_evaluate` is the body of every single-run experiment (mnist_mlp.py, mnist_cnn.py,
sequence_mnist.py, bit_counting.py, seq2seq.py): the experiment builds the model, the task and
the data splits from its config, and `train_and_evaluate` does the rest. The work directory gets
config.json, metrics.jsonl (one JSON object per epoch, appended as each ends), checkpoints/,
curves.png, with --log.tensorboard=True tensorboard/, and with --log.profile=True profile/, a
`jax.profiler` trace of one chunk of training steps. Running the same command again resumes.

The config is any config tree with `optim`, `train`, `checkpoint`, `log` and `workdir` fields
(`config.ClassifierConfig`, `config.SequenceConfig`). In a multi-host run (`--dist.*`) every
process trains its share of each batch and takes part in the checkpoint saves; only process 0
writes config.json, metrics.jsonl, the plots and TensorBoard files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flax.linen as nn
import jax

from dl_jax import checkpoint, metrics, optim, parallel, plots, tasks, train
from dl_jax import workdir as workdirs
from dl_jax.data import Splits
from dl_jax.tasks import Task
from dl_jax.train import TrainState

# Fields a resumed run may change in every experiment: they do not change its results.
HARMLESS = ("workdir", "checkpoint.", "log.", "dist.")


@dataclasses.dataclass
class Result:
    """What a finished run leaves in memory: its model, trained state, data and directory."""

    model: nn.Module
    state: TrainState
    splits: Splits
    run_dir: Path
    main_process: bool = True  # whether this process writes the run's files (multi-host: 0)


def train_and_evaluate(
    cfg, model: nn.Module, task: Task, splits: Splits, harmless: tuple[str, ...] = ()
) -> Result:
    """Train `model` on `task` over `splits`, resuming from `cfg.workdir` if a run is there.

    A resumed run may change only the `HARMLESS` fields and `harmless` (dotted keys, or
    prefixes ending in a dot), and must see the same data (compared by fingerprints).
    Everything that can fail on bad input fails before the work directory is touched.
    """
    mesh = parallel.make_mesh(cfg.train.num_devices)
    if cfg.log.tensorboard:
        metrics.require_tensorboard()
    print(
        f"data: {splits.describe()}; model: {cfg.model.name}; devices: {mesh.devices.size} x "
        f"{jax.devices()[0].platform}"
    )
    steps = train.check_setup(cfg.train, mesh, splits)
    tx = optim.make_optimizer(
        cfg.optim.name,
        cfg.optim.learning_rate,
        cfg.optim.schedule,
        total_steps=steps * cfg.train.epochs,
    )
    example = tasks.example_batch(splits.train)

    def init():
        return train.create_train_state(model, tx, task, cfg.train.seed, example)

    run_dir = Path(cfg.workdir)  # held by process 0 since cli.run
    parallel.check_same_data(splits.fingerprints)
    main_process = parallel.is_main_process()  # the one that writes files; all save checkpoints
    parallel.on_main_process(
        lambda: workdirs.prepare(run_dir, cfg, HARMLESS + tuple(harmless), splits.identity()),
        f"prepare {run_dir}",
    )
    with checkpoint.Checkpointer(run_dir / "checkpoints", cfg.checkpoint) as checkpointer:
        state, position, notes = checkpointer.restore_or_init(init, parallel.replicated(mesh))
        for note in notes:
            print(note)
        profile_dir = run_dir / "profile" if cfg.log.profile else None
        epochs = train.fit(
            state,
            splits,
            cfg.train,
            mesh,
            position=position,
            checkpointer=checkpointer,
            profile_dir=profile_dir,
        )
        writer = board = None
        if main_process:
            metrics.keep_epochs(run_dir / "metrics.jsonl", position.epoch)
            writer = metrics.JsonlWriter(run_dir / "metrics.jsonl")
            if cfg.log.tensorboard:
                board = metrics.TensorBoardWriter(run_dir / "tensorboard", position.epoch + 1)
        for trained, record in epochs:
            state = trained
            print(metrics.format_epoch(record, cfg.train.epochs), flush=True)
            if writer:
                writer.write(record)
            if board:
                board.write(record["epoch"], {k: v for k, v in record.items() if "/" in k})
        if board:
            board.close()

    if position.epoch == cfg.train.epochs:
        print(f"all {cfg.train.epochs} epochs were already done in {run_dir}")
    elif profile_dir:
        print(
            f"profile: one chunk of training steps traced in {profile_dir} (tensorboard "
            f"--logdir={profile_dir}, or its perfetto_trace.json.gz in ui.perfetto.dev)"
        )
    if main_process:
        plots.plot_history(metrics.read_jsonl(run_dir / "metrics.jsonl"), run_dir / "curves.png")
    return Result(model, state, splits, run_dir, main_process)
