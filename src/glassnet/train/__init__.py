"""Learning layer: the ``Trainer``, its batch sources, training steps, callbacks and tasks, and ``Run``."""

from glassnet.train import detection as _detection  # noqa: F401  (registers the "detect" task)
from glassnet.train import instances as _instances  # noqa: F401  (registers the "instances" task)
from glassnet.train import language_model as _language_model  # noqa: F401  (registers "language_model")
from glassnet.train import reconstruction as _reconstruction  # noqa: F401  (registers the "reconstruct" task)
from glassnet.train import segmentation as _segmentation  # noqa: F401  (registers the "segment" task)
from glassnet.train import seq2seq as _seq2seq  # noqa: F401  (registers the "seq2seq" task)
from glassnet.train import synthesis as _synthesis  # noqa: F401  (registers "synthesize")
from glassnet.train import tagging as _tagging  # noqa: F401  (registers the "tag" task)
from glassnet.train import transcription as _transcription  # noqa: F401  (registers "transcribe")
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
from glassnet.train.lr_finder import LRFinder, LRFinderResult, find_lr
from glassnet.train.run import Run
from glassnet.train.seed import seed_everything
from glassnet.train.sources import (
    BatchSource,
    DatasetSource,
    DataSource,
    EnvironmentSource,
    SampleSource,
    StreamSource,
    TensorSource,
)
from glassnet.train.steps import Optimization, Step, SupervisedStep, list_steps, make_step, register_step
from glassnet.train.tasks import (
    Classification,
    MultiLabel,
    Regression,
    Task,
    TaskContext,
    TokenTask,
    get_task,
    make_task,
    register_task,
)
from glassnet.train.trainer import FitResult, Predictions, Trainer

__all__ = [
    "EMA",
    "BatchSource",
    "BestModel",
    "CSVLogger",
    "Callback",
    "Classification",
    "DataSource",
    "DatasetSource",
    "EarlyStopping",
    "EnvironmentSource",
    "FitResult",
    "GradientClipping",
    "LRFinder",
    "LRFinderResult",
    "MetricsLogger",
    "ModelCheckpoint",
    "MultiLabel",
    "Optimization",
    "Predictions",
    "ProgressBar",
    "Regression",
    "Run",
    "SampleSource",
    "Step",
    "StreamSource",
    "SupervisedStep",
    "TensorBoardLogger",
    "Task",
    "TaskContext",
    "TensorSource",
    "TerminateOnNaN",
    "TimeLimit",
    "TokenTask",
    "Trainer",
    "find_lr",
    "get_task",
    "list_steps",
    "load_checkpoint",
    "make_step",
    "make_task",
    "register_step",
    "register_task",
    "seed_everything",
]
