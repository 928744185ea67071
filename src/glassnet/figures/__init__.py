"""Figures as PNG files: one way to draw (matplotlib's Agg backend) and one way to save them.

Every figure a stage writes goes through ``save_figure`` (atomic write, one resolution), so the
report embeds pictures of one size and an interrupted write never leaves half a PNG. The figures
of training and its tasks live here (``glassnet.figures.training``, ``.reconstruction``); the
audit stages draw theirs in their own packages with the same two functions.
"""

from __future__ import annotations

import os
from typing import Any

from glassnet.runs import atomic_write

DPI = 110


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG to ``path`` (atomically, at ``DPI``) and close it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))
    pyplot().close(fig)
