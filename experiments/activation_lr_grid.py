"""The activation x learning-rate study: every cell of the grid trained at once, in one program.

    python experiments/activation_lr_grid.py --data.dir=PATH --workdir=runs/grid
    python experiments/activation_lr_grid.py --data.source=sample --train.epochs=2
    python experiments/activation_lr_grid.py --recipe=seed_exact --grid.activations='("tanh",)' \\
        --grid.learning_rates='(1.0,)' --grid.seeds='(0,1,2)' --train.epochs=10
    python experiments/activation_lr_grid.py --model.name=lenet5 --data.dir=PATH \\
        --grid.activations=sigmoid,tanh,relu --grid.learning_rates='(0.01,0.1,1.0)' --train.epochs=2

A model (by default the MLP 784-128-64-10; --model.name=lenet5 or cnn and the other --model.*
fields as in mnist_cnn.py) is trained for every activation, learning rate, seed (and
optimizer) of --grid.* with one of three recipes (dl_jax/recipes.py): `modern` (the default:
biases, minibatches of 128, softmax cross-entropy, SGD), `seed` (the slides' procedure for the
MLP: one example per step, squared error, no biases) or `seed_exact` (the update the slides'
code really applies; the MLP only, too).

Writes into --workdir: config.json; results.csv (a row per cell and epoch, appended as each
epoch ends); checkpoints/; at the end results.md (the final table), heatmap.png and
curves.png; and, with --log.tensorboard=True, tensorboard/. Running the same command again
resumes an interrupted grid from its last checkpoint (see dl_jax/checkpoint.py).
"""

from pathlib import Path

from dl_jax import cli
from dl_jax.config import SweepConfig

# Fields a resumed run may change: they do not change its results. The data may move, or come
# from another source, but must be the same: workdir.prepare compares its fingerprints.
# Both conv implementations compute the same function on the same parameters.
HARMLESS = ("workdir", "data.", "checkpoint.", "log.", "dist.", "grid.workers",
            "grid.num_devices", "model.conv_impl")  # fmt: skip


DEFAULTS = SweepConfig()


def main(cfg: SweepConfig) -> None:
    # Heavy imports after the arguments are parsed, so --help and argument errors are instant.
    import jax
    import numpy as np

    from dl_jax import (
        checkpoint,
        data,
        files,
        metrics,
        models,
        parallel,
        plots,
        recipes,
        sweep,
        train,
    )

    recipe = recipes.get_recipe(cfg.recipe)
    sweep.check_grid(cfg.grid, recipe, cfg.model)
    if cfg.log.tensorboard:
        metrics.require_tensorboard()
    splits = data.load(cfg.data.name, cfg.data.source, cfg.data.dir, cfg.data.tfds_dir)
    model = models.build(sweep.model_config(cfg.model, recipe), activation="relu")
    train.check_outputs(model, sweep.cell_task(recipe), splits)  # any cell's outputs
    cells = sweep.grid_cells(cfg.grid)
    print(
        f"data: {splits.describe()}; {len(cells)} cells of {cfg.model.name}, recipe {cfg.recipe}; "
        f"{jax.devices()[0].platform}"
    )

    def init():
        return sweep.init_grid(cfg.grid, cfg.recipe, cfg.model)

    # Everything that can fail on bad input has run; only now touch the work directory. In a
    # multi-host run (--dist.*) every process trains its share of the cells and saves its part
    # of each checkpoint; process 0, which holds the directory since cli.run, writes the rest.
    run_dir = Path(cfg.workdir)
    parallel.check_same_data(splits.fingerprints)
    main_process = parallel.is_main_process()
    parallel.prepare_workdir(run_dir, cfg, HARMLESS, splits.identity())
    results = run_dir / "results.csv"
    with checkpoint.Checkpointer(run_dir / "checkpoints", cfg.checkpoint) as checkpointer:
        everywhere = parallel.replicated(parallel.make_mesh())  # each host can read it all
        state, position, notes = checkpointer.restore_or_init(init, everywhere)
        for note in notes:
            print(note)
        epochs = sweep.train_grid(
            cfg.grid,
            cfg.recipe,
            cfg.model,
            splits,
            cfg.train.epochs,
            state=state,
            position=position,
            checkpointer=checkpointer,
            profile_dir=run_dir / "profile" if cfg.log.profile else None,
        )
        writer = board = None
        if main_process:
            metrics.keep_epochs(results, position.epoch)
            writer = metrics.CsvWriter(results, metrics.GRID_COLUMNS)
            if cfg.log.tensorboard:
                board = metrics.TensorBoardWriter(run_dir / "tensorboard", position.epoch + 1)
        for record in epochs:
            if writer:
                writer.write(metrics.grid_rows(cells, record))
            if board:
                board.write(record["epoch"], metrics.grid_scalars(cells, record))
            if not main_process:  # the other processes print their start-up line and errors only
                continue
            best = np.where(record["diverged"], -1, record["test_accuracy"]).argmax()
            print(
                f"Epoch {record['epoch']}/{cfg.train.epochs} - {record['seconds']:.1f}s - best: "
                f"{cells[best].activation} lr {cells[best].learning_rate:g} "
                f"{100 * record['test_accuracy'][best]:.2f}% - diverged: "
                f"{int(record['diverged'].sum())}/{len(cells)}",
                flush=True,
            )
        if board:
            board.close()

    if not main_process:
        return
    records = metrics.read_grid_records(results, cells)
    table = metrics.grid_table(cells, records[-1])
    with files.replacing(run_dir / "results.md") as tmp:
        tmp.write_text(table)
    plots.plot_heatmap(cells, records[-1], run_dir / "heatmap.png")
    plots.plot_grid_curves(cells, records, run_dir / "curves.png")
    total = sum(r["seconds"] for r in records)
    print(
        f"\n{table}\nTraining took {total:.1f}s for {len(cells)} cells x {len(records)} "
        f"epochs; results in {run_dir}/"
    )


if __name__ == "__main__":
    cli.run(main, DEFAULTS, __doc__)
