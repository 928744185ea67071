"""Building an algorithm's step from the run configuration's ``step`` options, with clear errors."""

from __future__ import annotations

import inspect
from typing import Any

from glassnet.errors import ConfigError, closest


def construct(cls: type, name: str, spec: Any, options: dict[str, Any]) -> Any:
    """``cls(**options)`` for the RL algorithm ``name``, after checking the data and the option names.

    Raises:
        ConfigError: the data is not an environment, or an option is unknown (with the closest name).
    """
    if spec is not None and spec.task != "control":
        raise ConfigError(
            f"{name} learns from an environment (glassnet train --env ID --algo {name}); this data is for {spec.task}"
        )
    known = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in options:
        if key not in known:
            # a shortened name (gae for gae_lambda) means its one completion; else the closest spelling
            completions = [k for k in known if k.startswith(key)]
            guess = completions[0] if len(completions) == 1 else closest(key, known)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise ConfigError(f"{name} has no option {key!r}.{hint} Its options: {', '.join(known)}")
    if options.get("vectorization", "sync") not in ("sync", "async"):
        raise ConfigError(f"step.vectorization must be sync or async. Received: {options['vectorization']!r}")
    return cls(**options)


def positive_int(name: str, value: Any) -> None:
    """Raises ConfigError unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1. Received: {value!r}")


def unit_interval(name: str, value: Any) -> None:
    """Raises ConfigError unless ``value`` is a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name} must be in (0, 1]. Received: {value!r}")


def check_model(model: Any, algorithm: str, needs: tuple[str, ...], expected: str) -> None:
    """Raises ConfigError when ``model`` lacks what ``algorithm`` calls (e.g. PPO on a ``q_network``)."""
    missing = [name for name in needs if not hasattr(model, name)]
    if missing:
        raise ConfigError(
            f"{algorithm} trains the {expected} model (model={expected}); {type(model).__name__} has no "
            f"{', '.join(missing)}"
        )


def reward_clipping(value: Any, spec: Any) -> bool:
    """Whether to train on the sign of each reward: ``auto`` is the Atari recipe (on for frames only).

    Only the learning signal is clipped; episode returns, evaluations and the report use the game's
    own rewards.
    """
    if value == "auto":
        return spec is not None and spec.modality == "image"
    if isinstance(value, bool):
        return value
    raise ConfigError(f"step.clip_reward must be auto, true or false. Received: {value!r}")
