"""Figures of training and its tasks: curves, confusion matrices, prediction grids, predicted against true."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from glassnet.figures import pyplot, save_figure

# line style and marker per validation metric, so that curves stay apart without colour (print, colour blindness)
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 3)), "P"))
DECADE = 10.0  # a loss whose largest value is more than this many times its smallest is drawn on a log axis


def training_curves(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    kept_epoch: int | None = None,
    monitor: str | None = None,
) -> None:
    """Loss (train and validation) and the validation metrics per epoch.

    Epochs are whole numbers on the axis; the loss is drawn on a log axis when it spans more than a
    decade (``DECADE``); each metric has its own line style and marker; the epoch whose weights were kept
    is marked in both panels.

    Args:
        history: one mapping per epoch (``epoch``, ``train/loss``, ``val/loss``, ``val/<metric>`` ...).
        path: where the PNG goes.
        kept_epoch: the epoch whose weights the run kept (the best on ``monitor``); None marks none.
        monitor: what chose ``kept_epoch`` (e.g. ``val/loss``), named in the marker's label.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    metrics = [k for k in history[0] if k.startswith("val/") and k != "val/loss"] if history else []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    losses = {"train": [_none_to_nan(h.get("train/loss")) for h in history]}
    if any("val/loss" in h for h in history):
        losses["validation"] = [_none_to_nan(h.get("val/loss")) for h in history]
    for k, (name, values) in enumerate(losses.items()):
        axes[0].plot(epochs, values, label=name, **_style(k))
    log = loss_spans_decades([v for values in losses.values() for v in values])
    axes[0].set(title="Loss" + (" (log scale)" if log else ""), xlabel="epoch", ylabel="loss")
    if log:
        axes[0].set_yscale("log")
    for k, key in enumerate(metrics):
        values = [_none_to_nan(h.get(key)) for h in history]
        axes[1].plot(epochs, values, label=metric_label(key, split=False), **_style(k))
    axes[1].set(title="Validation metrics", xlabel="epoch")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if kept_epoch is not None and epochs:
            kept = f"kept: epoch {kept_epoch}" + (f" (best {metric_label(monitor)})" if monitor else "")
            ax.axvline(kept_epoch, color="0.35", linestyle="--", linewidth=1, label=kept)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    save_figure(fig, path)


def _style(k: int) -> dict[str, Any]:
    """The ``k``-th curve's look: the first solid and thick with filled markers, the others thinner with hollow
    markers of other shapes and other dash patterns, so that curves lying on top of each other stay visible."""
    style, marker = _STYLES[k % len(_STYLES)]
    look: dict[str, Any] = {"linestyle": style, "marker": marker, "markersize": 4 if k else 3.5}
    if k:
        look.update(linewidth=1.3, markerfacecolor="none", markeredgewidth=1.1)
    else:
        look.update(linewidth=2.2)
    return look


def loss_spans_decades(values: Sequence[float]) -> bool:
    """Whether the finite ``values`` are all positive and their largest is more than ``DECADE`` times their smallest."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) > DECADE * min(finite)


def metric_label(key: str, split: bool = True) -> str:
    """A logged metric's name in words: ``val/macro_f1`` -> ``validation macro-F1`` (``macro-F1`` without ``split``)."""
    where, _, name = key.rpartition("/")
    words = {"macro_f1": "macro-F1", "f1": "F1", "micro_f1": "micro-F1", "auroc": "AUROC", "mse": "MSE",
             "mae": "MAE", "rmse": "RMSE", "r2": "R\u00b2"}.get(name, name.replace("_", " "))  # fmt: skip
    prefix = {"val": "validation ", "train": "training ", "test": "test "}.get(where, "") if split else ""
    return prefix + words


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
