"""Presentation layer: the model report card (HTML) and its figures."""

from glassnet.report import sections as _sections  # noqa: F401  (registers the train-stage sections)
from glassnet.report.card import ReportContext, report, section

__all__ = ["ReportContext", "report", "section"]
