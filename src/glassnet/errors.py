"""Error types: every failure a user can fix is a ``GlassnetError`` with an actionable message.

The command line prints the message of a ``GlassnetError`` and exits with status 2 without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GlassnetError(Exception):
    """Base class of the errors that glassnet raises for bad input or configuration."""


class ConfigError(GlassnetError, ValueError):
    """A configuration key or value is wrong (unknown key, out-of-range value, bad file)."""


class DataError(GlassnetError, ValueError):
    """Input data is missing, malformed or does not match what the model expects."""


class RunError(GlassnetError):
    """A run directory is missing, incomplete or would be overwritten."""


class CheckpointError(RunError):
    """Saved weights or model metadata cannot be read back (corrupt, truncated or mismatched)."""


class UnknownNameError(GlassnetError, KeyError):
    """A dataset, model, method or option name is not one of the registered names."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        self.available = sorted(available)
        super().__init__(unknown_name_message(kind, name, self.available))

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name`` (for "did you mean" hints), or None."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_message(kind: str, name: str, available: Iterable[str]) -> str:
    """Build "unknown <kind> 'x'. Did you mean 'y'? Available: a, b, c"."""
    available = sorted(available)
    message = f"unknown {kind} {name!r}."
    guess = closest(name, available)
    if guess is not None:
        message += f" Did you mean {guess!r}?"
    return message + f" Available: {', '.join(available) if available else '(none)'}"
