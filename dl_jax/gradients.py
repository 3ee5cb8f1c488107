"""What back-propagation through time sends back: the gradient of a loss at the last step with
respect to each earlier input, as a function of the lag (the vanishing-gradient study).

For a many-to-one model, dL/dx_t = dL/dh_T (prod over s = t+1..T of dh_s/dh_{s-1}) dh_t/dx_t:
every step back multiplies by one more Jacobian of the cell, which is why an Elman RNN's
gradient shrinks (or grows) geometrically with the lag T - t, and why a gated cell whose
forget or update gate stays open can keep it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dl_jax import files, metrics, parallel, plots, runs, sequences, train
from dl_jax.config import SequenceConfig, VanishingConfig
from dl_jax.errors import ConfigError, unknown_name
from dl_jax.models.rnn import CELLS, KEEP_GATES
from dl_jax.tasks import Batch, Task

GRADIENT_EXAMPLES = 256  # test sequences the gradient norms are averaged over


def input_gradient_norms(apply_fn, params, task: Task, batch: Batch) -> np.ndarray:
    """[T]: the norm of dL/dx_t for each lag T - t = 0, 1, ..., T - 1, where L is each
    example's own loss, averaged over the examples of `batch` (sequences of one length)."""
    x_BTF, *rest = task.inputs(batch)

    def total_loss(x_BTF):
        return task.loss(apply_fn({"params": params}, x_BTF, *rest), batch).sum()

    grads_BTF = jax.grad(total_loss)(x_BTF)
    norms_T = jnp.linalg.norm(grads_BTF, axis=-1).mean(0)
    return np.asarray(norms_T)[::-1]  # by lag: the last step first


def study(cfg: VanishingConfig) -> dict:
    """Train every cell of `cfg.study.cells` on the memory task at every length of
    `cfg.study.lengths`, each run in `workdir/<cell>/T<length>` (a run that is there resumes,
    or is read back when done), then measure each cell's input gradients at the longest length,
    at initialization and trained. Writes results.json and vanishing_gradients.png into
    `cfg.workdir`; returns the results."""
    for cell in cfg.study.cells:
        if cell not in CELLS:
            raise unknown_name("recurrent cell", cell, CELLS)
    defaults = VanishingConfig()
    for key, study_key in (("model.cell", "cells"), ("model.gate_bias", "gate_biases"),
                           ("task.length", "lengths"), ("task.name", None)):  # fmt: skip
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value != getattr(getattr(defaults, section), name):
            where = f"--study.{study_key} sets it for each run" if study_key else "it is fixed"
            raise ConfigError(f"--{key}={value!r} is invalid here: {where}")
    run_dir = Path(cfg.workdir)  # held by process 0 since cli.run
    # Cells and lengths may be added to a study: the runs done are reused, each checked by its
    # own config.json. In a multi-host run (--dist.*) every process trains every run; process 0
    # writes the files.
    parallel.prepare_workdir(run_dir, cfg, (*runs.HARMLESS, "study."), dataset=None)
    longest = max(cfg.study.lengths)
    accuracy, gradients = {}, {}
    for cell, gate_bias in _variants(cfg):
        label = cell if not gate_bias else f"{cell}, gate bias {gate_bias:g}"
        accuracy[label] = {}
        for length in sorted(cfg.study.lengths):
            if parallel.is_main_process():
                print(f"== {label}, T = {length}", flush=True)
            result = _train(cfg, cell, gate_bias, length)
            final = metrics.read_jsonl(result.run_dir / "metrics.jsonl")[-1]
            accuracy[label][length] = final["test/accuracy"]
        gradients[label] = _gradients(result, cfg.train.seed)  # the longest length's run
    results = {"accuracy": accuracy, "gradients": gradients, "length": longest}
    if not parallel.is_main_process():
        return results
    with files.replacing(run_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(_as_lists(results), indent=1) + "\n")
    plots.plot_vanishing_gradients(
        gradients, accuracy, longest, run_dir / "vanishing_gradients.png"
    )
    return results


def _variants(cfg: VanishingConfig) -> list[tuple[str, float]]:
    """(cell, keep-gate bias) of every series: each gate bias for a gated cell, 0 for Elman's."""
    return [
        (cell, gate_bias)
        for cell in cfg.study.cells
        for gate_bias in (cfg.study.gate_biases if cell in KEEP_GATES else (0.0,))
    ]


def _train(cfg: VanishingConfig, cell: str, gate_bias: float, length: int) -> runs.Result:
    name = cell if not gate_bias else f"{cell}_gate{gate_bias:g}"
    sub_dir = Path(cfg.workdir) / name / f"T{length}"
    sub = SequenceConfig(
        model=dataclasses.replace(cfg.model, cell=cell, gate_bias=gate_bias),
        optim=cfg.optim,
        task=dataclasses.replace(cfg.task, length=length),
        train=cfg.train,
        checkpoint=cfg.checkpoint,
        log=cfg.log,
        dist=cfg.dist,
        workdir=str(sub_dir),
    )
    with parallel.held_by_main_process(sub_dir):
        return sequences.train_and_evaluate(sub)


def _gradients(result: runs.Result, seed: int) -> dict[str, np.ndarray]:
    """The input-gradient norms by lag of the run's model, as initialized and as trained (each
    process alone, on its own copy of the trained parameters)."""
    batch = {k: jnp.asarray(v[:GRADIENT_EXAMPLES]) for k, v in result.splits.test.items()}
    state = result.state.replace(params=parallel.local_copy(result.state.params))
    init_key, _, _ = train.root_keys(seed)
    initial = result.model.init(init_key, *state.task.inputs(batch))["params"]
    return {
        stage: input_gradient_norms(state.apply_fn, params, state.task, batch)
        for stage, params in (("initial", initial), ("trained", state.params))
    }


def _as_lists(tree):
    return jax.tree.map(lambda x: np.asarray(x).tolist() if isinstance(x, np.ndarray) else x, tree)
