"""``glassnet demo``: the main job on a built-in dataset, from data to report card."""

from __future__ import annotations

import importlib.util
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
    out: str | os.PathLike[str] = "runs/demo",
    config: RunConfig | None = None,
    progress: IO[str] | None = None,
    audit: bool = True,
) -> RunDir:
    """The main job: train a CNN on ``digits``, audit it, and write the report card.

    Training evaluates the model on the held-out test split; the audit then explains its decisions
    (integrated gradients with the trust checks), attacks it (accuracy against L-inf eps with the
    AutoAttack-style worst case) and compresses it (int8 variants and an ONNX export, measured
    against the original), each stage writing ``results/<stage>.json`` and its figures, so the
    report card shows all of it. ``out`` is replaced if it already holds a demo run: the demo is
    fully reproducible from its configuration and seed.

    Args:
        out: the run directory.
        config: the training configuration (default ``DEMO_CONFIG``).
        progress: stream for the progress bar and stage lines (None is silent).
        audit: run the explain, attack and compress stages after training.

    Returns:
        The run directory, with ``report.html`` written.
    """
    run = train(config or DEMO_CONFIG, out=out, overwrite=True, progress=progress)
    if audit:
        _audit(run, progress)
    report(run.path)
    return run


def _audit(run: RunDir, progress: IO[str] | None) -> None:
    """The demo's audit stages, sized to take seconds on two CPU cores."""
    from glassnet.compress.run import compress_run
    from glassnet.explain import explain_run
    from glassnet.robust.stage import attack_run

    _say(progress, "explain: integrated gradients on 32 test digits, with the trust checks")
    explain_run(run.path, method="integrated_gradients", n=32)
    _say(progress, "attack: APGD, Square and PGD on 200 test digits, L-inf eps up to 0.1")
    attack_run(run.path, limit=200, apgd_steps=20, square_queries=200)
    onnx = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime", "onnxscript"))
    if onnx:
        _say(progress, "compress: int8 quantisation (PyTorch and ONNX Runtime) and an ONNX export")
        compress_run(run.path, quantize=["int8"], export_format="onnx")
    else:
        _say(progress, "compress: PyTorch int8 only (`pip install glassnet[compress]` adds ONNX and ONNX Runtime)")
        compress_run(run.path, quantize=["torch-dynamic", "torch-static"], export_format=None)


def _say(stream: IO[str] | None, line: str) -> None:
    if stream is not None:
        print(line, file=stream, flush=True)
