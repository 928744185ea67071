"""Workflow layer: the stages of the main job over one run directory."""

from glassnet.pipeline.demo import DEMO_CONFIG, demo
from glassnet.pipeline.loading import Run, load
from glassnet.pipeline.predicting import predict
from glassnet.pipeline.training import evaluate, train

__all__ = ["DEMO_CONFIG", "Run", "demo", "evaluate", "load", "predict", "train"]
