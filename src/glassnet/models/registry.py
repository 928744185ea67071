"""Model registry in the style of timm: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
import functools
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, GlassnetError, UnknownNameError, closest

Builder = Callable[..., nn.Module]

MAX_PARAMS_VARIABLE = "GLASSNET_MAX_PARAMS"
DEFAULT_MAX_PARAMS = 1_000_000_000  # 4 GB of float32 weights, about 16 GB to train with Adam
MAX_LAYERS = 1000  # a hyper-parameter that counts layers, or lists one entry per layer or block
LAYER_COUNTS = ("depth", "layers")  # hyper-parameters that count layers (or blocks per stage, as a list)


@dataclass(frozen=True)
class ModelInfo:
    """What ``glassnet models`` lists about one registered model family."""

    name: str
    modalities: tuple[str, ...]
    tasks: tuple[str, ...]
    description: str
    builder: Builder
    step: str | None = None  # the training step the family needs (None: its task's default)
    channels_last_bf16: bool = True  # NHWC pays under bf16 autocast too (``--fast`` reads it)
    bf16_cpu: bool = True  # bf16 autocast pays on a CPU with bf16 units (``--fast`` reads it)

    def defaults(self) -> dict[str, Any]:
        """The builder's hyper-parameters and their default values."""
        params = list(inspect.signature(self.builder).parameters.values())[1:]
        return {p.name: p.default for p in params}

    def types(self) -> dict[str, Any]:
        """The builder's hyper-parameters and their annotated types (``int``, ``Sequence[int]``, ...)."""
        return _annotations(self.builder)


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    modalities: tuple[str, ...],
    tasks: tuple[str, ...] = ("classify", "regress"),
    description: str = "",
    step: str | None = None,
    channels_last_bf16: bool = True,
    bf16_cpu: bool = True,
) -> Callable[[Builder], Builder]:
    """Register ``builder(spec, **hparams) -> nn.Module`` under ``name``.

    ``step`` names the training step the family trains with when a run names none (default: its
    task's own step), e.g. ``ddpm`` trains with ``diffusion`` where the ``generate`` task's GANs use ``gan``.

    ``channels_last_bf16=False`` says that the NHWC layout slows the family down under bf16 autocast
    (measured), so the fast recipe leaves ``channels_last`` off when it trains in bf16.
    ``bf16_cpu=False`` says that bf16 autocast slows the family down even on a CPU with bf16 units
    (measured), so the fast recipe keeps fp32 for it on a CPU (a GPU still gets bf16).

    Every hyper-parameter must be a keyword argument with a JSON-serialisable default, so a model
    is fully described by its name, its hyper-parameters and its ``DataSpec``.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _MODELS[name] = ModelInfo(name, modalities, tasks, doc, builder, step, channels_last_bf16, bf16_cpu)
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

    Before anything is allocated, the hyper-parameters are checked (``check_hparams``) and the model
    is counted on the ``meta`` device (``check_size``): one above ``max_parameters()`` is refused.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a hyper-parameter is unknown or invalid, the model does not fit the data, or it
            would be larger than ``max_parameters()``.
    """
    resolved = check_model(name, spec, hparams)
    model = _build(name, spec, resolved)
    model.glassnet_arch = {"name": name, "hparams": resolved}
    return model


def check_model(name: str, spec: DataSpec, hparams: dict[str, Any]) -> dict[str, Any]:
    """Everything ``create_model`` checks before it allocates: the model fits the data, its
    hyper-parameters are known and well typed (``check_hparams``) and its size is within the limit
    (``check_size``).

    Returns:
        All hyper-parameters, defaults included.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: as ``create_model``.
    """
    info = model_info(name)
    if not _fits(info, spec):
        fitting = list_models(spec=spec)
        raise ConfigError(
            f"model {name!r} takes {'/'.join(info.modalities)} data for {'/'.join(info.tasks)}, but "
            f"dataset {spec.name or '(unnamed)'!r} is {spec.modality} data for {spec.task}. "
            f"Models that fit it: {', '.join(fitting) or '(none)'}"
        )
    check_hparams(name, hparams)
    resolved = {**info.defaults(), **hparams}
    check_size(name, spec, resolved)
    return resolved


def check_hparams(name: str, hparams: dict[str, Any]) -> None:
    """Check hyper-parameters of model ``name`` by name, type and layer count, before anything is built.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a hyper-parameter is unknown, of the wrong type (``width="abc"``, a nested
            list, a non-finite number) or counts more than ``MAX_LAYERS`` layers.
    """
    info = model_info(name)
    defaults, kinds = info.defaults(), info.types()
    for key, value in hparams.items():
        if key not in defaults:
            guess = closest(key, defaults)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise ConfigError(
                f"model {name!r} has no hyper-parameter {key!r}.{hint} "
                f"Its hyper-parameters: {', '.join(f'{k}={v!r}' for k, v in defaults.items())}"
            )
        kind = kinds.get(key, Any)
        if not _conforms(value, kind):
            raise ConfigError(f"model {name!r}: {key} must be {_describe_type(kind)}. Received: {key}={_short(value)}")
        layers = _layers(key, value)
        if layers > MAX_LAYERS:
            raise ConfigError(
                f"model {name!r}: {key}={_short(value)} builds {layers:,} layers, "
                f"above glassnet's limit of {MAX_LAYERS}"
            )


def _layers(key: str, value: Any) -> int:
    """How many layers (or blocks) a hyper-parameter asks for: a layer count, or one per list entry."""
    if isinstance(value, (list, tuple)):
        return sum(v for v in value if isinstance(v, int)) if key in LAYER_COUNTS else len(value)
    return value if key in LAYER_COUNTS and isinstance(value, int) else 0


def max_parameters() -> int:
    """The largest model ``create_model`` builds: ``$GLASSNET_MAX_PARAMS``, else ``DEFAULT_MAX_PARAMS``.

    Raises:
        ConfigError: the variable is set but is not a positive number (``2e9`` and ``2000000000`` are).
    """
    text = os.environ.get(MAX_PARAMS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PARAMS
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit >= 1):
        raise ConfigError(
            f"{MAX_PARAMS_VARIABLE} must be a positive number of parameters (e.g. 2e9). Received: {text!r}"
        )
    return int(limit)


def check_size(name: str, spec: DataSpec, hparams: dict[str, Any]) -> int:
    """Count the parameters and buffers of model ``name`` without allocating them; refuse a model too large.

    The model is built on PyTorch's ``meta`` device, where tensors have shapes but no memory, so a
    width of a billion costs nothing to count.

    Args:
        name: a registered model name.
        spec: the data the model is for.
        hparams: all of its hyper-parameters (checked by ``check_hparams``).

    Returns:
        The number of values in its parameters and buffers.

    Raises:
        ConfigError: the model cannot be built with these values, or holds more than
            ``max_parameters()`` values; the message says how to raise the limit.
    """
    # a pretrained model's size is that of its architecture: the weights file is not read here
    shapes_only = {**hparams, "pretrained": "none"} if "pretrained" in hparams else hparams
    with torch.device("meta"):
        model = _build(name, spec, shapes_only)
    tensors = [*model.parameters(), *model.buffers()]
    count = sum(t.numel() for t in tensors)
    limit = max_parameters()
    if count > limit:
        size = sum(t.numel() * t.element_size() for t in tensors) / 1e9
        defaults = model_info(name).defaults()
        chosen = ", ".join(f"{k}={_short(v)}" for k, v in hparams.items() if v != defaults[k]) or "its defaults"
        raise ConfigError(
            f"model {name!r} with {chosen} for input shape {list(spec.input_shape)} would have {count:,} parameters "
            f"and buffers ({size:,.1f} GB), above the limit of {limit:,}; choose smaller hyper-parameters, or set "
            f"the environment variable {MAX_PARAMS_VARIABLE} to at least {count}"
        )
    return count


def _build(name: str, spec: DataSpec, hparams: dict[str, Any]) -> nn.Module:
    """``builder(spec, **hparams)``, its complaints about the values as ``ConfigError``."""
    try:
        return model_info(name).builder(spec, **hparams)
    except GlassnetError:  # already says what is wrong (e.g. a missing weights file)
        raise
    except (TypeError, ValueError, OverflowError, RuntimeError, LookupError, AttributeError) as exc:
        # RuntimeError: torch refuses sizes no tensor can have (width=10**30); LookupError and
        # AttributeError: a spec from a damaged model.json lacks or mistypes what a builder reads in `extra`
        reason = (str(exc).strip().splitlines() or [""])[0]
        if isinstance(exc, (LookupError, AttributeError)) or not reason:
            reason = f"{type(exc).__name__}: {reason}"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in hparams.items())
        raise ConfigError(
            f"model {name!r} cannot be built with {shown} for data {spec.name or '(unnamed)'!r}: {reason}"
        ) from exc


@functools.cache
def _annotations(builder: Builder) -> dict[str, Any]:
    try:
        return typing.get_type_hints(builder)
    except (NameError, TypeError):  # an annotation this module cannot resolve is simply not checked
        return {}


def _conforms(value: Any, kind: Any) -> bool:
    """Whether a hyper-parameter value (from Python, YAML or JSON) fits its annotation."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return (
            isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value)
        )
    if kind is str:
        return isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in args)
    if origin in (list, tuple, Sequence):
        item = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(_conforms(v, item) for v in value)
    return True  # other annotations (a Literal, a class) are left to the builder's own checks


def _describe_type(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(arm) for arm in args)
    if origin in (list, tuple, Sequence):
        return f"a list of {_describe_type(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", type(None): "null"}
    return names.get(kind, str(kind))


def _short(value: Any) -> str:
    """``repr(value)`` cut to one readable line (a hostile model.json may hold a huge value)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fits(info: ModelInfo, spec: DataSpec) -> bool:
    # a classifier's head (one logit per class) serves multi-label data as it is: one logit per label
    task_ok = spec.task in info.tasks or (spec.task == "multilabel" and "classify" in info.tasks)
    return spec.modality in info.modalities and task_ok
