"""Figures of the attack stage: accuracy against eps, and adversarial examples beside their originals."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from glassnet.figures import pyplot, save_figure


def accuracy_curves(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Accuracy against eps for each attack (and the worst case, bold), starting from the clean accuracy."""
    plt = pyplot()
    eps = [0.0, *result["eps"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, curve in result["curves"].items():
        ax.plot(eps, [result["clean_accuracy"], *curve], marker="o", label=name)
    worst = result.get("worst_case")
    if worst:
        ax.plot(
            eps, [result["clean_accuracy"], *worst["accuracy"]], marker="s", color="black", linewidth=2.5,
            label="worst case (" + " + ".join(worst["attacks"]) + ")",
        )  # fmt: skip
    unit = "eps (fraction of the mean embedding norm, per token)" if result["space"] == "embedding" else "eps"
    ax.set(xlabel=f"{unit}, {result['norm']}", ylabel="accuracy", ylim=(-0.02, 1.02), title="Accuracy under attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def adversarial_examples(
    originals: np.ndarray,
    adversarial: np.ndarray,
    records: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """Rows of (original, adversarial, perturbation magnified to the full colour range), with predictions.

    Images are drawn as pictures; other inputs as bar pairs per feature.
    """
    plt = pyplot()
    count = len(records)
    image = originals.ndim == 4
    fig, axes = plt.subplots(3, count, figsize=(1.9 * count, 6.2), squeeze=False)

    def name(index: int) -> str:
        return class_names[index] if index < len(class_names) else str(index)

    for column, record in enumerate(records):
        clean, adv = originals[column], adversarial[column]
        delta = adv - clean
        scale = float(np.abs(delta).max()) or 1.0
        if image:
            axes[0, column].imshow(_picture(clean), cmap="gray", vmin=0, vmax=1)
            axes[1, column].imshow(_picture(adv), cmap="gray", vmin=0, vmax=1)
            axes[2, column].imshow(_picture(delta / (2 * scale) + 0.5), cmap="RdBu_r", vmin=0, vmax=1)
        else:
            features = np.arange(clean.size)
            axes[0, column].bar(features, clean.ravel(), color="#4a78b5")
            axes[1, column].bar(features, adv.ravel(), color="#c0504d")
            axes[2, column].bar(features, delta.ravel() / scale, color="#777777")
        axes[0, column].set_title(
            f"{name(record['clean_prediction'])} ({record['clean_confidence']:.0%})", fontsize=8, color="#1f6f2f"
        )
        axes[1, column].set_title(
            f"{name(record['adversarial_prediction'])} ({record['adversarial_confidence']:.0%})",
            fontsize=8,
            color="#b02a2a",
        )
        axes[2, column].set_title(f"delta x{1 / scale:.0f}" if scale < 1 else "delta", fontsize=8)
        for row in range(3):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    axes[0, 0].set_ylabel("original", fontsize=9)
    axes[1, 0].set_ylabel("adversarial", fontsize=9)
    axes[2, 0].set_ylabel("perturbation\n(magnified)", fontsize=9)
    save_figure(fig, path)


def _picture(values: np.ndarray) -> np.ndarray:
    """``C x H x W`` to something ``imshow`` draws: grey for one channel, RGB for three, the mean otherwise."""
    values = np.clip(values, 0, 1)
    if values.shape[0] == 3:
        return values.transpose(1, 2, 0)
    return values.mean(axis=0) if values.shape[0] != 1 else values[0]
