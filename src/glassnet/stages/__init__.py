"""The stage registry: every step after training (explain, robustness, compress, report, ...) plugs in here.

A stage is one module in this package that calls ``register_stage(Stage(...))``: its name (one
noun for the package, the command, the API and ``results/<name>.json``), the function that runs it
on a ``Run``, its command-line arguments and printout, the one-line headline the demo and
``glassnet`` print after it, and the options the demo runs it with. Its report section is a
``@section`` function (``glassnet.report.card``) in the stage's module or in ``glassnet.report``.
The command line builds one subcommand per stage, ``glassnet demo`` runs the stages in ``order``,
and the report collects their sections: adding a stage is adding a module (and its test).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from glassnet.errors import UnknownNameError


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A stage without options of its own."""


def _no_options(args: argparse.Namespace) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Stage:
    """One registered stage.

    Attributes:
        name: the noun of the stage: its command, its ``results/<name>.json`` file and its package.
        run: ``run(run, **options) -> result``: takes a ``Run`` or a run directory, writes the result
            file and its figures, and returns the result (a dict, or an object with ``to_dict()``).
        help: one line for ``glassnet --help``.
        description: the longer text of ``glassnet <name> --help``.
        arguments: adds the stage's options to its ``argparse`` subcommand (the ``run`` argument and
            ``--report`` are added for every stage).
        options: turns the parsed command line into ``run``'s keyword arguments.
        show: prints the result on the command line (after ``run``).
        headline: one line from the result file (``results/<name>.json``), or None to say nothing.
        demo: ``demo(run) -> (options, line)``: how ``glassnet demo`` runs the stage and the line it
            prints first; None keeps the stage out of the demo.
        audit: whether the stage audits the model (``glassnet demo --no-audit`` skips those).
        tasks: the tasks the stage applies to (None: every task); the demo skips the others.
        aliases: former command names that still work.
        refreshes_report: after the stage, an existing ``report.html`` is rewritten so it stays current.
        takes_progress: ``run`` takes ``progress=`` (True, a stream or None), so ``glassnet demo`` draws its bars.
        order: position in the demo and in listings (train is 0, the report 100).
    """

    name: str
    run: Callable[..., Any]
    help: str
    description: str = ""
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    options: Callable[[argparse.Namespace], dict[str, Any]] = _no_options
    show: Callable[[Any, argparse.Namespace], None] | None = None
    headline: Callable[[dict[str, Any]], str | None] | None = None
    demo: Callable[[Any], tuple[dict[str, Any], str]] | None = None
    audit: bool = True
    tasks: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    refreshes_report: bool = True
    takes_progress: bool = False
    order: float = 50.0

    def applies_to(self, task: str) -> bool:
        """Whether the stage can run on a run of ``task``."""
        return self.tasks is None or task in self.tasks


_STAGES: dict[str, Stage] = {}
_loaded = False


def register_stage(stage: Stage) -> Stage:
    """Add ``stage`` to the registry (its module calls this when it is imported).

    Raises:
        ValueError: the name or an alias is taken.
    """
    taken = {name for s in _STAGES.values() for name in (s.name, *s.aliases)}
    clash = {stage.name, *stage.aliases} & taken
    if clash:
        raise ValueError(f"stage name {sorted(clash)[0]!r} is registered twice")
    _STAGES[stage.name] = stage
    return stage


def _load() -> None:
    """Import every stage module of this package once (each registers its stage)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def list_stages() -> list[Stage]:
    """The registered stages in their ``order``."""
    _load()
    return sorted(_STAGES.values(), key=lambda s: (s.order, s.name))


def get_stage(name: str) -> Stage:
    """The stage called ``name`` (or one of its aliases).

    Raises:
        UnknownNameError: no stage has that name; the message suggests the closest.
    """
    _load()
    for stage in _STAGES.values():
        if name == stage.name or name in stage.aliases:
            return stage
    raise UnknownNameError("stage", name, sorted(_STAGES))


def run_stage(name: str, run: Any, **options: Any) -> Any:
    """Run the stage ``name`` on ``run`` (a ``Run`` or a run directory) with its keyword options."""
    return get_stage(name).run(run, **options)


def result_dict(result: Any) -> dict[str, Any]:
    """A stage's result as a plain dict (its ``to_dict()`` when it has one)."""
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> None:
    """Columns padded to their widest cell, with a rule under the header.

    Args:
        header: the column names.
        rows: the cells, one sequence per row (each shown with ``str``).
        width: the most characters a line may take: columns are narrowed in proportion to their
            widest cell (never below their longest word) and their cells wrapped at spaces and after
            slashes, with a blank line between rows when any cell wraps. None: no limit.
    """
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    if width is not None:
        pieces = [[w for row in cells for w in _Wrapper.wordsep_re.findall(row[i])] for i in range(len(header))]
        floors = [max(1, min(max(map(len, p), default=1), MAX_WORD)) for p in pieces]
        widths = _fit(widths, floors, width - 2 * (len(header) - 1))
    wrapped = any(len(c) > w for row in cells for c, w in zip(row, widths))
    for n, row in enumerate(cells):
        lines = [_Wrapper(max(w, 1)).wrap(c) or [""] for c, w in zip(row, widths)]
        if wrapped and n > 1:
            print()
        for k in range(max(map(len, lines))):
            print("  ".join((ls[k] if k < len(ls) else "").ljust(w) for ls, w in zip(lines, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


MAX_WORD = 20  # a longer word than this may be broken to fit a table's width


class _Wrapper(textwrap.TextWrapper):
    """Wraps at spaces and after the slashes of a path or address (not at hyphens: ``0-9,999`` stays whole)."""

    wordsep_re = re.compile(r"(\s+|[^\s/]*/+(?=[^\s/])|[^\s/]+)")

    def __init__(self, width: int) -> None:
        super().__init__(width, break_on_hyphens=True)  # True: split with wordsep_re


def _fit(widths: list[int], floors: list[int], room: int) -> list[int]:
    """Column widths that fill ``room``: each in proportion to its natural width, none below its floor."""
    if sum(widths) <= room:
        return widths
    fixed: set[int] = set()
    while True:
        free = [i for i in range(len(widths)) if i not in fixed]
        budget = room - sum(floors[i] for i in fixed)
        natural = sum(widths[i] for i in free)
        if not free or budget <= 0:
            return list(floors)  # wider than the room even at their floors: as narrow as they go
        scaled = {i: min(widths[i], int(widths[i] * budget / natural)) for i in free}
        below = [i for i in free if scaled[i] < floors[i]]
        if not below:
            break
        fixed.update(below)
    result = [floors[i] if i in fixed else scaled[i] for i in range(len(widths))]
    spare = room - sum(result)
    for i in sorted(free, key=lambda i: -widths[i]):  # rounding leftovers to the widest columns
        extra = min(spare, widths[i] - result[i])
        result[i] += extra
        spare -= extra
    return result
