"""What a stage wrote, printed after its figures: one ``written:`` block listing every file with its path."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def run_files(run: str | os.PathLike[str], files: Iterable[str | None] = (), figures: Iterable[str] = ()) -> list[Path]:
    """The files of a run that exist, in order and without repeats.

    Args:
        run: the run directory (as the user gave it, so printed paths read as theirs).
        files: paths relative to the run (folders stand for the files under them); None is skipped.
        figures: figure names (``explain_curves``: every ``figures/<name>.*`` file, whatever its format) or
            file names (``explain_policy.png``).
    """
    root = Path(run)
    found: list[Path] = []
    for name in files:
        if name is None:
            continue
        path = root / name
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for name in figures:
        found += [root / "figures" / name, *sorted((root / "figures").glob(f"{name}.*"))]
    unique = list(dict.fromkeys(found))
    return [p for p in unique if p.is_file()]


def print_written(paths: Iterable[str | os.PathLike[str]]) -> None:
    """``written:`` and the paths, one per line under each other (``(nothing)`` when no file was written)."""
    shown = [str(p) for p in paths] or ["(nothing)"]
    for n, path in enumerate(shown):
        print(f"{'written:' if n == 0 else '':<10}{path}")
