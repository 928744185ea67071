"""Where data that does not ship with a package is found: ``GLASSNET_DATA``, then the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from glassnet.errors import DataError


def cache_dir() -> Path:
    """The user cache for downloads and generated data: ``$GLASSNET_CACHE``, else
    ``$XDG_CACHE_HOME/glassnet``, else ``~/.cache/glassnet`` (created on demand by writers)."""
    if os.environ.get("GLASSNET_CACHE"):
        return Path(os.environ["GLASSNET_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "glassnet"


def data_roots(*system: str | os.PathLike[str]) -> list[Path]:
    """Folders searched in order: ``$GLASSNET_DATA`` (if set), the user cache, then ``system``."""
    roots = []
    if os.environ.get("GLASSNET_DATA"):
        roots.append(Path(os.environ["GLASSNET_DATA"]))
    roots.append(cache_dir())
    roots.extend(Path(p) for p in system)
    return roots


def find_data(relative: str | os.PathLike[str], *system: str | os.PathLike[str]) -> Path | None:
    """The first existing ``root / relative`` over ``data_roots()``, then the ``system`` folders
    themselves (a system package's folder already is the dataset folder), or None."""
    for root in data_roots():
        candidate = root / relative
        if candidate.exists():
            return candidate
    for folder in system:
        if Path(folder).exists():
            return Path(folder)
    return None


def require_data(relative: str, dataset: str, alternative: str = "") -> Path:
    """The path of a data file under ``data_roots()``, or a ``DataError`` saying every way to provide it.

    Args:
        relative: the file's path under a data root, e.g. ``text/sentiment.csv``.
        dataset: the dataset that needs it (named in the message).
        alternative: an extra sentence for the message, e.g. a dataset that needs no files.
    """
    found = find_data(relative)
    if found is None or not found.is_file():
        where = os.environ.get("GLASSNET_DATA")
        searched = f"$GLASSNET_DATA ({where}) and " if where else "the GLASSNET_DATA folder (unset) and "
        raise DataError(
            f"dataset {dataset!r} needs the file '{relative}', not found in {searched}the cache "
            f"'{cache_dir()}'. Set GLASSNET_DATA to a folder that holds '{relative}' (e.g. ../shared/data "
            f"in a glassnet checkout) or copy the file to '{cache_dir() / relative}'"
            + (f"; {alternative}" if alternative else "")
        )
    return found
