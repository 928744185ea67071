"""What the report expects of a results file, checked before a section reads it.

``results/*.json`` are plain files that a person or a script may have edited; a section states the
structure it reads as a small schema and ``problem`` says, in words, where a file departs from it,
so the report refuses the file in one line instead of failing inside a section. A schema is:

- a type spec: ``NUMBER`` (a number, or null: results store NaN as null), ``INTEGER``, ``TEXT``,
  ``FLAG``, ``ANY``, ``PAIR`` (a list of two values), ``NUMBERS`` (a list of numbers);
- a dict of keys to schemas, for a mapping that holds at least those keys; a key ending in ``?``
  may be absent or null;
- ``[schema]``, for a list whose items all match ``schema``;
- ``Each(schema)``, for a mapping whose values all match ``schema`` (keys are free).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """A leaf of a schema: what it is called in a message and which values it accepts."""

    name: str
    accepts: Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


NUMBER = Kind("a number", lambda v: v is None or _number(v))
INTEGER = Kind("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
TEXT = Kind("a string", lambda v: isinstance(v, str))
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
ANY = Kind("anything", lambda v: True)
PAIR = Kind("a list of two values", lambda v: isinstance(v, list) and len(v) == 2)


@dataclass(frozen=True)
class Each:
    """A mapping with any keys whose values all match ``schema``."""

    schema: Any


NUMBERS = [NUMBER]


def problem(value: Any, schema: Any, where: str = "") -> str | None:
    """The first place where ``value`` departs from ``schema``, in words (None when it matches).

    ``where`` is the position of ``value`` in the file (``trust.faithfulness``, ``variants[2]``).
    """
    if isinstance(schema, Kind):
        return None if schema.accepts(value) else _wrong(where, schema.name, value)
    if isinstance(schema, list):
        if not isinstance(value, list):
            return _wrong(where, "a list", value)
        for i, item in enumerate(value):
            found = problem(item, schema[0], f"{where}[{i}]")
            if found:
                return found
        return None
    if not isinstance(value, dict):
        return _wrong(where, "a mapping", value)
    if isinstance(schema, Each):
        for key, item in value.items():
            found = problem(item, schema.schema, _join(where, key))
            if found:
                return found
        return None
    for key, inner in schema.items():
        optional = key.endswith("?")
        key = key.removesuffix("?")
        if key not in value or (optional and value[key] is None):
            if optional:
                continue
            return f"{_quote(where) + ' has' if where else 'the file has'} no '{key}'"
        found = problem(value[key], inner, _join(where, key))
        if found:
            return found
    return None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _quote(where: str) -> str:
    return f"'{where}'"


def _wrong(where: str, expected: str, value: Any) -> str:
    subject = _quote(where) if where else "the file"
    return f"{subject} should be {expected}, found {_found(value)}"


def _found(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" if len(value) <= 40 else "a string"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"the number {value}" if _number(value) else type(value).__name__
