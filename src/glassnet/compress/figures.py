"""The compression figure: size against the test metric, one point per variant."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from glassnet.figures import place_labels, pyplot, save_figure

ORIGINAL, FASTER, SLOWER = "#1d2330", "#2d7d46", "#c0392b"
BOUNDED = ("accuracy", "macro_f1", "f1", "auroc", "balanced_accuracy")  # metrics that cannot pass 1


def size_tradeoff(variants: Sequence[dict[str, Any]], metric: str, path: str | os.PathLike[str]) -> None:
    """Scatter of file size (log scale) against ``metric``, each point labelled with its variant and batch-1
    speed-up; the labels are placed so that none overlaps another (``place_labels``)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    shown = [v for v in variants if v.get(metric) is not None]
    points = [(v["size_bytes"] / 1024, v[metric]) for v in shown]
    for v, (size_kb, value) in zip(shown, points, strict=True):
        if v["name"] == "fp32":  # a ring on top: a variant of the same size and score must not hide it
            ax.scatter(size_kb, value, s=110, facecolor="none", edgecolor=ORIGINAL, linewidth=1.6, zorder=4)
        else:
            ax.scatter(size_kb, value, s=50, color=_colour(v), zorder=3, edgecolor="white", linewidth=0.6)
    ax.set_xscale("log")
    # plain numbers on the size axis, at 1-2-5 steps: minor labels at every sub-decade crowd each other
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if len({round(x, 6) for x, _ in points}) < 2:
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.35, y=0.3)  # room around the outermost points for their labels
    if metric in BOUNDED and ax.get_ylim()[1] > 1:
        ax.set_ylim(top=1.0)  # no scale past a perfect score
    ax.set(xlabel="file size (KiB, log scale)", ylabel=f"test {metric}", title=f"Size against test {metric}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(
        handles=[
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markerfacecolor="none",
                markeredgecolor=ORIGINAL,
                markeredgewidth=1.6,
                markersize=9,
                label="fp32 original",
            ),
            *(
                Line2D([], [], marker="o", linestyle="", color=c, label=label)
                for c, label in ((FASTER, "faster"), (SLOWER, "slower at batch 1 or 64"))
            ),
        ],  # fmt: skip
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="label: batch-1 speed-up",
        title_fontsize=7,
        frameon=False,
    )
    labels = [f"{v['name']} ({_times(v['latency_speedup'])})" for v in shown]
    place_labels(ax, points, labels, colors=[_colour(v) for v in shown])
    save_figure(fig, path)


def _colour(variant: dict[str, Any]) -> str:
    if variant["name"] == "fp32":
        return ORIGINAL
    return SLOWER if variant.get("slower") else FASTER


def _times(speedup: float) -> str:
    """A speed-up as a factor, with two significant digits below 0.1 (0.01x is not 0.0x)."""
    return f"{speedup:.1f}x" if speedup >= 0.1 else f"{speedup:.2g}x"
