"""The ``report`` stage: the model report card, one self-contained HTML page built from the run's files."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.report import report
from glassnet.stages import Stage, register_stage


def show(path: Any, args: argparse.Namespace) -> None:
    print(f"report:   {path}")


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
