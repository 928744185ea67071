"""glassnet: train a neural network on your data, then open the box (explain, attack, compress, report)."""

import inspect  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from glassnet.compress import compress as _compress  # noqa: E402
from glassnet.config import RunConfig, load_config  # noqa: E402
from glassnet.data import DataBundle, DataSpec, list_datasets, load_dataset, register_dataset  # noqa: E402
from glassnet.data.environments import list_environments, load_environment  # noqa: E402
from glassnet.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    GlassnetError,
    RunError,
    UnknownNameError,
)
from glassnet.explain import explain as _explain  # noqa: E402
from glassnet.models import create_model, list_models, load_model, register_model, save_model  # noqa: E402
from glassnet.pipeline import demo, evaluate, load, predict  # noqa: E402
from glassnet.pipeline import train as _train_run  # noqa: E402
from glassnet.report import report  # noqa: E402
from glassnet.rl import evaluate_policy  # noqa: E402  (registers the RL algorithms and the control task)
from glassnet.robustness import robustness as _robustness  # noqa: E402
from glassnet.stages import Stage, get_stage, list_stages, register_stage, run_stage  # noqa: E402
from glassnet.train import (  # noqa: E402
    EMA,
    BestModel,
    Callback,
    CSVLogger,
    EarlyStopping,
    FitResult,
    GradientClipping,
    MetricsLogger,
    ModelCheckpoint,
    ProgressBar,
    TensorBoardLogger,
    TerminateOnNaN,
    TimeLimit,
    Trainer,
    find_lr,
    seed_everything,
)
from glassnet.train.run import Run  # noqa: E402
from glassnet.train.sources import BatchSource, EnvironmentSource, SampleSource  # noqa: E402
from glassnet.train.steps import Step, register_step  # noqa: E402
from glassnet.version import __version__


class _StageModule(types.ModuleType):
    """A subpackage that is also its stage's main function.

    ``gn.train(config)`` trains a run while ``glassnet.train`` stays the package (so
    ``import glassnet.train.tasks as tasks`` and ``gn.train.Trainer`` keep working).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__stage_function__(*args, **kwargs)


def _make_callable(package: str, function: Callable[..., Any]) -> None:
    module = sys.modules[package]
    module.__class__ = _StageModule
    module.__stage_function__ = function  # type: ignore[attr-defined]
    module.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]


_make_callable("glassnet.train", _train_run)
_make_callable("glassnet.compress", _compress)
_make_callable("glassnet.explain", _explain)
_make_callable("glassnet.robustness", _robustness)
train = sys.modules["glassnet.train"]
compress = sys.modules["glassnet.compress"]
explain = sys.modules["glassnet.explain"]
robustness = sys.modules["glassnet.robustness"]

__all__ = [
    "BatchSource",
    "BestModel",
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "ConfigError",
    "DataBundle",
    "DataError",
    "DataSpec",
    "EMA",
    "EarlyStopping",
    "EnvironmentSource",
    "FitResult",
    "GlassnetError",
    "GradientClipping",
    "MetricsLogger",
    "ModelCheckpoint",
    "ProgressBar",
    "Run",
    "RunConfig",
    "RunError",
    "SampleSource",
    "Stage",
    "Step",
    "TerminateOnNaN",
    "TensorBoardLogger",
    "TimeLimit",
    "Trainer",
    "UnknownNameError",
    "__version__",
    "compress",
    "create_model",
    "demo",
    "evaluate",
    "evaluate_policy",
    "explain",
    "find_lr",
    "get_stage",
    "list_stages",
    "list_datasets",
    "list_environments",
    "list_models",
    "load",
    "load_config",
    "load_dataset",
    "load_environment",
    "load_model",
    "predict",
    "register_dataset",
    "register_model",
    "register_stage",
    "register_step",
    "report",
    "robustness",
    "run_stage",
    "save_model",
    "seed_everything",
    "train",
]
