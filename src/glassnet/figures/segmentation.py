"""Figures of segmentation and detection runs: masks and boxes over test images."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from glassnet.figures import pyplot, save_figure


def palette(classes: int) -> np.ndarray:
    """``classes x 3`` RGB colours in [0, 1]: black for class 0 (background), distinct hues for the rest."""
    plt = pyplot()
    colours = np.zeros((classes, 3))
    if classes > 1:
        cmap = plt.get_cmap("tab20" if classes > 11 else "tab10")
        colours[1:] = [cmap(i % cmap.N)[:3] for i in range(classes - 1)]
    return colours


def coloured(mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """An ``H x W`` class-id mask as an ``H x W x 3`` picture (unlabelled pixels grey)."""
    picture = np.full((*mask.shape, 3), 0.5)
    known = (mask >= 0) & (mask < len(colours))
    picture[known] = colours[mask[known]]
    return picture


def show_image(ax: object, image: np.ndarray) -> None:
    """Draw a ``C x H x W`` image in [0, 1] on ``ax``: grey for one channel, RGB otherwise."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # type: ignore[attr-defined]
    else:
        ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1), interpolation="nearest")  # type: ignore[attr-defined]


def mask_grid(
    images: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    scores: Sequence[float],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """One row per image: the image, its true mask, the predicted mask (titled with the image's mean IoU)."""
    plt = pyplot()
    n = len(images)
    colours = palette(len(class_names))
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(5.4, 1.8 * max(n, 1)), squeeze=False)
    for k in range(n):
        image = np.asarray(images[k])
        ax = axes[k]
        show_image(ax[0], image)
        ax[1].imshow(coloured(np.asarray(true[k]), colours), interpolation="nearest")
        ax[2].imshow(coloured(np.asarray(predicted[k]), colours), interpolation="nearest")
        ax[0].set_title("image", fontsize=8)
        ax[1].set_title("true", fontsize=8)
        ax[2].set_title(f"predicted (IoU {scores[k]:.2f})", fontsize=8, color="#c0392b" if scores[k] < 0.5 else "black")
        for a in ax:
            a.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[i]) for i in range(len(class_names))]
    fig.legend(handles, list(class_names), loc="lower center", ncol=min(len(class_names), 6), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.01 * (len(class_names) // 6), 1, 1))
    save_figure(fig, path)


def box_grid(
    images: np.ndarray,
    true: Sequence[np.ndarray],
    predicted: Sequence[np.ndarray],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    columns: int = 4,
) -> None:
    """Test images with their true boxes (dashed white) and predicted boxes (coloured by class, with score).

    Args:
        images: ``N x C x H x W`` in [0, 1].
        true: per image, rows ``class, x1, y1, x2, y2`` (shares of the image).
        predicted: per image, rows ``x1, y1, x2, y2, score, class``.
        class_names: the class names.
        path: where the figure is saved.
        columns: images per row.
    """
    plt = pyplot()
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    colours = palette(len(class_names) + 1)[1:]
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 2.4, rows * 2.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        image = np.asarray(images[k])
        height, width = image.shape[-2:]
        show_image(ax, image)
        for _, x1, y1, x2, y2 in np.asarray(true[k]).reshape(-1, 5):
            box = plt.Rectangle((x1 * width - 0.5, y1 * height - 0.5), (x2 - x1) * width, (y2 - y1) * height)
            box.set(fill=False, edgecolor="white", linestyle="--", linewidth=1)
            ax.add_patch(box)
        for x1, y1, x2, y2, score, cls in np.asarray(predicted[k]).reshape(-1, 6):
            colour = colours[int(cls) % len(colours)]
            box = plt.Rectangle((x1 * width - 0.5, y1 * height - 0.5), (x2 - x1) * width, (y2 - y1) * height)
            box.set(fill=False, edgecolor=colour, linewidth=1.5)
            ax.add_patch(box)
            ax.text(x1 * width, y1 * height - 1, f"{class_names[int(cls)]} {score:.2f}", color=colour, fontsize=6)
        ax.set_title(f"test image {k}", fontsize=8)
    fig.suptitle("true boxes dashed; predictions coloured, with their scores", fontsize=8)
    save_figure(fig, path)


def instance_grid(
    images: np.ndarray,
    true: Sequence[Sequence[tuple[np.ndarray, int, float]]],
    predicted: Sequence[Sequence[tuple[np.ndarray, int, float]]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """One row per image: the image, its true instances, the predicted ones (each instance its own colour,
    named by its class, and its score for predictions).

    Args:
        images: ``N x C x H x W`` in [0, 1].
        true: per image, ``(pixel mask, class, _)`` of each true instance.
        predicted: per image, ``(pixel mask, class, score)`` of each predicted instance.
        class_names: the class names.
        path: where the figure is saved.
    """
    plt = pyplot()
    n = len(images)
    hues = plt.get_cmap("tab10")
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(5.4, 1.8 * max(n, 1)), squeeze=False)
    for k in range(n):
        image = np.asarray(images[k])
        ax = axes[k]
        show_image(ax[0], image)
        ax[0].set_title("image", fontsize=8)
        for a, objects, title in ((ax[1], true[k], "true"), (ax[2], predicted[k], "predicted")):
            picture = np.zeros((*image.shape[-2:], 3))
            for j, (mask, _, _) in enumerate(objects):
                picture[mask] = hues(j % hues.N)[:3]
            a.imshow(picture, interpolation="nearest")
            for mask, cls, score in objects:
                ys, xs = np.nonzero(mask)
                label = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
                if title == "predicted":
                    label += f" {score:.2f}"
                a.text(xs.mean(), ys.mean(), label, color="white", fontsize=5, ha="center", va="center")
            a.set_title(f"{title} ({len(objects)})", fontsize=8)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def precision_recall(curves: dict[str, list[float]], path: str | os.PathLike[str]) -> None:
    """Each class's precision against recall at IoU 0.5 (COCO's 101 recall points, interpolated precision)."""
    plt = pyplot()
    recall = np.linspace(0, 1, 101)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = ("-", "--", ":", "-.")
    for k, (name, precision) in enumerate(curves.items()):
        ax.plot(recall, precision, linestyle=styles[(k // 10) % len(styles)], label=name, linewidth=1.2)
    ax.set(
        xlabel="recall", ylabel="precision", title="Precision against recall at IoU 0.5", xlim=(0, 1), ylim=(0, 1.02)
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
