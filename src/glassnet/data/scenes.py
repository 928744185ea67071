"""Built-in segmentation scenes composed from real item images: ``digits-scenes`` and ``fashion-scenes``.

No segmentation benchmark can be downloaded here, so scenes are composed, seeded, from the items
of a classification dataset: each scene is a blank canvas with a few items pasted at random scales
and positions. Later items cover earlier ones (occlusion; a position is redrawn, up to
``PLACEMENT_TRIES`` times, while more than ``MAX_COVER`` of the new item would overlap others);
small fragments cut from other items of the same split are pasted first as clutter that belongs to
the background; mild noise is added.
An item's silhouette is its pixels brighter than ``SILHOUETTE`` with the holes filled, so the mask
follows the item's outline, not its bounding box. The semantic mask gives every visible silhouette
pixel its item's class + 1 and 0 (``background``) elsewhere.

Splits never share items: training scenes use training items only, validation scenes the held-out
validation items, and test scenes the test items (Fashion-MNIST's official test set; digits' seeded
test share), so a test score measures items the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.registry import register_dataset
from glassnet.data.splits import stratified_split
from glassnet.errors import ConfigError

SILHOUETTE = 0.1  # an item pixel this bright (of 1) belongs to the item's silhouette
NOISE = 0.02  # standard deviation of the Gaussian noise added to every scene
BACKGROUND = "background"
PLACEMENT_TRIES = 8  # random positions tried for an item before taking the least covered one
MIN_VISIBLE = 12  # an item with fewer visible pixels has no box (it is hidden)
MAX_COVER = 0.3  # share of a new item's silhouette that may overlap items already placed


@dataclass(frozen=True)
class Layout:
    """How scenes are composed.

    Attributes:
        canvas: side of the square scene in pixels.
        items: fewest and most items per scene.
        sizes: smallest and largest side of a pasted item in pixels (the item is resized to it).
        clutter: most background fragments per scene.
        fragment: smallest and largest side of a fragment.
    """

    canvas: int
    items: tuple[int, int]
    sizes: tuple[int, int]
    clutter: int
    fragment: tuple[int, int]


def compose_scenes(
    items: np.ndarray, labels: np.ndarray, count: int, layout: Layout, seed: int
) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, int, int, int, int]]]]:
    """Compose ``count`` scenes from ``items``.

    Args:
        items: ``N x H x W`` float item images in [0, 1] (bright is the item).
        labels: the class index of each item.
        count: scenes to make.
        layout: canvas, items per scene, item sizes and clutter.
        seed: seeds every draw (the same arguments give the same scenes).

    Returns:
        ``(images, masks, placed, instances)``: float32 ``count x 1 x S x S`` scenes in [0, 1], int64
        ``count x S x S`` semantic masks (0 background, class + 1 on visible silhouettes), per
        scene the pasted items as ``(item index, top, left, height, width)`` in pasting order, and
        int64 ``count x S x S`` instance maps (0 background, k on the visible pixels of the k-th
        pasted item).
    """
    import torch
    import torch.nn.functional as F
    from scipy.ndimage import binary_fill_holes

    rng = np.random.default_rng(seed)
    side = layout.canvas
    low, high = layout.sizes
    if high > side:
        raise ConfigError(f"items up to {high} pixels do not fit a {side}-pixel canvas")
    per_scene = rng.integers(layout.items[0], layout.items[1] + 1, size=count)
    chosen = rng.integers(0, len(items), size=int(per_scene.sum()))
    sizes = rng.integers(low, high + 1, size=len(chosen))
    resized: list[np.ndarray] = [np.empty(0)] * len(chosen)
    for size in np.unique(sizes):  # one batched resize per size
        where = np.flatnonzero(sizes == size)
        batch = torch.as_tensor(items[chosen[where]], dtype=torch.float32)[:, None]
        out = F.interpolate(batch, size=(int(size), int(size)), mode="bilinear", align_corners=False)
        for k, image in zip(where, out[:, 0].clamp(0, 1).numpy()):
            resized[k] = image
    images = np.zeros((count, side, side), dtype=np.float32)
    masks = np.zeros((count, side, side), dtype=np.int64)
    instances = np.zeros((count, side, side), dtype=np.int64)
    placed: list[list[tuple[int, int, int, int, int]]] = []
    k = 0
    for scene in range(count):
        canvas, mask, instance = images[scene], masks[scene], instances[scene]
        for _ in range(int(rng.integers(0, layout.clutter + 1))):
            source = items[rng.integers(0, len(items))]
            h, w = (int(v) for v in rng.integers(layout.fragment[0], layout.fragment[1] + 1, size=2))
            y0, x0 = int(rng.integers(0, source.shape[0] - h + 1)), int(rng.integers(0, source.shape[1] - w + 1))
            top, left = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
            patch = source[y0 : y0 + h, x0 : x0 + w] * float(rng.uniform(0.4, 0.8))
            np.maximum(canvas[top : top + h, left : left + w], patch, out=canvas[top : top + h, left : left + w])
        scene_items = []
        for _ in range(int(per_scene[scene])):
            image, index = resized[k], int(chosen[k])
            k += 1
            h, w = image.shape
            silhouette = binary_fill_holes(image > SILHOUETTE)
            top, left = _place(mask, silhouette, side, rng)
            region = canvas[top : top + h, left : left + w]
            region[silhouette] = image[silhouette]
            mask[top : top + h, left : left + w][silhouette] = int(labels[index]) + 1
            instance[top : top + h, left : left + w][silhouette] = len(scene_items) + 1
            scene_items.append((index, top, left, h, w))
        placed.append(scene_items)
    images += rng.normal(0.0, NOISE, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images[:, None], masks, placed, instances


def _place(mask: np.ndarray, silhouette: np.ndarray, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """A position for ``silhouette``: the first of ``PLACEMENT_TRIES`` random ones that covers at most
    ``MAX_COVER`` of it with items already placed, else the least covered one (items overlap, but an
    item is rarely hidden whole)."""
    h, w = silhouette.shape
    area = max(int(silhouette.sum()), 1)
    best, best_cover = (0, 0), 2.0
    for _ in range(PLACEMENT_TRIES):
        top, left = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
        cover = float((mask[top : top + h, left : left + w][silhouette] > 0).sum()) / area
        if cover <= MAX_COVER:
            return top, left
        if cover < best_cover:
            best, best_cover = (top, left), cover
    return best


def _scene_bundle(
    name: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    counts: dict[str, int],
    layout: Layout,
    class_names: tuple[str, ...],
    seed: int,
    info: dict,
    targets: str = "masks",
) -> DataBundle:
    composed = {}
    for offset, split in enumerate(("train", "val", "test")):
        items, labels = splits[split]
        if counts[split] and not len(items):
            raise ConfigError(f"{name}: the {split} split has no items to compose {counts[split]} scenes from")
        images, masks, _, instances = compose_scenes(items, labels, counts[split], layout, seed * 3 + offset)
        if targets == "masks":
            composed[split] = (images, masks)
        elif targets == "instances":
            composed[split] = (images, scene_instances(masks, instances))
        else:
            composed[split] = (images, scene_boxes(masks, instances, layout.items[1]))
    task = {"masks": "segment", "instances": "instances", "boxes": "detect"}[targets]
    return bundle_from_splits(
        composed["train"],
        composed["val"],
        composed["test"],
        name=name,
        modality="image",
        task=task,
        class_names=class_names if targets == "boxes" else (BACKGROUND, *class_names),
        extra={"max_objects": layout.items[1]} if targets == "boxes" else {},
        info={
            **info,
            "scenes": dict(counts),
            "layout": {
                "canvas": layout.canvas,
                "items_per_scene": list(layout.items),
                "item_sizes": list(layout.sizes),
                "clutter_fragments": layout.clutter,
            },
            "scene_seed": seed,
        },
    )


def scene_instances(masks: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """Instance targets: int64 ``N x 2 x S x S``, the semantic mask then the instance map.

    An item with fewer than ``MIN_VISIBLE`` visible pixels is hidden, as for the boxes: its pixels
    keep their class in the semantic mask but belong to no instance (id 0).
    """
    kept = instances.copy()
    for instance in kept:
        counts = np.bincount(instance.reshape(-1))
        hidden = np.nonzero((counts > 0) & (counts < MIN_VISIBLE))[0]
        hidden = hidden[hidden > 0]
        if len(hidden):
            instance[np.isin(instance, hidden)] = 0
    return np.stack([masks, kept], axis=1).astype(np.int64)


def scene_boxes(masks: np.ndarray, instances: np.ndarray, max_objects: int) -> np.ndarray:
    """Boxes of the visible part of every item: float32 ``N x max_objects x 5`` rows ``class, x1, y1, x2, y2``.

    Coordinates are shares of the image's width and height (0 to 1), the far edges exclusive (a
    one-pixel item at column 3 of 32 spans 3/32 to 4/32); an item with fewer than ``MIN_VISIBLE``
    visible pixels is left out (it is hidden, not an object to find). Unused rows have class -1.
    """
    boxes = np.zeros((len(masks), max_objects, 5), dtype=np.float32)
    boxes[:, :, 0] = -1
    for n, (mask, instance) in enumerate(zip(masks, instances)):
        row = 0
        for k in range(1, int(instance.max()) + 1):
            ys, xs = np.nonzero(instance == k)
            if len(ys) < MIN_VISIBLE:
                continue
            height, width = mask.shape
            x1, y1, x2, y2 = xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height
            boxes[n, row] = (mask[ys[0], xs[0]] - 1, x1, y1, x2, y2)
            row += 1
    return boxes


def _check_counts(name: str, counts: dict[str, int]) -> None:
    for split, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < (1 if split == "train" else 0):
            raise ConfigError(
                f"{name} {split}_scenes must be a whole number of scenes (train at least 1). Received: {n!r}"
            )


DIGITS_LAYOUT = Layout(canvas=32, items=(1, 3), sizes=(10, 16), clutter=2, fragment=(2, 4))
FASHION_LAYOUT = Layout(canvas=64, items=(1, 3), sizes=(20, 36), clutter=3, fragment=(4, 8))


def scaled(layout: Layout, canvas: int | None) -> Layout:
    """``layout`` on another canvas side, item and fragment sizes scaled with it (None: unchanged)."""
    if canvas is None or canvas == layout.canvas:
        return layout
    if isinstance(canvas, bool) or not isinstance(canvas, int) or canvas < 8:
        raise ConfigError(f"canvas must be a whole number of pixels, at least 8. Received: canvas={canvas!r}")
    factor = canvas / layout.canvas

    def size(pair: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(pair[0] * factor)), max(1, round(pair[1] * factor))

    return Layout(canvas, layout.items, size(layout.sizes), layout.clutter, size(layout.fragment))


def _digits(
    name: str, targets: str, counts: dict[str, int], split_seed: int, scene_seed: int, canvas: int | None
) -> DataBundle:
    from sklearn.datasets import load_digits

    _check_counts(name, counts)
    raw = load_digits()
    items = (raw.images / 16.0).astype(np.float32)
    train, val, test = stratified_split(raw.target, 0.15, 0.15, split_seed)
    splits = {s: (items[i], raw.target[i]) for s, i in (("train", train), ("val", val), ("test", test))}
    info = {"source": "scikit-learn digits", "split_seed": split_seed, "item_split": "stratified 70/15/15"}
    names = tuple(str(d) for d in range(10))
    return _scene_bundle(name, splits, counts, scaled(DIGITS_LAYOUT, canvas), names, scene_seed, info, targets)


def _fashion(
    name: str,
    targets: str,
    counts: dict[str, int],
    split_seed: int,
    scene_seed: int,
    download: bool,
    canvas: int | None,
) -> DataBundle:
    from glassnet.data.fashion_mnist import CLASS_NAMES, load_idx_folder, locate_files

    _check_counts(name, counts)
    folder = locate_files(download)
    (x_train, y_train), (x_test, y_test) = load_idx_folder(folder)
    fit, _, val = stratified_split(y_train, 0.0, 0.1, split_seed)
    scale = np.float32(1 / 255)
    splits = {
        "train": (x_train[fit] * scale, y_train[fit]),
        "val": (x_train[val] * scale, y_train[val]),
        "test": (x_test * scale, y_test),
    }
    info = {"source": "Fashion-MNIST", "files": str(folder), "split_seed": split_seed}
    layout = scaled(FASHION_LAYOUT, canvas)
    return _scene_bundle(name, splits, counts, layout, CLASS_NAMES, scene_seed, info, targets)


_DIGITS_SOURCE = "composed from scikit-learn's digits (bundled, BSD-3); items never shared between splits"
_FASHION_SOURCE = "composed from Fashion-MNIST (needs its files, see fashion-mnist); test scenes use only test items"


@register_dataset(
    "digits-scenes",
    task="segment",
    modality="image",
    size="2,000 / 400 / 400 scenes, 32x32 grey, 10 classes + background",
    source=_DIGITS_SOURCE,
    description="semantic segmentation: 1-3 handwritten digits pasted at 10-16 px with occlusion and clutter",
)
def digits_scenes(
    train_scenes: int = 2000,
    val_scenes: int = 400,
    test_scenes: int = 400,
    split_seed: int = 0,
    scene_seed: int = 0,
    canvas: int = 32,
) -> DataBundle:
    """Scenes of 1-3 digits on a 32x32 canvas, one class per pixel; each split's digits come from its own
    share of the 1,797.

    Args:
        train_scenes: training scenes (``val_scenes``, ``test_scenes`` likewise).
        split_seed: seed of the stratified 70/15/15 split of the digit images.
        scene_seed: seed of the composition.
        canvas: side of the scenes in pixels; item sizes scale with it.
    """
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _digits("digits-scenes", "masks", counts, split_seed, scene_seed, canvas)


@register_dataset(
    "digits-detection",
    task="detect",
    modality="image",
    size="2,000 / 400 / 400 scenes, 32x32 grey, 10 classes, 1-3 boxes each",
    source=_DIGITS_SOURCE,
    description="object detection: the digits-scenes scenes with a box around the visible part of each digit",
)
def digits_detection(
    train_scenes: int = 2000,
    val_scenes: int = 400,
    test_scenes: int = 400,
    split_seed: int = 0,
    scene_seed: int = 0,
    canvas: int = 32,
) -> DataBundle:
    """The scenes of ``digits-scenes`` (same options, same seeds: the same images) with boxes as targets."""
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _digits("digits-detection", "boxes", counts, split_seed, scene_seed, canvas)


@register_dataset(
    "fashion-scenes",
    task="segment",
    modality="image",
    size="6,000 / 1,000 / 1,000 scenes, 64x64 grey, 10 classes + background",
    source=_FASHION_SOURCE,
    description="semantic segmentation: 1-3 Fashion-MNIST articles pasted at 20-36 px with occlusion and clutter",
)
def fashion_scenes(
    train_scenes: int = 6000,
    val_scenes: int = 1000,
    test_scenes: int = 1000,
    split_seed: int = 0,
    scene_seed: int = 0,
    download: bool = True,
    canvas: int = 64,
) -> DataBundle:
    """Scenes of 1-3 clothing articles on a 64x64 canvas, one class per pixel.

    Training and validation scenes use the 60,000 training images (10% held out for validation
    items, stratified by ``split_seed``); test scenes use the official 10,000 test images.

    Args:
        train_scenes: training scenes (``val_scenes``, ``test_scenes`` likewise).
        split_seed: seed of the validation share of the training items.
        scene_seed: seed of the composition.
        download: fetch the Fashion-MNIST files when they are not on this machine.
        canvas: side of the scenes in pixels; item sizes scale with it (128: items of 40-72 pixels).
    """
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _fashion("fashion-scenes", "masks", counts, split_seed, scene_seed, download, canvas)


@register_dataset(
    "fashion-detection",
    task="detect",
    modality="image",
    size="6,000 / 1,000 / 1,000 scenes, 64x64 grey, 10 classes, 1-3 boxes each",
    source=_FASHION_SOURCE,
    description="object detection: the fashion-scenes scenes with a box around the visible part of each article",
)
def fashion_detection(
    train_scenes: int = 6000,
    val_scenes: int = 1000,
    test_scenes: int = 1000,
    split_seed: int = 0,
    scene_seed: int = 0,
    download: bool = True,
    canvas: int = 64,
) -> DataBundle:
    """The scenes of ``fashion-scenes`` (same options, same seeds: the same images) with boxes as targets."""
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _fashion("fashion-detection", "boxes", counts, split_seed, scene_seed, download, canvas)


@register_dataset(
    "digits-instances",
    task="instances",
    modality="image",
    size="2,000 / 400 / 400 scenes, 32x32 grey, 10 classes + background, 1-3 instances each",
    source=_DIGITS_SOURCE,
    description="instance segmentation: the digits-scenes scenes with each visible digit's own mask",
)
def digits_instances(
    train_scenes: int = 2000,
    val_scenes: int = 400,
    test_scenes: int = 400,
    split_seed: int = 0,
    scene_seed: int = 0,
    canvas: int = 32,
) -> DataBundle:
    """The scenes of ``digits-scenes`` (same options, same seeds: the same images) with the semantic mask
    and the instance map as targets (``N x 2 x S x S``)."""
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _digits("digits-instances", "instances", counts, split_seed, scene_seed, canvas)


@register_dataset(
    "fashion-instances",
    task="instances",
    modality="image",
    size="6,000 / 1,000 / 1,000 scenes, 64x64 grey, 10 classes + background, 1-3 instances each",
    source=_FASHION_SOURCE,
    description="instance segmentation: the fashion-scenes scenes with each visible article's own mask",
)
def fashion_instances(
    train_scenes: int = 6000,
    val_scenes: int = 1000,
    test_scenes: int = 1000,
    split_seed: int = 0,
    scene_seed: int = 0,
    download: bool = True,
    canvas: int = 64,
) -> DataBundle:
    """The scenes of ``fashion-scenes`` (same options, same seeds: the same images) with the semantic mask
    and the instance map as targets (``N x 2 x S x S``)."""
    counts = {"train": train_scenes, "val": val_scenes, "test": test_scenes}
    return _fashion("fashion-instances", "instances", counts, split_seed, scene_seed, download, canvas)
