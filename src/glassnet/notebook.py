"""HTML for notebooks: the compact tables that ``Run``, ``DataBundle`` and the audit results show in Jupyter.

Jupyter calls an object's ``_repr_html_`` to display it; the classes build theirs from these
helpers, so every object looks the same: a bold title, then one row per fact. Every text is
escaped (class names, paths and options come from users' files). Only the standard library is
imported here.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

SHOWN = 6  # items of a long list shown before "and N more"
_TABLE = 'style="border-collapse:collapse;text-align:left;margin:0"'
_CELL = 'style="padding:2px 12px 2px 0;text-align:left;vertical-align:top"'


def esc(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def plain(value: Any, digits: int = 4) -> str:
    """A value as a person reads it: numbers to ``digits`` significant digits, lists shortened, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return shorten([plain(v, digits) for v in value])
    return str(value)


def shorten(items: Sequence[Any], shown: int = SHOWN) -> str:
    """``a, b, c and 7 more``: the first ``shown`` items of a list."""
    items = [str(item) for item in items]
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"


def facts_table(title: str, rows: Iterable[tuple[str, Any]], note: str = "") -> str:
    """A titled two-column table of facts (name, value); rows whose value is None are left out.

    Args:
        title: the heading (escaped).
        rows: ``(name, value)`` pairs; values are shown with ``plain``.
        note: a line under the table (escaped).

    Returns:
        An HTML fragment.
    """
    body = "".join(
        f"<tr><th {_CELL}>{esc(name)}</th><td {_CELL}>{esc(plain(value))}</td></tr>"
        for name, value in rows
        if value is not None
    )
    tail = f'<div style="opacity:0.7">{esc(note)}</div>' if note else ""
    return f"<div><b>{esc(title)}</b><table {_TABLE}>{body}</table>{tail}</div>"


def grid_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table with a header row; cells are shown with ``plain`` and escaped."""
    head = "".join(f"<th {_CELL}>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{esc(plain(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table {_TABLE}><tr>{head}</tr>{body}</table>"


def titled(title: str, *parts: str, note: str = "") -> str:
    """A bold title over ready HTML parts (already escaped), with an escaped note under them."""
    tail = f'<div style="opacity:0.7">{esc(note)}</div>' if note else ""
    return f"<div><b>{esc(title)}</b>{''.join(parts)}{tail}</div>"
