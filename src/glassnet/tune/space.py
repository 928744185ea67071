"""The search space of ``glassnet tune``, written as ``key=value`` arguments.

``lr=log(1e-4,1e-2)`` is a float drawn log-uniformly, ``dropout=uniform(0,0.5)`` a float drawn
uniformly, ``model.depth=int(1,4)`` an integer, ``model.width=[64,128,256]`` a choice; anything else
(``epochs=5``) is a fixed override applied to every trial. A list given to a key that takes a list
(``loggers=[csv]``, ``class_weights=[1,5]``) is that key's value, not a choice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from glassnet.config import RunConfig, parse_overrides
from glassnet.errors import ConfigError, closest

FUNCTIONS = ("log", "uniform", "int")
SYNTAX = "log(a,b), uniform(a,b), int(a,b) or [a,b,c]"
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` is ``log``, ``uniform``, ``int`` or ``choice``.

    Attributes:
        key: the configuration key, spelled as an override (``lr``, ``model.width``).
        kind: how values are drawn.
        low: the lower bound of a range (inclusive).
        high: the upper bound of a range (inclusive).
        choices: the values of a ``choice``.
        text: the dimension as the user wrote it (``log(1e-4,1e-2)``).
    """

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()
    text: str = ""

    def suggest(self, trial: Any) -> Any:
        """Draw this dimension's value for an Optuna ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    @property
    def canonical(self) -> str:
        """The dimension in one spelling (``log(0.0001,0.01)``, ``[64, 128]``), whatever the user's spacing."""
        if self.kind == "choice":
            return json.dumps(_plain(list(self.choices)))
        if self.kind == "int":
            return f"int({int(self.low)},{int(self.high)})"
        return f"{self.kind}({self.low!r},{self.high!r})"

    def extremes(self) -> list[Any]:
        """The values that bound the dimension (every choice, or both ends of a range)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    """The searched dimensions and the fixed overrides of a study.

    Attributes:
        dimensions: the searched keys, in the order given.
        fixed: overrides that every trial shares (``epochs=5``), as parsed values.
    """

    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description that tells two searches apart (stored with the study)."""
        return {
            "search": {d.key: d.canonical for d in self.dimensions},
            "fixed": {k: _plain(v) for k, v in sorted(self.fixed.items())},
        }


def parse_space(items: dict[str, Any] | list[str]) -> SearchSpace:
    """Read a search space from ``key=value`` strings or a mapping.

    A mapping's values may be strings in the same syntax (``"log(1e-4,1e-2)"``), lists (a choice) or
    any other value (fixed).

    Raises:
        ConfigError: a malformed dimension (``log(0,1)``, ``int(1.5,3)``, ``lgo(1,2)``, ``[]``) or
            argument, quoting it and the syntax.
    """
    if isinstance(items, list):
        pairs = {}
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(
                    f"{item!r} is not of the form key=value (a search such as lr=log(1e-4,1e-2), or a fixed "
                    "value such as epochs=5)"
                )
            pairs[key.strip()] = raw
        items = pairs
    dimensions, fixed = [], {}
    for key, value in items.items():
        dimension = _dimension(key, value)
        if dimension is None:
            fixed[key] = parse_overrides([f"{key}={value}"])[key] if isinstance(value, str) else value
        else:
            dimensions.append(dimension)
    return SearchSpace(tuple(dimensions), fixed)


def _dimension(key: str, value: Any) -> Dimension | None:
    """The dimension ``value`` describes, or None for a fixed value."""
    if isinstance(value, (list, tuple)):
        return None if key in _list_keys() else _choice(key, list(value), str(list(value)))
    if not isinstance(value, str):
        return None
    call = _CALL.match(value)
    if call is not None:
        return _range(key, call.group(1), call.group(2), value.strip())
    text = value.strip()
    if text.startswith("[") and key not in _list_keys():
        parsed = parse_overrides([f"{key}={text}"])[key]
        if isinstance(parsed, list):
            return _choice(key, parsed, text)
    return None


def _range(key: str, name: str, arguments: str, text: str) -> Dimension:
    where = f"search space {key}={text}"
    if name not in FUNCTIONS:
        guess = closest(name, FUNCTIONS)
        hint = f" Did you mean {guess}(...)?" if guess else ""
        raise ConfigError(f"{where}: unknown function {name!r}; a search is {SYNTAX}.{hint}")
    parts = [part.strip() for part in arguments.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{where}: {name}(...) takes two bounds, low and high, e.g. {name}({_example(name)})")
    try:
        low, high = (int(p) for p in parts) if name == "int" else (float(p) for p in parts)
    except ValueError:
        kind = "integers" if name == "int" else "numbers"
        raise ConfigError(f"{where}: the bounds must be {kind}, e.g. {name}({_example(name)})") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ConfigError(f"{where}: the bounds must be finite with low < high")
    if name == "log" and low <= 0:
        raise ConfigError(f"{where}: log(a,b) draws between positive bounds (a > 0), e.g. log(1e-4,1e-2)")
    return Dimension(key, name, float(low), float(high), text=text)


def _choice(key: str, choices: list[Any], text: str) -> Dimension:
    where = f"search space {key}={text}"
    if not choices:
        raise ConfigError(f"{where}: a choice needs at least one value, e.g. [64,128,256]")
    scalars = all(v is None or isinstance(v, (bool, int, float, str)) for v in choices)
    if not scalars:
        raise ConfigError(f"{where}: the choices must be numbers, strings or booleans (not lists or mappings)")
    if len({repr(v) for v in choices}) != len(choices):
        raise ConfigError(f"{where}: a choice lists each value once")
    return Dimension(key, "choice", choices=tuple(choices), text=text)


def _example(name: str) -> str:
    return {"log": "1e-4,1e-2", "uniform": "0,0.5", "int": "1,4"}[name]


def _list_keys() -> set[str]:
    """Configuration keys whose value is itself a list."""
    return {f.name for f in dataclasses.fields(RunConfig) if "list[" in str(f.type)}


def _plain(value: Any) -> Any:
    """``value`` as JSON takes it (tuples as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
