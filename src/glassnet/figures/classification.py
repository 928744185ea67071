"""Figures of a classifier's scores: ROC and precision-recall curves, and the reliability diagram.

Each function draws from the record that ``glassnet.train.tasks`` stores in ``results/train.json``
(``test.roc``, ``test.precision_recall``, ``test.calibration``), so the figure shows exactly the
numbers a script reads.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from glassnet.figures import pyplot, save_figure


def roc_curve(roc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """The ROC curve with the diagonal of a score that knows nothing, the AUC in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot(roc["fpr"], roc["tpr"], color="#2d5b9a", linewidth=2, label=f"model (AUC {roc['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="false positive rate",
        ylabel="true positive rate (recall)",
        title=f"ROC, positive class: {roc['positive_class']}",
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def precision_recall_curve(curve: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Precision against recall, with the positive rate (the precision of guessing) as the baseline."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.step(
        curve["recall"],
        curve["precision"],
        where="post",
        color="#2d5b9a",
        linewidth=2,
        label=f"model (AP {curve['average_precision']:.3f})",
    )
    rate = curve["positive_rate"]
    ax.axhline(rate, color="grey", linestyle="--", linewidth=1, label=f"guessing (positive rate {rate:.3f})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="recall",
        ylabel="precision",
        title=f"Precision-recall, positive class: {curve['positive_class']}",
    )
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def reliability_diagram(calibration: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Observed frequency against mean predicted score per bin (the diagonal is perfect calibration),
    the number of examples per bin below, the ECE in the title."""
    plt = pyplot()
    bins = int(calibration["bins"])
    edges = np.linspace(0, 1, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1 / bins
    filled = [i for i, n in enumerate(calibration["count"]) if n]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.6, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    top.bar(
        centres[filled],
        [calibration["observed"][i] for i in filled],
        width=width * 0.9,
        color="#9bb8de",
        edgecolor="#2d5b9a",
        label="observed frequency",
    )
    top.plot(
        [calibration["mean_predicted"][i] for i in filled],
        [calibration["observed"][i] for i in filled],
        color="#2d5b9a",
        marker="o",
        linewidth=1.5,
        label="at the bin's mean score",
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    top.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        ylabel="observed frequency",
        title=f"Reliability ({calibration['score']}): ECE {calibration['ece']:.3f}, {bins} bins",
    )
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(centres, calibration["count"], width=width * 0.9, color="#b9c0cc", edgecolor="#5a6272")
    bottom.set(xlabel=f"predicted {calibration['score']}", ylabel="examples")
    bottom.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
