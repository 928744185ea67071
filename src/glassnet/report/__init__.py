"""Presentation layer: the model report card (HTML) and its figures."""

import importlib as _importlib
import importlib.util as _util

from glassnet.report import sections as _sections  # noqa: F401  (registers the train-stage sections)
from glassnet.report.card import ReportContext, report, section

# each audit stage registers its own sections in glassnet.report.<stage>
for _stage in ("explain", "robustness", "compress", "tagging", "tasks"):
    if _util.find_spec(f"glassnet.report.{_stage}") is not None:
        _importlib.import_module(f"glassnet.report.{_stage}")

__all__ = ["ReportContext", "report", "section"]
