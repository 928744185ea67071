"""The compression figure: size against the test metric, one point per variant."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from glassnet.figures import pyplot, save_figure


def size_tradeoff(variants: Sequence[dict[str, Any]], metric: str, path: str | os.PathLike[str]) -> None:
    """Scatter of file size (log scale) against ``metric``, with batch-1 speed-up in the labels."""
    from matplotlib.ticker import ScalarFormatter

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, v in enumerate(variants):
        value = v.get(metric)
        if value is None:
            continue
        size_kb = v["size_bytes"] / 1024
        colour = "#1d2330" if v["name"] == "fp32" else ("#c0392b" if v["slower"] else "#2d7d46")
        ax.scatter(size_kb, value, s=60, color=colour, zorder=3)
        ax.annotate(
            f"{v['name']} ({v['latency_speedup']:.1f}x)",
            (size_kb, value),
            textcoords="offset points",
            xytext=(6, (6, -12, 16, -22)[k % 4]),  # staggered: variants often share an accuracy
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.margins(x=0.15, y=0.12)
    ax.set(
        xlabel="file size (KiB, log scale)",
        ylabel=f"test {metric}",
        title="Size against test " + metric + " (label: batch-1 speed-up vs fp32; red: slower somewhere)",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, path)
