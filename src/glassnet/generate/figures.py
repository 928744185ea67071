"""Pictures of generated images: mosaics as PNG files a user opens, and the report's figures.

``mosaic`` lays images out in a grid (one pixel of padding between them) and ``write_png`` saves a
mosaic or one image as an ordinary PNG (upscaled with nearest-neighbour so an 8 x 8 digit is
visible); the report's figures (samples per class, nearest training neighbours, class coverage)
are matplotlib charts saved with ``glassnet.figures.save_figure``.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.figures import pyplot, save_figure
from glassnet.runs import atomic_write

PER_CLASS = 8  # images per class row of the report's grid
MIN_SHOWN = 48  # pixels on the shorter side of each image in a written PNG (small images are upscaled)


def mosaic(images: torch.Tensor, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """``N x C x H x W`` images in [0, 1] as one ``H' x W' x C`` array in a grid (white padding)."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, channels, height, width = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    canvas = np.ones((rows * (height + pad) + pad, columns * (width + pad) + pad, channels), dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        canvas[top : top + height, left : left + width] = images[k].permute(1, 2, 0).numpy()
    return canvas


def png_bytes(picture: np.ndarray, scale: int = 1) -> bytes:
    """A ``H x W x C`` array in [0, 1] (C = 1 or 3) as PNG bytes, each pixel repeated ``scale`` times each way."""
    from PIL import Image

    pixels = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
    pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels[:, :, :3])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def upscale(height: int, width: int) -> int:
    """The whole factor that shows an image of ``height x width`` at least ``MIN_SHOWN`` pixels on its shorter side."""
    return max(1, math.ceil(MIN_SHOWN / max(1, min(height, width))))


def write_png(picture: np.ndarray, path: str | os.PathLike[str], scale: int = 1) -> Path:
    """Write a picture (``H x W x C`` in [0, 1]) as a PNG, atomically, upscaled ``scale`` times; returns the path."""
    data = png_bytes(picture, scale)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return Path(path)


def _show(ax: Any, picture: np.ndarray) -> None:
    if picture.shape[2] == 1:
        ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(picture[:, :, :3], interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def samples_by_class(
    fake: torch.Tensor,
    asked: torch.Tensor,
    predicted: torch.Tensor,
    names: list[str],
    conditional: bool,
    path: str | os.PathLike[str],
) -> None:
    """One row per class: samples generated for it (conditional) or that the classifier puts in it."""
    plt = pyplot()
    groups = asked if conditional else predicted
    rows = []
    for c in range(len(names)):
        chosen = torch.nonzero(groups == c).flatten()[:PER_CLASS]
        row = torch.ones(PER_CLASS, *fake.shape[1:])
        row[: len(chosen)] = fake[chosen]
        rows.append(row)
    picture = mosaic(torch.cat(rows), columns=PER_CLASS)
    fig, ax = plt.subplots(figsize=(PER_CLASS * 0.55 + 1.6, len(names) * 0.55 + 0.4))
    _show(ax, picture)
    height = fake.shape[2] + 1
    ax.set_yticks([1 + height * (c + 0.5) for c in range(len(names))], labels=names, fontsize=8)
    how = "generated for each class" if conditional else "grouped by the class the feature classifier sees"
    ax.set_title(f"samples {how}", fontsize=9)
    save_figure(fig, path)


def nearest_pairs(fake: torch.Tensor, train: torch.Tensor, pairs: list[tuple[int, int, float]], path: Any) -> None:
    """The samples closest to a training image (top row) above their nearest training images."""
    plt = pyplot()
    n = len(pairs)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.0 + 0.6, 2.4), squeeze=False)
    for k, (sample, neighbour, distance) in enumerate(pairs):
        _show(axes[0, k], fake[sample].permute(1, 2, 0).clamp(0, 1).numpy())
        _show(axes[1, k], train[neighbour].float().permute(1, 2, 0).clamp(0, 1).numpy())
        axes[0, k].set_title(f"d={distance:.2f}", fontsize=7)
    axes[0, 0].set_ylabel("sample", fontsize=8)
    axes[1, 0].set_ylabel("nearest\ntraining", fontsize=8)
    save_figure(fig, path)


def coverage_bars(coverage: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Share of the samples per class (by the feature classifier) beside the test split's share (and, when
    measured, the share of test images the classifier puts in the class)."""
    plt = pyplot()
    classes = coverage["classes"]
    x = np.arange(len(classes))
    bars = [("generated", "share", 1.0), ("test images", "test_share", 0.6)]
    if all("test_predicted_share" in c for c in classes):
        bars.append(("test images, by the classifier", "test_predicted_share", 0.4))
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(classes) + 1.5), 3.0))
    for i, (label, key, alpha) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, [c[key] for c in classes], width=width, label=label, alpha=alpha)
    ax.set_xticks(
        x, labels=[c["name"] for c in classes], rotation=45 if len(classes) > 6 else 0, ha="right", fontsize=8
    )
    ax.set_ylabel("share of images")
    ax.set_title("class coverage (feature classifier's labels)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (keeps the norm a Gaussian draw has)."""
    cosine = float((a.flatten() @ b.flatten()) / (a.norm() * b.norm()).clamp(min=1e-12))
    omega = math.acos(max(-1.0, min(1.0, cosine)))
    if math.sin(omega) < 1e-6:
        return (1 - weight) * a + weight * b
    return (math.sin((1 - weight) * omega) * a + math.sin(weight * omega) * b) / math.sin(omega)


def interpolation_strip(
    model: Any, names: list[str], seed: int, path: str | os.PathLike[str], rows: int = 4, steps: int = 8
) -> None:
    """Rows of images drawn from noise moving between two random draws (one class per row when conditional).

    A smooth row says the model maps nearby noise to nearby images; jumps or repeats say it has
    learnt a few isolated images. A diffusion model's row starts DDIM (deterministic) from the
    interpolated noise.
    """
    plt = pyplot()
    generator = torch.Generator().manual_seed(seed)
    classes: list[int | None] = list(range(min(rows, len(names)))) if model.conditional else [None] * rows
    strips = []
    for c in classes:
        a, b = torch.randn(model.noise_shape, generator=generator), torch.randn(model.noise_shape, generator=generator)
        noise = torch.stack([slerp(a, b, float(w)) for w in torch.linspace(0, 1, steps)])
        labels = torch.full((steps,), c, dtype=torch.long) if c is not None else None
        strips.append(model.sample(steps, labels=labels, noise=noise).cpu())
    images = torch.cat(strips)
    fig, ax = plt.subplots(figsize=(steps * 0.55 + 1.6, len(classes) * 0.55 + 0.5))
    _show(ax, mosaic(images, columns=steps))
    height = images.shape[2] + 1
    labels_shown = [names[c] if c is not None else "" for c in classes]
    ax.set_yticks([1 + height * (r + 0.5) for r in range(len(classes))], labels=labels_shown, fontsize=8)
    ax.set_title("noise interpolated between two draws, left to right", fontsize=9)
    save_figure(fig, path)


def across_training(snapshots: list[torch.Tensor], path: str | os.PathLike[str], rows: int = 8) -> None:
    """The same noise's samples after successive validations (epochs), one row each (at most ``rows``)."""
    plt = pyplot()
    shown = min(rows, len(snapshots))
    picked = sorted({round(i * (len(snapshots) - 1) / max(1, shown - 1)) for i in range(shown)})
    images = torch.cat([snapshots[i] for i in picked])
    columns = len(snapshots[0])
    fig, ax = plt.subplots(figsize=(columns * 0.55 + 1.6, len(picked) * 0.55 + 0.5))
    _show(ax, mosaic(images, columns=columns))
    height = images.shape[2] + 1
    ax.set_yticks([1 + height * (r + 0.5) for r in range(len(picked))], labels=[f"{i + 1}" for i in picked], fontsize=8)
    ax.set_ylabel("validation (epoch)", fontsize=8)
    ax.set_title("samples from the same noise across training", fontsize=9)
    save_figure(fig, path)


def quality_curves(curve: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """FID (log scale) and the classes covered (and, conditional, the class agreement) at each validation."""
    plt = pyplot()
    points = curve["points"]
    epochs = [p["epoch"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.0))
    left.plot(epochs, [p["fid"] for p in points], marker="o", markersize=3)
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("FID (feature classifier)")
    left.set_title("FID against the validation images", fontsize=9)
    right.plot(epochs, [p["covered"] for p in points], marker="o", markersize=3, label="classes covered")
    right.set_xlabel("epoch")
    right.set_ylabel("classes covered")
    right.set_ylim(0, (curve.get("classes") or max(p["covered"] for p in points)) + 0.5)
    if any(p.get("agreement") is not None for p in points):
        twin = right.twinx()
        twin.plot(epochs, [p.get("agreement") for p in points], color="tab:orange", linestyle="--", marker="s",
                  markersize=3, label="class agreement")  # fmt: skip
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("class agreement")
        lines = right.get_lines() + twin.get_lines()
        right.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="lower right")
    right.set_title("class coverage across training", fontsize=9)
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    save_figure(fig, path)
