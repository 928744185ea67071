"""The step registry: ``@register_step`` and ``make_step``, behind the run configuration's ``step`` key."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glassnet.errors import ConfigError, UnknownNameError, closest

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.train.steps.base import Step

Builder = Callable[..., "Step"]


@dataclass(frozen=True)
class StepInfo:
    """One registered training step: ``builder(spec, augment=None, **options) -> Step``."""

    name: str
    description: str
    builder: Builder

    def options(self) -> dict[str, Any]:
        """The builder's options and their defaults (its parameters after ``spec`` and ``augment``)."""
        params = list(inspect.signature(self.builder).parameters.values())[2:]
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}

    def takes_any_option(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self.builder).parameters.values())


_STEPS: dict[str, StepInfo] = {}


def register_step(name: str, *, description: str = "") -> Callable[[Builder], Builder]:
    """Register ``builder(spec, augment=None, **options) -> Step`` under ``name``.

    A new learning scheme (semi-supervised, GAN, an RL algorithm) is a step class and one
    registration: ``glassnet train ... step.name=NAME step.<option>=VALUE`` then selects it.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _STEPS:
            raise ValueError(f"step {name!r} is registered twice")
        doc = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _STEPS[name] = StepInfo(name, doc, builder)
        return builder

    return decorate


def list_steps() -> list[str]:
    """Registered step names, sorted."""
    return sorted(_STEPS)


def step_info(name: str) -> StepInfo:
    """The ``StepInfo`` of a registered step; ``UnknownNameError`` with a suggestion otherwise."""
    if name not in _STEPS:
        raise UnknownNameError("training step", name, _STEPS)
    return _STEPS[name]


def make_step(name: str, spec: DataSpec | None = None, augment: Any = None, **options: Any) -> Step:
    """Build the registered step ``name`` for data described by ``spec``.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: an option is unknown or invalid, or the step does not fit the data.
    """
    info = step_info(name)
    if not info.takes_any_option():
        known = info.options()
        for key in options:
            if key not in known:
                guess = closest(key, known)
                hint = f" Did you mean {guess!r}?" if guess else ""
                listed = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
                raise ConfigError(f"step {name!r} has no option {key!r}.{hint} Its options: {listed}")
    step = info.builder(spec, augment, **options)
    step.name = name
    return step


def step_from_options(options: dict[str, Any], spec: DataSpec, augment: Any, default: str) -> Step:
    """The step a run configuration's ``step`` mapping names (``{"name": ..., **options}``), or ``default``.

    Raises:
        ConfigError: options are given without a ``name``.
    """
    options = dict(options)
    name = options.pop("name", None)
    if name is None:
        if options:
            raise ConfigError(
                f"step options {sorted(options)} need the step's name: step.name=NAME "
                f"(one of {', '.join(list_steps())})"
            )
        name = default
    if not isinstance(name, str):
        raise ConfigError(f"step.name must be a step name (one of {', '.join(list_steps())}). Received: {name!r}")
    return make_step(name, spec, augment, **options)
