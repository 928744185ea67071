"""``glassnet.load``: a trained run as a Python object (model, spec, config, results)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassnet.config import RunConfig, read_yaml
from glassnet.data.spec import DataSpec
from glassnet.models import load_model
from glassnet.runs import RunDir
from glassnet.train import Predictions, Trainer


@dataclass
class Run:
    """A loaded run directory.

    Attributes:
        path: the run directory.
        model: the trained model, in eval mode, rebuilt from model.json + model.safetensors.
        spec: the ``DataSpec`` it was built for.
        config: the resolved training configuration (None if config.yaml is absent).
    """

    path: Path
    model: nn.Module
    spec: DataSpec
    config: RunConfig | None

    def result(self, stage: str) -> dict[str, Any] | None:
        """``results/<stage>.json`` as a dict, or None when that stage has not run."""
        return RunDir(self.path).read_result(stage)

    def predict(self, inputs: torch.Tensor) -> Predictions:
        """Predictions for a batch of inputs in natural units (images in [0, 1])."""
        return Trainer(task=self.spec.task, device="cpu").predict(self.model, inputs)


def load(run_dir: str | os.PathLike[str]) -> Run:
    """Rebuild a run's model from its files; nothing is unpickled.

    Raises:
        RunError: the directory is missing or incomplete.
        CheckpointError: model.json or the weights are corrupt.
        ConfigError: config.yaml is invalid.
    """
    run = RunDir(run_dir)
    model, spec = load_model(run.path)
    config = RunConfig.from_dict(read_yaml(run.config), source=str(run.config)) if run.config.is_file() else None
    return Run(path=run.path, model=model, spec=spec, config=config)
