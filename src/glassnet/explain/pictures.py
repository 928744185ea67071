"""Pictures of attributions, one kind per modality: heat-map overlays (images, spectrograms), signed bar
charts (tables), coloured time axes (series), highlighted tokens (text, as HTML), and the trust curves."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from glassnet.runs import atomic_write

POSITIVE, NEGATIVE = "#c0392b", "#2166ac"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    _pyplot().close(fig)


def _limit(values: np.ndarray) -> float:
    """A symmetric colour limit that a few extreme values do not wash out."""
    finite = np.abs(values[np.isfinite(values)])
    return float(np.percentile(finite, 99)) if finite.size and finite.max() > 0 else 1.0


def _show_input(ax: Any, image: np.ndarray) -> None:
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", interpolation="nearest")
    else:
        ax.imshow(np.clip(image[:3].transpose(1, 2, 0), 0, 1), interpolation="nearest")


def image_overlays(
    images: np.ndarray,
    heat: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike[str],
    columns: int = 4,
) -> None:
    """Each input beside its attribution map (red: supports the class, blue: against it)."""
    plt = _pyplot()
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns * 2, figsize=(columns * 2 * 1.5, rows * 1.75), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        r, c = divmod(k, columns)
        left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
        _show_input(left, images[k])
        left.set_title(titles[k], fontsize=7)
        limit = _limit(heat[k])
        _show_input(right, images[k])
        right.imshow(heat[k], cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.65, interpolation="bilinear")
        right.set_title("attribution", fontsize=7)
    _save(fig, path)


def heat_grid(heat: np.ndarray, titles: Sequence[str], path: str | os.PathLike[str], columns: int = 6) -> None:
    """Attribution maps alone (per-class means)."""
    plt = _pyplot()
    n = len(heat)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.5, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        ax = axes.flat[k]
        limit = _limit(heat[k])
        ax.imshow(heat[k], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="bilinear")
        ax.set_title(titles[k], fontsize=7)
    _save(fig, path)


def spectrogram_overlays(
    spectrograms: np.ndarray, heat: np.ndarray, titles: Sequence[str], path: str | os.PathLike[str]
) -> None:
    """Spectrograms (mel bands up, frames across) with their attribution as a translucent overlay."""
    plt = _pyplot()
    n = len(spectrograms)
    fig, axes = plt.subplots(n, 2, figsize=(8, 1.9 * n), squeeze=False)
    for k in range(n):
        axes[k, 0].imshow(spectrograms[k][0], origin="lower", aspect="auto", cmap="magma")
        axes[k, 0].set(title=titles[k], ylabel="mel band")
        limit = _limit(heat[k])
        axes[k, 1].imshow(spectrograms[k][0], origin="lower", aspect="auto", cmap="gray")
        axes[k, 1].imshow(heat[k], origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6)
        axes[k, 1].set(title="attribution")
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    _save(fig, path)


def series_overlays(
    series: np.ndarray,
    per_step: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike[str],
    channel_names: Sequence[str] = (),
) -> None:
    """Time series (``T x C``) over a background coloured by each time step's attribution."""
    plt = _pyplot()
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.8 * n), squeeze=False)
    for k in range(n):
        ax = axes[k, 0]
        limit = _limit(per_step[k])
        steps = series[k].shape[0]
        ax.imshow(
            per_step[k][None, :],
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            aspect="auto",
            alpha=0.45,
            extent=(-0.5, steps - 0.5, float(series[k].min()), float(series[k].max()) + 1e-9),
        )
        for c in range(series[k].shape[1]):
            label = channel_names[c] if c < len(channel_names) else None
            ax.plot(np.arange(steps), series[k][:, c], linewidth=1, label=label)
        ax.set_title(titles[k], fontsize=8)
        if channel_names and k == 0:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time step")
    _save(fig, path)


def feature_bars(
    names: Sequence[str], values: np.ndarray, title: str, path: str | os.PathLike[str], top: int = 15
) -> None:
    """Signed horizontal bars of the features with the largest magnitude (red pushes towards the class)."""
    plt = _pyplot()
    order = np.argsort(-np.abs(values))[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.32 * len(order) + 1))
    ax.barh(
        [names[i] for i in order],
        values[order],
        color=[POSITIVE if values[i] > 0 else NEGATIVE for i in order],
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(title=title, xlabel="attribution (towards the explained class)")
    ax.tick_params(axis="y", labelsize=8)
    _save(fig, path)


def curves(faithfulness: dict[str, Any], title: str, path: str | os.PathLike[str]) -> None:
    """Deletion and insertion curves of the method against random orderings."""
    plt = _pyplot()
    x = faithfulness["fractions"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, key, label in ((axes[0], "deletion", "Deletion (lower is better)"), (axes[1], "insertion", "Insertion")):
        ax.plot(x, faithfulness[key], marker=".", label=f"{title} (area {faithfulness[key + '_auc']:.3f})")
        ax.plot(
            x,
            faithfulness["random_" + key],
            linestyle="--",
            color="grey",
            label=f"random order (area {faithfulness['random_' + key + '_auc']:.3f})",
        )
        ax.set(title=label + ("" if key == "deletion" else " (higher is better)"), xlabel="fraction of input changed")
        ax.set_ylabel("score of the explained class")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def token_html(tokens: Sequence[str], scores: Sequence[float], limit: float | None = None) -> str:
    """Tokens as HTML spans shaded by attribution: red supports the class, blue speaks against it."""
    values = np.asarray(scores, dtype=float)
    limit = limit or _limit(values) or 1.0
    spans = []
    for token, score in zip(tokens, values, strict=True):
        strength = float(min(1.0, abs(score) / limit))
        rgb = (192, 57, 43) if score > 0 else (33, 102, 172)
        spans.append(
            f'<span title="{score:+.4f}" style="background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{strength:.2f});'
            f'padding:1px 2px;border-radius:3px">{html.escape(token)}</span>'
        )
    return " ".join(spans)
