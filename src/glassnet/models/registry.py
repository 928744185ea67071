"""Model registry in the style of timm: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, GlassnetError, UnknownNameError, closest

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What ``glassnet models`` lists about one registered model family."""

    name: str
    modalities: tuple[str, ...]
    tasks: tuple[str, ...]
    description: str
    builder: Builder

    def defaults(self) -> dict[str, Any]:
        """The builder's hyper-parameters and their default values."""
        params = list(inspect.signature(self.builder).parameters.values())[1:]
        return {p.name: p.default for p in params}


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    modalities: tuple[str, ...],
    tasks: tuple[str, ...] = ("classify", "regress"),
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Register ``builder(spec, **hparams) -> nn.Module`` under ``name``.

    Every hyper-parameter must be a keyword argument with a JSON-serialisable default, so a model
    is fully described by its name, its hyper-parameters and its ``DataSpec``.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _MODELS[name] = ModelInfo(name, modalities, tasks, doc, builder)
        return builder

    return decorate


def list_models(pattern: str = "*", spec: DataSpec | None = None) -> list[str]:
    """Registered model names matching a wildcard, optionally only those that fit ``spec``."""
    names = sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))
    if spec is not None:
        names = [n for n in names if _fits(_MODELS[n], spec)]
    return names


def model_info(name: str) -> ModelInfo:
    """The ``ModelInfo`` of a registered model; raises ``UnknownNameError`` with a suggestion."""
    if name not in _MODELS:
        raise UnknownNameError("model", name, _MODELS)
    return _MODELS[name]


def create_model(name: str, spec: DataSpec, **hparams: Any) -> nn.Module:
    """Build a registered model for ``spec``.

    The returned module carries ``glassnet_arch = {"name": ..., "hparams": ...}`` (all
    hyper-parameters, defaults included), which is what ``model.json`` stores.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a hyper-parameter is unknown or invalid, or the model does not fit the data.
    """
    info = model_info(name)
    if not _fits(info, spec):
        fitting = list_models(spec=spec)
        raise ConfigError(
            f"model {name!r} takes {'/'.join(info.modalities)} data for {'/'.join(info.tasks)}, but "
            f"dataset {spec.name or '(unnamed)'!r} is {spec.modality} data for {spec.task}. "
            f"Models that fit it: {', '.join(fitting) or '(none)'}"
        )
    defaults = info.defaults()
    for key in hparams:
        if key not in defaults:
            guess = closest(key, defaults)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise ConfigError(
                f"model {name!r} has no hyper-parameter {key!r}.{hint} "
                f"Its hyper-parameters: {', '.join(f'{k}={v!r}' for k, v in defaults.items())}"
            )
    resolved = {**defaults, **hparams}
    try:
        model = info.builder(spec, **resolved)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, GlassnetError):  # already says what is wrong (e.g. a missing weights file)
            raise
        raise ConfigError(f"model {name!r} rejected its hyper-parameters {hparams}: {exc}") from exc
    model.glassnet_arch = {"name": name, "hparams": resolved}
    return model


def _fits(info: ModelInfo, spec: DataSpec) -> bool:
    # a classifier's head (one logit per class) serves multi-label data as it is: one logit per label
    task_ok = spec.task in info.tasks or (spec.task == "multilabel" and "classify" in info.tasks)
    return spec.modality in info.modalities and task_ok
