"""Registry of built-in datasets and the ``load_dataset`` entry point."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError, DataError, UnknownNameError, closest


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


@dataclass(frozen=True)
class FormatInfo:
    """A user-file format: how to recognise a path and how to load it."""

    name: str
    description: str
    example: str
    detect: Callable[[Path], bool]
    loader: Callable[..., DataBundle]
    fallback: bool = False


_DATASETS: dict[str, DatasetInfo] = {}
_FORMATS: dict[str, FormatInfo] = {}


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


def register_format(
    name: str, *, detect: Callable[[Path], bool], description: str, example: str, fallback: bool = False
) -> Callable[[Callable[..., DataBundle]], Callable[..., DataBundle]]:
    """Register a loader ``(path, **options) -> DataBundle`` for user files.

    ``detect(path)`` says whether a path looks like this format (a detector with more parameters
    gets the loader options of those names, e.g. a text CSV's column names); ``load_dataset(path)``
    uses the first format that claims it, trying ``fallback`` formats (which claim broadly, e.g. any CSV)
    after all the others; ``format=NAME`` (``data.format=NAME``) picks one explicitly.
    """

    def decorate(loader: Callable[..., DataBundle]) -> Callable[..., DataBundle]:
        if name in _FORMATS:
            raise ValueError(f"format {name!r} is registered twice")
        _FORMATS[name] = FormatInfo(name, description, example, detect, loader, fallback)
        return loader

    return decorate


def list_formats() -> list[FormatInfo]:
    """All user-file formats, in registration order."""
    return list(_FORMATS.values())


def list_datasets() -> list[DatasetInfo]:
    """All built-in datasets, sorted by name."""
    return [_DATASETS[name] for name in sorted(_DATASETS)]


def load_named(name: str, options: dict[str, object]) -> DataBundle:
    """The bundle of dataset ``name`` or of user files at that path, ``options`` going to its loader
    (``load_dataset`` is the public entry, which also applies the options of any dataset)."""
    info = _DATASETS.get(name)
    if info is not None:
        return _call(info.loader, f"dataset {name!r}", options)
    if not _looks_like_path(name):
        raise UnknownNameError("dataset", name, _DATASETS)
    path = Path(name)
    if not path.exists():
        raise DataError(f"data path '{name}' not found")
    chosen = options.pop("format", "auto")
    if chosen == "auto":
        ordered = sorted(_FORMATS.values(), key=lambda f: f.fallback)  # stable: registration order within
        matches = [f for f in ordered if _detects(f, path, options)]
        if not matches:
            raise DataError(
                f"cannot tell the format of '{name}'. Formats: "
                + "; ".join(f"{f.name} ({f.description})" for f in _FORMATS.values())
                + ". Name one with data.format=NAME"
            )
        fmt = matches[0]
    elif chosen in _FORMATS:
        fmt = _FORMATS[chosen]
    else:
        raise UnknownNameError("data format", str(chosen), _FORMATS)
    return _call(fmt.loader, f"format {fmt.name!r}", options, path)


def _call(loader: Callable[..., DataBundle], what: str, options: dict[str, object], *args: object) -> DataBundle:
    """Call a loader, turning an unknown option into a ``ConfigError`` that lists the real ones."""
    parameters = list(inspect.signature(loader).parameters)[len(args) :]
    for key in options:
        if key not in parameters:
            guess = closest(key, parameters)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise ConfigError(f"{what} has no option {key!r}.{hint} Its options: {', '.join(parameters)}")
    return loader(*args, **options)


def _detects(fmt: FormatInfo, path: Path, options: dict[str, object]) -> bool:
    """Whether ``fmt`` claims ``path``. A detector that takes some of its loader's options gets them
    (a text CSV is recognised by the columns that ``text=`` and ``label=`` name)."""
    accepted = list(inspect.signature(fmt.detect).parameters)[1:]
    return fmt.detect(path, **{key: value for key, value in options.items() if key in accepted})


def _looks_like_path(name: str) -> bool:
    return any(sep in name for sep in ("/", "\\")) or Path(name).suffix != "" or Path(name).exists()
