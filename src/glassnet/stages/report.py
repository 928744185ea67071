"""The ``report`` stage: the model report card, one self-contained HTML page built from the run's files."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.stages import Stage, register_stage
from glassnet.stages._written import print_written


def report(run: Any, **options: Any) -> Any:
    """``glassnet.report.report``, imported when the stage runs (the command line starts without torch)."""
    from glassnet.report import report

    return report(run, **options)


def show(path: Any, args: argparse.Namespace) -> None:
    print_written([path])


STAGE = register_stage(
    Stage(
        name="report",
        run=report,
        help="(re)write a run's report.html",
        description="Write RUN/report.html from the run's results and figures (self-contained; opens offline).",
        show=show,
        demo=lambda run: ({}, ""),
        audit=False,
        refreshes_report=False,
        order=100,
    )
)
