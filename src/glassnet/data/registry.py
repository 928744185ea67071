"""Registry of built-in datasets and the ``load_dataset`` entry point."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError, DataError, UnknownNameError


@dataclass(frozen=True)
class DatasetInfo:
    """What ``glassnet datasets`` lists about one built-in dataset."""

    name: str
    task: str
    modality: str
    size: str
    source: str
    description: str
    loader: Callable[..., DataBundle]


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str, *, task: str, modality: str, size: str, source: str, description: str
) -> Callable[[Callable[..., DataBundle]], Callable[..., DataBundle]]:
    """Register a loader ``(**options) -> DataBundle`` under ``name``."""

    def decorate(loader: Callable[..., DataBundle]) -> Callable[..., DataBundle]:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _DATASETS[name] = DatasetInfo(name, task, modality, size, source, description, loader)
        return loader

    return decorate


def list_datasets() -> list[DatasetInfo]:
    """All built-in datasets, sorted by name."""
    return [_DATASETS[name] for name in sorted(_DATASETS)]


def load_dataset(name: str, **options: object) -> DataBundle:
    """Load a built-in dataset (or, later, user files) as a ``DataBundle``.

    Args:
        name: a name from ``list_datasets()``.
        **options: loader options, e.g. ``val_fraction``, ``test_fraction``, ``split_seed``.

    Raises:
        UnknownNameError: ``name`` is neither a built-in dataset nor an existing path.
        DataError: the path does not exist or its format is not supported.
        ConfigError: an option is unknown or has a bad value.
    """
    info = _DATASETS.get(name)
    if info is None:
        if _looks_like_path(name):
            path = Path(name)
            if not path.exists():
                raise DataError(f"data path '{name}' not found")
            raise DataError(
                f"'{name}' is a path, and glassnet cannot read user data files yet; use a built-in "
                f"dataset ({', '.join(sorted(_DATASETS))})"
            )
        raise UnknownNameError("dataset", name, _DATASETS)
    allowed = list(inspect.signature(info.loader).parameters)
    for key in options:
        if key not in allowed:
            raise ConfigError(f"dataset {name!r} has no option {key!r}. Its options: {', '.join(allowed)}")
    return info.loader(**options)


def _looks_like_path(name: str) -> bool:
    return any(sep in name for sep in ("/", "\\")) or Path(name).suffix != "" or Path(name).exists()
