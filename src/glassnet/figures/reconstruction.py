"""Figures of reconstruction runs: originals against reconstructions, anomaly scores, VAE samples."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

# the report's shared Agg setup and atomic PNG writer, so every figure of a run is saved the same way
from glassnet.figures import pyplot, save_figure

MAX_CHANNELS = 3  # more overlaid lines per panel stop being readable
MAX_FEATURES = 40


def reconstruction_pairs(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    modality: str,
    path: str | os.PathLike[str],
    titles: Sequence[str] = (),
    ylabel: str = "value",
) -> None:
    """A few test examples beside their reconstructions, drawn as the modality suits.

    Images and spectrograms (``C x H x W``) become two rows of pictures (originals above,
    reconstructions below); ``T x C`` signals become line overlays (original solid, reconstruction
    dashed); table rows (``F``) become pairs of bars per feature.

    Args:
        originals: ``N x ...`` inputs.
        reconstructions: the model's outputs, same shape as ``originals``.
        modality: the ``DataSpec`` modality (image, audio, sequence, tabular).
        path: where the PNG goes.
        titles: optional caption per example (e.g. its class and anomaly score).
        ylabel: unit of the values of signals and tables.
    """
    originals, reconstructions = np.asarray(originals, dtype=float), np.asarray(reconstructions, dtype=float)
    titles = list(titles) or [f"#{i}" for i in range(len(originals))]
    if originals.ndim == 4:
        _picture_pairs(originals, reconstructions, modality, titles, path)
    elif originals.ndim == 3:
        _line_overlays(originals, reconstructions, titles, ylabel, path)
    else:
        _bar_pairs(
            originals.reshape(len(originals), -1), reconstructions.reshape(len(originals), -1), titles, ylabel, path
        )


def _picture_pairs(
    originals: np.ndarray, reconstructions: np.ndarray, modality: str, titles: list[str], path: str | os.PathLike[str]
) -> None:
    plt = pyplot()
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(max(n, 2) * 1.4, 3.2), squeeze=False)
    for k in range(n):
        # a spectrogram pair shares one colour scale, so differences in level stay visible
        low, high = (0.0, 1.0) if modality == "image" else (originals[k].min(), originals[k].max())
        for row, picture in enumerate((originals[k], reconstructions[k])):
            ax = axes[row, k]
            ax.axis("off")
            _show(ax, picture, modality, low, high)
        axes[0, k].set_title(titles[k], fontsize=7)
    axes[0, 0].text(-0.15, 0.5, "original", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right")
    axes[1, 0].text(-0.15, 0.5, "reconstructed", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right")
    save_figure(fig, path)


def _show(ax, picture: np.ndarray, modality: str, low: float, high: float) -> None:
    if modality == "image" and picture.shape[0] == 3:
        ax.imshow(np.clip(picture.transpose(1, 2, 0), 0, 1), interpolation="nearest")
    elif modality == "image":
        ax.imshow(picture[0], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    else:
        ax.imshow(picture[0], cmap="magma", vmin=low, vmax=high, origin="lower", aspect="auto")


def _line_overlays(
    originals: np.ndarray, reconstructions: np.ndarray, titles: list[str], ylabel: str, path: str | os.PathLike[str]
) -> None:
    plt = pyplot()
    n, columns = len(originals), min(4, len(originals))
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 3.0, rows * 2.2), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        for c in range(min(originals.shape[2], MAX_CHANNELS)):
            (line,) = ax.plot(originals[k, :, c], linewidth=1.2, label="original" if c == 0 else None)
            ax.plot(reconstructions[k, :, c], linestyle="--", linewidth=1.2, color=line.get_color(),
                    label="reconstructed" if c == 0 else None)  # fmt: skip
        ax.set_title(titles[k], fontsize=8)
        ax.set(xlabel="step", ylabel=ylabel if k % columns == 0 else None)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, path)


def _bar_pairs(
    originals: np.ndarray, reconstructions: np.ndarray, titles: list[str], ylabel: str, path: str | os.PathLike[str]
) -> None:
    plt = pyplot()
    n, features = len(originals), min(originals.shape[1], MAX_FEATURES)
    fig, axes = plt.subplots(
        n, 1, figsize=(max(5.0, features * 0.25), n * 1.6), squeeze=False, sharex=True, layout="constrained"
    )
    positions = np.arange(features)
    for k, ax in enumerate(axes[:, 0]):
        ax.bar(positions - 0.2, originals[k, :features], width=0.4, label="original")
        ax.bar(positions + 0.2, reconstructions[k, :features], width=0.4, label="reconstructed")
        ax.set_ylabel(ylabel, fontsize=7)
        ax.set_title(titles[k], fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("feature")
    save_figure(fig, path)


def sample_grid(images: np.ndarray, path: str | os.PathLike[str], columns: int = 8) -> None:
    """Images generated by a VAE from its prior (``N x C x H x W`` in [0, 1])."""
    plt = pyplot()
    images = np.asarray(images, dtype=float)
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            _show(ax, images[k], "image", 0.0, 1.0)
    save_figure(fig, path)


def score_histogram(normal: np.ndarray, abnormal: np.ndarray, threshold: float, path: str | os.PathLike[str]) -> None:
    """Test anomaly scores of normal and abnormal examples, with the detection threshold.

    Scores (mean squared reconstruction errors) span orders of magnitude, so the bins are
    logarithmic.
    """
    plt = pyplot()
    everything = np.concatenate([normal, abnormal, [threshold]])
    positive = everything[everything > 0]
    floor = float(positive.min()) if positive.size else 1e-12
    bins = np.geomspace(floor, max(float(everything.max()), floor * 1.01), 40)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(np.maximum(normal, floor), bins=bins, alpha=0.6, label=f"normal ({len(normal)})")
    ax.hist(np.maximum(abnormal, floor), bins=bins, alpha=0.6, label=f"abnormal ({len(abnormal)})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set(xscale="log", xlabel="anomaly score (reconstruction MSE)", ylabel="test examples")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
