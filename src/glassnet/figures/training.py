"""Figures of training and its tasks: curves, confusion matrices, prediction grids, predicted against true."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from glassnet.figures import pyplot, save_figure


def training_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Loss (train and validation) and the validation metrics per epoch."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    metrics = [k for k in history[0] if k.startswith("val/") and k != "val/loss"] if history else []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(epochs, [h.get("train/loss") for h in history], label="train", marker=".")
    if any("val/loss" in h for h in history):
        axes[0].plot(epochs, [h.get("val/loss") for h in history], label="validation", marker=".")
    axes[0].set(title="Loss", xlabel="epoch", ylabel="loss")
    axes[0].legend()
    for key in metrics:
        axes[1].plot(epochs, [_none_to_nan(h.get(key)) for h in history], label=key.split("/", 1)[1], marker=".")
    axes[1].set(title="Validation metrics", xlabel="epoch")
    if metrics:
        axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Counts with true classes as rows, predicted classes as columns."""
    plt = pyplot()
    counts = np.asarray(matrix)
    size = max(3.5, 0.45 * len(class_names) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if max(map(len, class_names)) > 3 else 0, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if counts[i, j] > threshold else "black",
                )
    save_figure(fig, path)


def prediction_grid(
    images: np.ndarray,
    true: Sequence[int],
    predicted: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    columns: int = 8,
) -> None:
    """Test images with their true and predicted class; mistakes titled in red."""
    plt = pyplot()
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.55), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        image = np.asarray(images[k])
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1), interpolation="nearest")
        wrong = true[k] != predicted[k]
        ax.set_title(
            f"{class_names[predicted[k]]} ({confidence[k]:.0%})\ntrue {class_names[true[k]]}",
            fontsize=8,
            color="#c0392b" if wrong else "#1e6b30",
        )
    save_figure(fig, path)


def predicted_vs_true(true: np.ndarray, predicted: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Scatter of regression predictions against targets, with the identity line."""
    plt = pyplot()
    true, predicted = np.asarray(true).ravel(), np.asarray(predicted).ravel()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(true, predicted, s=12, alpha=0.7)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="true", ylabel="predicted", title="Test predictions")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def _none_to_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
