"""Presentation layer: the model report card (HTML) and its sections.

Every module of this package that defines ``@section`` functions is imported here, so a new
section is a new module; stages registered in ``glassnet.stages`` may also bring their own.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from glassnet.report.card import ReportContext, report, section

for _module in _pkgutil.iter_modules(__path__):
    if _module.name != "card":
        _importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ReportContext", "report", "section"]
