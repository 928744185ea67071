"""Workflow layer: the stages of the main job over one run directory."""

import glassnet.rl  # noqa: F401  (the RL algorithms and the control task, for runs that learn from an environment)
from glassnet.pipeline.demo import DEMO_CONFIG, demo
from glassnet.pipeline.loading import Run, load
from glassnet.pipeline.predicting import predict
from glassnet.pipeline.training import evaluate, train

__all__ = ["DEMO_CONFIG", "Run", "demo", "evaluate", "load", "predict", "train"]
