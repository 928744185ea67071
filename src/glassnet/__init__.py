"""glassnet: train a neural network on your data, then open the box (explain, attack, compress, report)."""

__version__ = "0.1.0"

from glassnet.config import RunConfig, load_config  # noqa: E402
from glassnet.data import DataBundle, DataSpec, list_datasets, load_dataset, register_dataset  # noqa: E402
from glassnet.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    GlassnetError,
    RunError,
    UnknownNameError,
)
from glassnet.models import create_model, list_models, load_model, register_model, save_model  # noqa: E402
from glassnet.pipeline import Run, demo, evaluate, load, predict, train  # noqa: E402
from glassnet.report import report  # noqa: E402
from glassnet.train import (  # noqa: E402
    BestModel,
    Callback,
    EarlyStopping,
    MetricsLogger,
    ProgressBar,
    Trainer,
    seed_everything,
)

__all__ = [
    "BestModel",
    "Callback",
    "CheckpointError",
    "ConfigError",
    "DataBundle",
    "DataError",
    "DataSpec",
    "EarlyStopping",
    "GlassnetError",
    "MetricsLogger",
    "ProgressBar",
    "Run",
    "RunConfig",
    "RunError",
    "Trainer",
    "UnknownNameError",
    "__version__",
    "create_model",
    "demo",
    "evaluate",
    "list_datasets",
    "list_models",
    "load",
    "load_config",
    "load_dataset",
    "load_model",
    "predict",
    "register_dataset",
    "register_model",
    "report",
    "save_model",
    "seed_everything",
    "train",
]
