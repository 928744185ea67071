"""``glassnet demo``: the main job on a built-in dataset, from data to report card."""

from __future__ import annotations

import os
from typing import IO

from glassnet.config import RunConfig
from glassnet.pipeline.training import train
from glassnet.report import report
from glassnet.runs import RunDir

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
    out: str | os.PathLike[str] = "runs/demo", config: RunConfig | None = None, progress: IO[str] | None = None
) -> RunDir:
    """Train a CNN on ``digits``, evaluate it on the held-out test split and write the report card.

    ``out`` is replaced if it already holds a demo run: the demo is fully reproducible from its
    configuration and seed.

    Returns:
        The run directory, with ``report.html`` written.
    """
    run = train(config or DEMO_CONFIG, out=out, overwrite=True, progress=progress)
    report(run.path)
    return run
