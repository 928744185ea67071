"""Figures as PNG files: one way to draw (matplotlib's Agg backend) and one way to save them.

Every figure a stage writes goes through ``save_figure`` (atomic write, one resolution), so the
report embeds pictures of one size and an interrupted write never leaves half a PNG. The figures
of training and its tasks live here (``glassnet.figures.training``, ``.reconstruction``); the
audit stages draw theirs in their own packages with the same two functions, and place text labels
beside points with ``place_labels``.

Figures are saved at twice the resolution they are shown at (``PIXEL_RATIO``): the report shows a
figure at ``SHOWN_DPI`` CSS pixels per inch of the matplotlib figure, and the PNG stores its
resolution (``DPI``), from which the report works out the size to show it at; on a high-density
screen every pixel of the PNG is then one pixel of the screen.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glassnet.runs import atomic_write

SHOWN_DPI = 110  # CSS pixels per inch of a figure, as the report shows it
PIXEL_RATIO = 2  # PNG pixels per CSS pixel: sharp on high-density (2x) screens
DPI = SHOWN_DPI * PIXEL_RATIO


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG to ``path`` (atomically, at ``DPI``, the resolution stored in the file) and close it.

    Charts are stored with a palette of 256 colours (``compact_png``), so that the report, which embeds
    every figure, stays small at twice the resolution.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    data = compact_png(buffer.getvalue())
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


PALETTE_LIMIT = 4096  # figures with at most this many colours (charts, small pictures) get a 256-colour palette


def compact_png(data: bytes) -> bytes:
    """``data`` (an opaque PNG) with a 256-colour palette when it has at most ``PALETTE_LIMIT`` colours and that
    makes it smaller; anything else (photographs, transparency) unchanged. The resolution (``DPI``) is kept.

    Between 257 and ``PALETTE_LIMIT`` colours the palette is lossy: the extra colours are anti-aliasing
    shades of a chart's lines and text, merged with their nearest neighbour (matplotlib's colour maps
    have 256 entries, so a heat map keeps its levels)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.mode == "RGBA" and image.getextrema()[3][0] < 255:
        return data  # transparent pixels: a palette would lose them
    rgb = image.convert("RGB")
    if rgb.getcolors(maxcolors=PALETTE_LIMIT) is None:
        return data
    out = io.BytesIO()
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="png", optimize=True, dpi=(DPI, DPI))
    return out.getvalue() if out.tell() < len(data) else data


# where a label may go around its point: directions (x, y) tried on rings of growing radius (points),
# nearest first; the first spot that collides with nothing already drawn is taken
_RINGS = (9, 20, 32, 46, 64)
_DIRECTIONS = ((1, 0.5), (1, -0.5), (-1, 0.5), (-1, -0.5), (0, 1), (0, -1), (1, 1.2), (-1, 1.2), (1, -1.2), (-1, -1.2))
_MARKER = 6.5  # half the size of a point's marker (a little more: rings are larger), in points


def place_labels(
    ax: Any,
    points: Sequence[tuple[float, float]],
    labels: Sequence[str],
    fontsize: float = 8,
    colors: Sequence[Any] | None = None,
) -> list:
    """Write each label beside its point (data coordinates) so that no two labels overlap.

    Labels are placed one at a time at the nearest free spot around their point: clear of the labels
    already placed and of every point's marker, and inside the axes. A label set away from its point
    gets a thin leader line. When no spot is free (a very crowded plot), the point gets a number and
    its label goes into a key under the axes, so nothing is ever written over anything else.

    Call it after the axes' limits and scales are final (the spots are measured in pixels).

    Args:
        ax: the axes the points are drawn on.
        points: one ``(x, y)`` per label, in data coordinates.
        labels: the texts.
        fontsize: of the labels, in points.
        colors: one text colour per label (e.g. its point's, so that labels of close points tell apart).

    Returns:
        The matplotlib ``Annotation`` of each label (its number, where the key holds the label).
    """
    fig = ax.figure
    fig.draw_without_rendering()  # settles the axes' limits and position before anything is measured
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72  # pixels per point
    centres = [ax.transData.transform(p) for p in points]
    frame = ax.get_window_extent(renderer)
    margin = _MARKER * scale
    taken = [(x - margin, y - margin, x + margin, y + margin) for x, y in centres]
    placed, key = [], []
    colors = list(colors) if colors is not None else ["black"] * len(labels)
    for point, (x, y), label, color in zip(points, centres, labels, colors, strict=True):
        probe = ax.text(0, 0, label, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        spot = _free_spot(x, y, extent.width, extent.height, scale, frame, taken)
        if spot is None:  # nowhere free: a number on the point, the label in the key
            key.append(f"{len(key) + 1}: {label}")
            placed.append(
                ax.annotate(
                    str(len(key)),
                    point,
                    textcoords="offset points",
                    xytext=(0, 0),
                    fontsize=fontsize - 1,
                    ha="center",
                    va="center",
                    color="white",
                    fontweight="bold",
                )  # fmt: skip
            )
            continue
        (dx, dy), box = spot
        taken.append(box)
        far = max(abs(dx), abs(dy)) > 1.5 * _RINGS[0]
        placed.append(
            ax.annotate(
                label,
                point,
                textcoords="offset points",
                xytext=(dx, dy),
                fontsize=fontsize,
                color=color,
                ha="left" if dx > 0 else ("right" if dx < 0 else "center"),
                va="center",
                arrowprops={"arrowstyle": "-", "color": "0.55", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3}
                if far
                else None,
            )  # fmt: skip
        )
    if key:
        ax.text(0, -0.2, "; ".join(key), transform=ax.transAxes, fontsize=fontsize, va="top")
    return placed


def _free_spot(
    x: float, y: float, width: float, height: float, scale: float, frame: Any, taken: list[tuple[float, ...]]
) -> tuple[tuple[float, float], tuple[float, ...]] | None:
    """The nearest offset (points) around pixel ``(x, y)`` where a ``width`` x ``height`` label fits, and its box."""
    pad = 1.5 * scale
    for ring in _RINGS:
        for ux, uy in _DIRECTIONS:
            dx, dy = ux * ring, uy * ring * 0.8
            left = x + dx * scale - (width if ux < 0 else (width / 2 if ux == 0 else 0))
            middle = y + dy * scale
            box = (left - pad, middle - height / 2 - pad, left + width + pad, middle + height / 2 + pad)
            inside = box[0] >= frame.x0 and box[2] <= frame.x1 and box[1] >= frame.y0 and box[3] <= frame.y1
            if inside and not any(_overlap(box, other) for other in taken):
                return (dx, dy), box
    return None


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
