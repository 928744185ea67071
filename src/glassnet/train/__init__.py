"""Learning layer: the ``Trainer``, its callbacks, training steps and tasks."""

from glassnet.train import language_model as _language_model  # noqa: F401  (registers "language_model")
from glassnet.train import reconstruction as _reconstruction  # noqa: F401  (registers the "reconstruct" task)
from glassnet.train import seq2seq as _seq2seq  # noqa: F401  (registers the "seq2seq" task)
from glassnet.train import tagging as _tagging  # noqa: F401  (registers the "tag" task)
from glassnet.train.callbacks import (
    EMA,
    BestModel,
    Callback,
    EarlyStopping,
    GradientClipping,
    MetricsLogger,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    TimeLimit,
)
from glassnet.train.checkpoint import load_checkpoint
from glassnet.train.loggers import CSVLogger, TensorBoardLogger
from glassnet.train.lr_finder import LRFinderResult, find_lr
from glassnet.train.seed import seed_everything
from glassnet.train.steps import SupervisedStep
from glassnet.train.tasks import Classification, MultiLabel, Regression, Task, get_task, make_task, register_task
from glassnet.train.trainer import FitResult, Predictions, Trainer

__all__ = [
    "EMA",
    "BestModel",
    "CSVLogger",
    "Callback",
    "Classification",
    "EarlyStopping",
    "FitResult",
    "GradientClipping",
    "LRFinderResult",
    "MetricsLogger",
    "ModelCheckpoint",
    "MultiLabel",
    "Predictions",
    "ProgressBar",
    "Regression",
    "SupervisedStep",
    "TensorBoardLogger",
    "Task",
    "TerminateOnNaN",
    "TimeLimit",
    "Trainer",
    "find_lr",
    "get_task",
    "load_checkpoint",
    "make_task",
    "register_task",
    "seed_everything",
]
