"""Learning layer: the ``Trainer``, its callbacks, training steps and tasks."""

from glassnet.train import language_model as _language_model  # noqa: F401  (registers "language_model")
from glassnet.train import reconstruction as _reconstruction  # noqa: F401  (registers the "reconstruct" task)
from glassnet.train import seq2seq as _seq2seq  # noqa: F401  (registers the "seq2seq" task)
from glassnet.train.callbacks import BestModel, Callback, EarlyStopping, MetricsLogger, ProgressBar
from glassnet.train.seed import seed_everything
from glassnet.train.steps import SupervisedStep
from glassnet.train.tasks import Classification, Regression, Task, get_task, register_task
from glassnet.train.trainer import FitResult, Predictions, Trainer

__all__ = [
    "BestModel",
    "Callback",
    "Classification",
    "EarlyStopping",
    "FitResult",
    "MetricsLogger",
    "Predictions",
    "ProgressBar",
    "Regression",
    "SupervisedStep",
    "Task",
    "Trainer",
    "get_task",
    "register_task",
    "seed_everything",
]
