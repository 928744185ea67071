"""``glassnet demo``: the main job on a built-in dataset, from data to report card."""

from __future__ import annotations

import os
from typing import IO

from glassnet.config import RunConfig
from glassnet.pipeline.training import train
from glassnet.stages import list_stages
from glassnet.train.run import Run

DEMO_CONFIG = RunConfig(
    data="digits",
    model="cnn",
    model_args={"channels": [32, 64], "hidden": 128, "dropout": 0.25},
    epochs=30,
    batch_size=32,
    optimizer="adamw",
    lr=3e-3,
    weight_decay=1e-2,
    schedule="onecycle",
    monitor="val/loss",
    seed=0,
)


def demo(
    out: str | os.PathLike[str] = "runs/demo",
    config: RunConfig | None = None,
    progress: IO[str] | None = None,
    audit: bool = True,
) -> Run:
    """The main job: train a CNN on ``digits``, run every registered stage on it, write the report card.

    Training evaluates the model on the held-out test split; the registered stages then run in
    their order with the options each declares for the demo, sized to take seconds on two CPU cores:
    explain (integrated gradients with the trust checks), robustness (accuracy against L-inf eps with
    the AutoAttack-style worst case), compress (int8 variants and an ONNX export, measured against
    the original) and the report. Each writes ``results/<stage>.json`` and its figures. The data and
    the model are opened once: every stage gets the ``Run`` that training returned. ``out`` is
    replaced if it already holds a demo run: the demo is fully reproducible from its configuration
    and seed.

    Args:
        out: the run directory.
        config: the training configuration (default ``DEMO_CONFIG``).
        progress: stream for the progress bar and stage lines (None is silent).
        audit: run the audit stages after training (the report is written either way).

    Returns:
        The ``Run``, with ``report.html`` written.
    """
    run = train(config or DEMO_CONFIG, out=out, overwrite=True, progress=progress)
    for stage in list_stages():
        if stage.demo is None or (stage.audit and not audit) or not stage.applies_to(run.spec.task):
            continue
        options, line = stage.demo(run)
        if line and progress is not None:
            print(f"{stage.name}: {line}", file=progress, flush=True)
        if stage.takes_progress:
            options.setdefault("progress", progress)
        stage.run(run, **options)
    return run
