"""Images with per-pixel annotations: the ``masks`` format (an image folder beside a mask folder).

Layout::

    data/
      images/   scan_001.png, scan_002.jpg, ...
      masks/    scan_001.png, scan_002.png, ...   (same stem as the image)
      classes.txt                                   (optional: one class name per line, line 1 is id 0)

A mask is a grey (``L``) or palette (``P``) PNG whose pixel values are class ids; 255 marks pixels
that are not labelled (the VOC convention) and counts in no loss or metric. Colour (RGB) masks are
refused: their colours would have to be mapped to ids first. Without ``classes.txt`` the classes
are the ids found, named by number. Images and masks keep their size when every image has the
same one; otherwise both are resized to ``size`` (default: the most common size), the image
bilinearly and the mask with nearest-neighbour sampling so ids stay ids.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.registry import register_format
from glassnet.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
UNLABELLED = 255  # mask value of pixels without a class (VOC)
DETECT_BYTES = 256 * 2**20  # how much of a JSON file format detection reads for COCO's keys
IGNORE_INDEX = -100  # what unlabelled pixels become in the targets (PyTorch's ignore_index)


def is_mask_folder(path: Path) -> bool:
    """Whether ``path`` holds an ``images/`` and a ``masks/`` folder."""
    return path.is_dir() and (path / "images").is_dir() and (path / "masks").is_dir()


def _files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith("."):
            if entry.stem in found:
                twins = f"{found[entry.stem].name}, {entry.name}"
                raise DataError(f"{folder} holds two files named {entry.stem!r} ({twins}); keep one")
            found[entry.stem] = entry
    return found


def _check_options(val_fraction: float, test_fraction: float, channels: int | str) -> None:
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "val_fraction and test_fraction must be in [0, 1) and sum below 1. "
            f"Received: {val_fraction}, {test_fraction}"
        )
    if channels not in ("auto", 1, 3):
        raise ConfigError(f"channels must be 1, 3 or auto. Received: channels={channels!r}")


def _paired(images: dict[str, Path], others: dict[str, Path], image_dir: Path, other_dir: Path, kind: str) -> None:
    """Check that every image has a ``kind`` file of the same name and every such file an image."""
    if not images:
        raise DataError(f"{image_dir} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(images) - set(others))
    if missing:
        raise DataError(
            f"{len(missing)} image(s) in {image_dir} have no {kind} of the same name in {other_dir}, "
            f"e.g. {images[missing[0]].name}; add the {kind}s or remove the images"
        )
    orphans = sorted(set(others) - set(images))
    if orphans:
        raise DataError(
            f"{len(orphans)} {kind}(s) in {other_dir} have no image of the same name, e.g. {others[orphans[0]].name}"
        )


def _geometry(
    files: list[Path], channels: int | str, size: int | list[int] | None
) -> tuple[int, tuple[int, int], list[tuple[int, int]]]:
    """``(channels, target size, each image's size)``: RGB when any image is in colour (``auto``), the most
    common size unless ``size`` names one.

    Raises:
        DataError: an image cannot be read (named).
        ConfigError: ``size`` is not a positive number or a pair of them.
    """
    from PIL import Image

    modes, sizes = [], []
    for file in files:
        try:
            with Image.open(file) as image:
                modes.append(image.mode)
                sizes.append((image.height, image.width))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image '{file}': {exc}. Replace it or delete it") from exc
    if channels == "auto":
        channels = 3 if any(m not in ("1", "L", "I", "I;16", "F", "LA", "P") for m in modes) else 1
    if size is None:
        return int(channels), Counter(sizes).most_common(1)[0][0], sizes
    values = [size, size] if isinstance(size, int) else list(size)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ConfigError(f"size must be a positive number of pixels or [height, width]. Received: size={size!r}")
    return int(channels), (values[0], values[1]), sizes


def _class_file(path: Path) -> tuple[str, ...]:
    """The class names of a ``classes.txt`` (one per line, blank lines skipped); () when there is none."""
    if not path.is_file():
        return ()
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _split(n: int, val_fraction: float, test_fraction: float, seed: int, root: Path) -> tuple[np.ndarray, ...]:
    """Seeded random ``(train, val, test)`` indices of ``n`` images."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if not len(train):
        raise DataError(f"{root} has {n} image(s): too few to split into training, validation and test")
    return train, val, test


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as mask:
            mask.load()
            if mask.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA"):
                raise DataError(
                    f"mask '{path}' is a colour image ({mask.mode}); masks must hold one class id per pixel: save it "
                    "as a grey or palette PNG whose values are the ids"
                )
            return np.asarray(mask).astype(np.int64)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read mask '{path}': {exc}. Replace it with an intact PNG") from exc


def _read_image(path: Path, channels: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert("L" if channels == 1 else "RGB")
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image '{path}': {exc}. Replace it with an intact copy or delete it") from exc
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _resize(array: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    tensor = torch.as_tensor(array, dtype=torch.float32)
    batch = tensor[None, None] if tensor.ndim == 2 else tensor[None]
    out = F.interpolate(
        batch, size=size, mode="nearest" if nearest else "bilinear", align_corners=None if nearest else False
    )
    return out[0, 0].round().long().numpy() if nearest else out[0].numpy()


@register_format(
    "masks",
    detect=is_mask_folder,
    description="segmentation folder: images/ and masks/ (same names; grey or palette PNG class ids)",
    example="glassnet train --data scans/ --model unet",
)
def load_mask_folder(
    path: str | os.PathLike[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    channels: int | str = "auto",
    size: int | list[int] | None = None,
) -> DataBundle:
    """Images and their masks as a ``segment`` bundle, split at random (seeded).

    Args:
        path: the folder holding ``images/``, ``masks/`` and optionally ``classes.txt``.
        val_fraction: share of the images for validation; ``test_fraction`` likewise.
        split_seed: seed of the split.
        channels: 1 (grey), 3 (RGB), or ``auto`` (RGB when any image is in colour).
        size: ``H`` or ``[H, W]`` to resize every image and mask to; default: keep the size when all
            images share one, else the most common size.

    Raises:
        DataError: an image has no mask (or a mask no image), a mask's size differs from its image's,
            a mask is in colour or holds an id without a class, or a file cannot be read; the message
            names the file.
        ConfigError: an option is out of range.
    """
    root = Path(path)
    _check_options(val_fraction, test_fraction, channels)
    images, masks = _files(root / "images"), _files(root / "masks")
    _paired(images, masks, root / "images", root / "masks", "mask")
    names = sorted(images)
    channels, target, sizes = _geometry([images[n] for n in names], channels, size)
    class_names = _class_file(root / "classes.txt")
    x = np.empty((len(names), channels, *target), dtype=np.float32)
    y = np.empty((len(names), *target), dtype=np.int64)
    for k, (name, shape) in enumerate(zip(names, sizes)):
        mask = _read_mask(masks[name])
        if mask.shape != shape:
            raise DataError(
                f"mask '{masks[name]}' is {mask.shape[1]}x{mask.shape[0]} pixels but its image is "
                f"{shape[1]}x{shape[0]}; a mask must have its image's size"
            )
        image = _read_image(images[name], channels)
        if shape != target:
            image, mask = _resize(image, target, nearest=False), _resize(mask, target, nearest=True)
        labelled = mask[mask != UNLABELLED]
        if class_names and len(labelled) and labelled.max() >= len(class_names):
            raise DataError(
                f"mask '{masks[name]}' holds class id {int(labelled.max())} but classes.txt names {len(class_names)} "
                f"classes (ids 0-{len(class_names) - 1}); add its name or fix the mask"
            )
        x[k], y[k] = image, np.where(mask == UNLABELLED, IGNORE_INDEX, mask)
    if not class_names:
        labelled = y[y != IGNORE_INDEX]
        if not len(labelled):
            raise DataError(
                f"every mask pixel in {root / 'masks'} is unlabelled ({UNLABELLED}); there is nothing to learn"
            )
        class_names = tuple(str(i) for i in range(int(labelled.max()) + 1))
    if len(class_names) < 2:
        raise DataError(f"{root} has one class ({class_names[0]}); segmentation needs at least two (e.g. background)")
    resized = any(s != target for s in sizes)
    return _mask_bundle(root, root.name, x, y, class_names, "masks", resized, (val_fraction, test_fraction, split_seed))


def _mask_bundle(
    root: Path,
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    class_names: tuple[str, ...],
    fmt: str,
    resized: bool,
    split: tuple[float, float, int],
    task: str = "segment",
) -> DataBundle:
    """A ``segment`` bundle of images ``x`` and masks ``y`` (class ids; ``IGNORE_INDEX``: unlabelled), or an
    ``instances`` bundle whose ``y`` holds each image's mask and instance map (``N x 2 x H x W``)."""
    val_fraction, test_fraction, split_seed = split
    train, val, test = _split(len(x), val_fraction, test_fraction, split_seed, root)
    return bundle_from_splits(
        (x[train], y[train]),
        (x[val], y[val]),
        (x[test], y[test]),
        name=name,
        modality="image",
        task=task,
        class_names=class_names,
        info={
            "source": str(root),
            "format": fmt,
            "images": len(x),
            "resized_to": list(x.shape[-2:]) if resized else None,
            "split_seed": split_seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
        },
    )


# ---------------------------------------------------------------- detection: YOLO txt and COCO JSON


def _box_bundle(
    root: Path,
    files: list[Path],
    boxes: list[np.ndarray],
    class_names: tuple[str, ...],
    fmt: str,
    options: tuple[float, float, int, int | str, int | list[int] | None],
    declared: list[tuple[int, int]] | None = None,
) -> DataBundle:
    """A ``detect`` bundle: images resized to one size, boxes (shares of the image) padded to ``N x M x 5``.

    ``declared`` are the ``(height, width)`` an annotation file gives its images; a file of another
    size would put its boxes in the wrong place, so it is refused.
    """
    val_fraction, test_fraction, split_seed, channels, size = options
    channels, target, sizes = _geometry(files, channels, size)
    for file, shape, stated in zip(files, sizes, declared or sizes):
        if shape != stated:
            raise DataError(
                f"image '{file}' is {shape[1]}x{shape[0]} pixels but its annotations say {stated[1]}x{stated[0]}; "
                "its boxes would be misplaced: fix the width and height in the annotation file"
            )
    most = max(1, max(len(b) for b in boxes))
    x = np.empty((len(files), channels, *target), dtype=np.float32)
    y = np.zeros((len(files), most, 5), dtype=np.float32)
    y[:, :, 0] = -1
    for k, (file, shape, rows) in enumerate(zip(files, sizes, boxes)):
        image = _read_image(file, channels)
        x[k] = _resize(image, target, nearest=False) if shape != target else image
        y[k, : len(rows)] = rows
    train, val, test = _split(len(files), val_fraction, test_fraction, split_seed, root)
    return bundle_from_splits(
        (x[train], y[train]),
        (x[val], y[val]),
        (x[test], y[test]),
        name=root.stem,
        modality="image",
        task="detect",
        class_names=class_names,
        extra={"max_objects": most},
        info={
            "source": str(root),
            "format": fmt,
            "images": len(files),
            "boxes": int(sum(len(b) for b in boxes)),
            "resized_to": list(target) if any(s != target for s in sizes) else None,
            "split_seed": split_seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
        },
    )


def _check_box(x1: float, y1: float, x2: float, y2: float, where: str) -> None:
    """A box as shares of its image must lie inside it (a pixel of slack for rounding) and have an area."""
    slack = 1e-3
    if not (-slack <= x1 < x2 <= 1 + slack and -slack <= y1 < y2 <= 1 + slack):
        raise DataError(
            f"{where}: the box reaches outside its image or has no area (x {x1:.4f} to {x2:.4f}, y {y1:.4f} to "
            f"{y2:.4f} as shares of the image); fix or remove it"
        )


def is_yolo_folder(path: Path) -> bool:
    """Whether ``path`` holds an ``images/`` and a ``labels/`` folder (YOLO's layout)."""
    return path.is_dir() and (path / "images").is_dir() and (path / "labels").is_dir()


@register_format(
    "yolo",
    detect=is_yolo_folder,
    description="detection folder in YOLO's layout: images/ and labels/ (one 'class cx cy w h' line per box)",
    example="glassnet train --data shelves/ --model centernet",
)
def load_yolo_folder(
    path: str | os.PathLike[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    channels: int | str = "auto",
    size: int | list[int] | None = None,
) -> DataBundle:
    """Images with YOLO label files as a ``detect`` bundle, split at random (seeded).

    Each ``labels/<name>.txt`` holds one line per box, ``class cx cy w h`` with the centre and size as
    shares of the image (YOLO's convention); an empty file is an image without objects. Class names
    come from ``classes.txt`` (one per line), else the ids are named by number.

    Raises:
        DataError: an image has no label file (or a label file no image), a line is malformed, a box
            reaches outside its image, or a class id is not named in ``classes.txt``; the message names
            the file and line.
    """
    root = Path(path)
    _check_options(val_fraction, test_fraction, channels)
    images = _files(root / "images")
    labels = {
        f.stem: f for f in sorted((root / "labels").iterdir()) if f.suffix == ".txt" and not f.name.startswith(".")
    }
    _paired(images, labels, root / "images", root / "labels", "label file")
    class_names = _class_file(root / "classes.txt")
    names = sorted(images)
    boxes = []
    for name in names:
        rows = []
        for number, line in enumerate(labels[name].read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{labels[name]} line {number}"
            parts = line.split()
            try:
                values = [float(v) for v in parts]
            except ValueError:
                values = []
            if len(values) != 5 or values[0] != int(values[0]) or values[0] < 0:
                raise DataError(f"{where}: expected 'class cx cy w h' (a class id and four numbers), got {line!r}")
            cls, cx, cy, w, h = values
            if class_names and cls >= len(class_names):
                raise DataError(
                    f"{where}: class id {int(cls)} is not named in classes.txt ({len(class_names)} classes)"
                )
            _check_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, where)
            rows.append([cls, max(cx - w / 2, 0), max(cy - h / 2, 0), min(cx + w / 2, 1), min(cy + h / 2, 1)])
        boxes.append(np.array(rows, dtype=np.float32).reshape(-1, 5))
    if not class_names:
        most = max((int(b[:, 0].max()) for b in boxes if len(b)), default=-1)
        if most < 0:
            raise DataError(f"no label file in {root / 'labels'} holds a box; there is nothing to learn")
        class_names = tuple(str(i) for i in range(most + 1))
    options = (val_fraction, test_fraction, split_seed, channels, size)
    return _box_bundle(root, [images[n] for n in names], boxes, class_names, "yolo", options)


def is_coco_file(path: Path) -> bool:
    """Whether ``path`` is a JSON file (or a folder holding one ``*.json``) with COCO's top-level keys."""
    if path.is_dir():
        found = [f for f in path.glob("*.json") if not f.name.startswith(".")]
        return len(found) == 1 and is_coco_file(found[0])
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with path.open("rb") as handle:  # the keys may follow a long list of images: read up to 256 MB
        head = handle.read(DETECT_BYTES)
    return all(key in head for key in (b'"images"', b'"annotations"', b'"categories"'))


@register_format(
    "coco",
    detect=is_coco_file,
    description="COCO JSON (images, annotations with bbox, categories) beside its images",
    example="glassnet train --data annotations.json --model centernet",
)
def load_coco(
    path: str | os.PathLike[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    channels: int | str = "auto",
    size: int | list[int] | None = None,
    images_dir: str | None = None,
    target: str = "boxes",
) -> DataBundle:
    """A COCO file as a ``detect`` bundle (``target="boxes"``), a ``segment`` bundle (``target="masks"``) or an
    ``instances`` bundle (``target="instances"``: the semantic mask and the instance map of each image).

    Image files are looked for by their ``file_name`` relative to ``images_dir``, else the JSON's
    folder, else its ``images/`` sub-folder. Category ids may be any integers: they become class
    indices in the order of their ids, named by the categories' names.

    Boxes: crowd annotations are skipped. Masks: every annotation's ``segmentation`` (polygons, or
    run-length encoding, uncompressed or compressed) is painted into its image's mask with its
    class (``background`` is class 0, the categories follow), the largest first so that a smaller
    object in front of a larger one keeps its pixels; crowd regions become unlabelled pixels, which
    the loss and the metrics skip. Instances: the same semantic mask, and an instance map that gives
    each annotation's visible pixels their own id (1, 2, ...; 0 elsewhere, -100 on crowd regions).

    Raises:
        DataError: the JSON is malformed, an annotation names an unknown image or category, a box
            reaches outside its image's ``width`` and ``height``, an image file is missing, or (masks)
            an annotation has no segmentation, a polygon too few points, or a run-length encoding
            another size than its image.
        ConfigError: ``target`` is not ``boxes``, ``masks`` or ``instances``.
    """
    if target not in ("boxes", "masks", "instances"):
        raise ConfigError(
            "target must be 'boxes' (detection), 'masks' (semantic segmentation) or 'instances' (instance "
            f"segmentation). Received: target={target!r}"
        )
    import json

    source = Path(path)
    if source.is_dir():
        source = next(f for f in source.glob("*.json") if not f.name.startswith("."))
    _check_options(val_fraction, test_fraction, channels)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        categories = sorted(document["categories"], key=lambda c: int(c["id"]))
        category = {int(c["id"]): k for k, c in enumerate(categories)}
        class_names = tuple(str(c.get("name", c["id"])) for c in categories)
        images = {int(i["id"]): i for i in document["images"]}
        annotations = document["annotations"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{source} is not a readable COCO file ({type(exc).__name__}: {exc}); it needs 'images' (id, file_name, "
            "width, height), 'annotations' (image_id, category_id, bbox) and 'categories' (id, name)"
        ) from exc
    if not images or not categories:
        raise DataError(f"{source} lists no images or no categories")
    if target in ("masks", "instances"):
        files, declared = _coco_files(source, images, images_dir)
        options = (val_fraction, test_fraction, split_seed, channels, size)
        return _coco_masks(
            source, files, declared, images, category, class_names, annotations, options, target == "instances"
        )
    boxes: dict[int, list[list[float]]] = {i: [] for i in images}
    for number, a in enumerate(annotations):
        where = f"{source}: annotation {a.get('id', number)}"
        if a.get("iscrowd"):
            continue
        image = images.get(int(a.get("image_id", -1)))
        if image is None:
            raise DataError(f"{where} names image_id {a.get('image_id')!r}, which 'images' does not list")
        if int(a.get("category_id", -1)) not in category:
            raise DataError(
                f"{where} names category_id {a.get('category_id')!r}; the categories are {sorted(category)}"
            )
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
            width, height = float(image["width"]), float(image["height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: needs bbox [x, y, w, h] and its image's width and height ({exc})") from exc
        x1, y1, x2, y2 = x / width, y / height, (x + w) / width, (y + h) / height
        _check_box(x1, y1, x2, y2, where)
        boxes[int(image["id"])].append(
            [category[int(a["category_id"])], max(x1, 0), max(y1, 0), min(x2, 1), min(y2, 1)]
        )
    files, declared = _coco_files(source, images, images_dir)
    rows = [np.array(boxes[i], dtype=np.float32).reshape(-1, 5) for i in sorted(images)]
    options = (val_fraction, test_fraction, split_seed, channels, size)
    return _box_bundle(source, files, rows, class_names, "coco", options, declared)


def _coco_files(
    source: Path, images: dict[int, dict[str, Any]], images_dir: str | None
) -> tuple[list[Path], list[tuple[int, int]]]:
    """The image files of a COCO file in id order, and the ``(height, width)`` it declares for each."""
    folders = [Path(images_dir)] if images_dir else [source.parent, source.parent / "images"]
    files = []
    ids = sorted(images)
    for i in ids:
        name = str(images[i].get("file_name", ""))
        found = next((folder / name for folder in folders if name and (folder / name).is_file()), None)
        if found is None:
            raise DataError(
                f"{source}: image {i}'s file {name!r} is not in {' or '.join(str(f) for f in folders)}; "
                "copy it there or name the folder with data.images_dir=DIR"
            )
        files.append(found)
    try:
        declared = [(int(images[i]["height"]), int(images[i]["width"])) for i in ids]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: every image needs its width and height ({type(exc).__name__}: {exc})") from exc
    return files, declared


def _coco_masks(
    source: Path,
    files: list[Path],
    declared: list[tuple[int, int]],
    images: dict[int, dict[str, Any]],
    category: dict[int, int],
    class_names: tuple[str, ...],
    annotations: list[dict[str, Any]],
    options: tuple[float, float, int, int | str, int | list[int] | None],
    instances: bool = False,
) -> DataBundle:
    """The ``segment`` bundle of a COCO file: each image's annotations painted into one mask (see ``load_coco``);
    with ``instances``, the ``instances`` bundle: the mask and the instance map of each image."""
    val_fraction, test_fraction, split_seed, channels, size = options
    ids = sorted(images)
    row = {i: k for k, i in enumerate(ids)}
    masks = [np.zeros(shape, dtype=np.int64) for shape in declared]
    objects = [np.zeros(shape, dtype=np.int64) for shape in declared]
    painted: list[tuple[float, int, np.ndarray, int]] = []  # (area, image row, pixels, value)
    for number, a in enumerate(annotations):
        where = f"{source}: annotation {a.get('id', number)}"
        image = images.get(int(a.get("image_id", -1))) if isinstance(a, dict) else None
        if image is None:
            raise DataError(f"{where} names image_id {a.get('image_id')!r}, which 'images' does not list")
        if int(a.get("category_id", -1)) not in category:
            raise DataError(
                f"{where} names category_id {a.get('category_id')!r}; the categories are {sorted(category)}"
            )
        k = row[int(image["id"])]
        pixels = coco_segmentation(a.get("segmentation"), declared[k], where)
        value = IGNORE_INDEX if a.get("iscrowd") else category[int(a["category_id"])] + 1
        painted.append((float(pixels.sum()), k, pixels, value))
    order = sorted(painted, key=lambda item: (item[3] != IGNORE_INDEX, -item[0]))
    for number, (_, k, pixels, value) in enumerate(order):
        masks[k][pixels] = value  # crowd first, then the largest objects, so smaller ones stay on top
        objects[k][pixels] = IGNORE_INDEX if value == IGNORE_INDEX else number + 1
    channels, target, sizes = _geometry(files, channels, size)
    for file, shape, stated in zip(files, sizes, declared):
        if shape != stated:
            raise DataError(
                f"image '{file}' is {shape[1]}x{shape[0]} pixels but its annotations say {stated[1]}x{stated[0]}; "
                "its masks would be misplaced: fix the width and height in the annotation file"
            )
    x = np.empty((len(files), channels, *target), dtype=np.float32)
    y = np.empty((len(files), *((2,) if instances else ()), *target), dtype=np.int64)
    for k, (file, shape) in enumerate(zip(files, sizes)):
        image = _read_image(file, channels)
        if shape != target:  # nearest neighbour keeps the ids (and -100) whole
            image = _resize(image, target, nearest=False)
            masks[k], objects[k] = _resize(masks[k], target, nearest=True), _resize(objects[k], target, nearest=True)
        x[k] = image
        y[k] = np.stack([masks[k], objects[k]]) if instances else masks[k]
    names = ("background", *class_names)
    resized = any(s != target for s in sizes)
    split = (val_fraction, test_fraction, split_seed)
    task = "instances" if instances else "segment"
    return _mask_bundle(source, source.stem, x, y, names, "coco", resized, split, task)


def coco_segmentation(segmentation: Any, shape: tuple[int, int], where: str = "annotation") -> np.ndarray:
    """The ``height x width`` boolean pixels of a COCO ``segmentation``: polygons or run-length encoding.

    Polygons are lists ``[x1, y1, x2, y2, ...]`` in pixels, filled (PIL's rasteriser; a pixel is in
    when its corner grid point is). Run-length encoding is ``{"size": [height, width], "counts": ...}``
    over the pixels in column-major order, starting with a run of background: ``counts`` a list of
    run lengths (uncompressed) or COCO's compressed string (each run a variable-length number in
    6-bit characters, from the third on relative to the run two before; ``pycocotools``' format).

    Raises:
        DataError: no segmentation, a polygon of fewer than 3 points or an odd number of values,
            a run-length encoding of another size than the image, or runs that do not add up to it.
    """
    from PIL import Image, ImageDraw

    height, width = shape
    if isinstance(segmentation, list) and segmentation:
        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise DataError(
                    f"{where}: a polygon needs x, y pairs of at least 3 points; this one has "
                    f"{len(polygon) if isinstance(polygon, list) else type(polygon).__name__} values"
                )
            try:
                points = [(float(polygon[j]), float(polygon[j + 1])) for j in range(0, len(polygon), 2)]
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: a polygon holds a value that is not a number ({exc})") from exc
            draw.polygon(points, fill=1, outline=1)
        return np.asarray(canvas, dtype=bool)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        stated = segmentation.get("size")
        if not isinstance(stated, list) or [int(v) for v in stated] != [height, width]:
            raise DataError(
                f"{where}: its run-length encoding is for a {stated!r} (height, width) image, but its image is "
                f"[{height}, {width}]"
            )
        counts = segmentation["counts"]
        runs = _rle_counts(counts, where) if isinstance(counts, (str, bytes)) else counts
        if (
            not isinstance(runs, list)
            or any(not isinstance(r, int) or r < 0 for r in runs)
            or sum(runs) != height * width
        ):
            total = sum(runs) if isinstance(runs, list) and all(isinstance(r, int) for r in runs) else "?"
            raise DataError(f"{where}: its run lengths add up to {total} pixels, not the image's {height * width}")
        flat = np.zeros(height * width, dtype=bool)
        starts = np.concatenate([[0], np.cumsum(runs)])
        for j in range(1, len(runs), 2):  # odd runs are the object's
            flat[starts[j] : starts[j + 1]] = True
        return flat.reshape(width, height).T  # column-major
    raise DataError(
        f"{where} has no segmentation (polygons or run-length encoding); train on boxes with data.target=boxes "
        "or remove it"
    )


def _rle_counts(text: str | bytes, where: str) -> list[int]:
    """Run lengths of COCO's compressed run-length string (the inverse of ``pycocotools``' ``rleToString``)."""
    data = text.encode("ascii") if isinstance(text, str) else text
    runs: list[int] = []
    p = 0
    while p < len(data):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(data):
                raise DataError(f"{where}: its compressed run-length string ends inside a number")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise DataError(f"{where}: its compressed run-length string holds {chr(data[p])!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift  # negative: sign-extend
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs
