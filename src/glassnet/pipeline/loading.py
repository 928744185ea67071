"""``glassnet.load``: a trained run as a Python object (model, spec, config, data, results)."""

from __future__ import annotations

import os

from glassnet.train.run import Run


def load(run_dir: str | os.PathLike[str] | Run) -> Run:
    """Open a run and read its model and configuration now (nothing is unpickled); its data on first use.

    Raises:
        RunError: the directory is missing or incomplete.
        CheckpointError: model.json or the weights are corrupt.
        ConfigError: config.yaml is invalid.
    """
    run = Run.open(run_dir)
    _ = run.model, run.config  # a broken file fails here, not in the middle of a later stage
    return run
