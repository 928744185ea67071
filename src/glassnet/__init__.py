"""glassnet: train a neural network on your data, then open the box (explain, attack, compress, report).

The public names load on first use (PEP 562): ``import glassnet`` stays light, so the ``glassnet``
command answers ``--help`` without importing torch, while ``gn.Trainer``, ``from glassnet import
load_dataset`` and ``dir(glassnet)`` behave as if everything had been imported up front.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any

from glassnet.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GlassnetError,
    RunError,
    UnknownNameError,
)
from glassnet.lazy import lazy_exports
from glassnet.version import __version__

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "RunConfig": "glassnet.config",
    "load_config": "glassnet.config",
    "DataBundle": "glassnet.data",
    "DataSpec": "glassnet.data",
    "list_datasets": "glassnet.data",
    "load_dataset": "glassnet.data",
    "register_dataset": "glassnet.data",
    "list_environments": "glassnet.data.environments",
    "load_environment": "glassnet.data.environments",
    "create_model": "glassnet.models",
    "list_models": "glassnet.models",
    "load_model": "glassnet.models",
    "register_model": "glassnet.models",
    "save_model": "glassnet.models",
    "demo": "glassnet.pipeline",
    "evaluate": "glassnet.pipeline",
    "load": "glassnet.pipeline",
    "predict": "glassnet.pipeline",
    "evaluate_policy": "glassnet.rl",
    "Stage": "glassnet.stages",
    "get_stage": "glassnet.stages",
    "list_stages": "glassnet.stages",
    "register_stage": "glassnet.stages",
    "run_stage": "glassnet.stages",
    "EMA": "glassnet.train",
    "BestModel": "glassnet.train",
    "Callback": "glassnet.train",
    "CSVLogger": "glassnet.train",
    "EarlyStopping": "glassnet.train",
    "FitResult": "glassnet.train",
    "GradientClipping": "glassnet.train",
    "MetricsLogger": "glassnet.train",
    "ModelCheckpoint": "glassnet.train",
    "ProgressBar": "glassnet.train",
    "TensorBoardLogger": "glassnet.train",
    "TerminateOnNaN": "glassnet.train",
    "TimeLimit": "glassnet.train",
    "Trainer": "glassnet.train",
    "find_lr": "glassnet.train",
    "seed_everything": "glassnet.train",
    "Run": "glassnet.train.run",
    "synthesize": "glassnet.train.synthesis",
    "BatchSource": "glassnet.train.sources",
    "EnvironmentSource": "glassnet.train.sources",
    "SampleSource": "glassnet.train.sources",
    "Step": "glassnet.train.steps",
    "register_step": "glassnet.train.steps",
}

# subpackages that are also their stage's main function: name -> (module, function) it calls
_STAGE_FUNCTIONS = {
    "train": ("glassnet.pipeline", "train"),
    "compress": ("glassnet.compress", "compress"),
    "explain": ("glassnet.explain", "explain"),
    "generate": ("glassnet.generate.sampling", "generate"),
    "robustness": ("glassnet.robustness", "robustness"),
}


def _stage_function(package: str) -> Any:
    module, name = _STAGE_FUNCTIONS[package.rpartition(".")[2]]
    return getattr(importlib.import_module(module), name)


class _StageModule(types.ModuleType):
    """A subpackage that is also its stage's main function.

    ``gn.train(config)`` trains a run while ``glassnet.train`` stays the package (so
    ``import glassnet.train.tasks as tasks`` and ``gn.train.Trainer`` keep working).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _stage_function(self.__name__)(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(_stage_function(self.__name__))


def _stage_package(name: str) -> property:
    """``glassnet.<name>``: the subpackage, made callable whenever and however it is imported."""

    def get(module: types.ModuleType) -> types.ModuleType:
        package = module.__dict__.get(name) or importlib.import_module(f"{__name__}.{name}")
        package.__class__ = _StageModule
        return package

    def set(module: types.ModuleType, package: types.ModuleType) -> None:
        # the import system sets the attribute once the subpackage has loaded
        package.__class__ = _StageModule
        module.__dict__[name] = package
        if name == "train":  # the RL steps and the control task register in the trainer's registries
            importlib.import_module(f"{__name__}.rl")
            importlib.import_module(f"{__name__}.generate.task")  # the generate task

    return property(get, set)


def _report(module: types.ModuleType) -> Any:
    from glassnet.report import report

    return report


class _Glassnet(types.ModuleType):
    """The ``glassnet`` module: attributes whose name is also a subpackage's are resolved here, so that
    importing the subpackage (which sets the attribute) cannot replace what ``gn.<name>`` means."""

    train = _stage_package("train")
    compress = _stage_package("compress")
    explain = _stage_package("explain")
    generate = _stage_package("generate")
    robustness = _stage_package("robustness")
    # gn.report is the function; importing the glassnet.report package must not turn it into the package
    report = property(_report, lambda module, value: None)


sys.modules[__name__].__class__ = _Glassnet


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
    "generate",
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
    "synthesize",
    "train",
]

# a public name loads on first access and is kept (PEP 562)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
