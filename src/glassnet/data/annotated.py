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

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.registry import register_format
from glassnet.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
UNLABELLED = 255  # mask value of pixels without a class (VOC)
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
    from PIL import Image

    root = Path(path)
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "val_fraction and test_fraction must be in [0, 1) and sum below 1. "
            f"Received: {val_fraction}, {test_fraction}"
        )
    if channels not in ("auto", 1, 3):
        raise ConfigError(f"channels must be 1, 3 or auto. Received: channels={channels!r}")
    images, masks = _files(root / "images"), _files(root / "masks")
    if not images:
        raise DataError(f"{root / 'images'} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise DataError(
            f"{len(missing)} image(s) in {root / 'images'} have no mask of the same name in {root / 'masks'}, "
            f"e.g. {images[missing[0]].name}; add the masks or remove the images"
        )
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DataError(
            f"{len(orphans)} mask(s) in {root / 'masks'} have no image of the same name, e.g. {masks[orphans[0]].name}"
        )
    names = sorted(images)
    modes, sizes = [], []
    for name in names:
        try:
            with Image.open(images[name]) as image:
                modes.append(image.mode)
                sizes.append((image.height, image.width))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image '{images[name]}': {exc}. Replace it or delete it") from exc
    if channels == "auto":
        channels = 3 if any(m not in ("1", "L", "I", "I;16", "F", "LA", "P") for m in modes) else 1
    if size is None:
        target = Counter(sizes).most_common(1)[0][0]
    else:
        values = [size, size] if isinstance(size, int) else list(size)
        if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise ConfigError(f"size must be a positive number of pixels or [height, width]. Received: size={size!r}")
        target = (values[0], values[1])
    classes_file = root / "classes.txt"
    class_names = (
        tuple(line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines() if line.strip())
        if classes_file.is_file()
        else ()
    )
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
    order = np.random.default_rng(split_seed).permutation(len(names))
    n_test, n_val = int(round(test_fraction * len(names))), int(round(val_fraction * len(names)))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if not len(train):
        raise DataError(f"{root} has {len(names)} image(s): too few to split into training, validation and test")
    return bundle_from_splits(
        (x[train], y[train]),
        (x[val], y[val]),
        (x[test], y[test]),
        name=root.name,
        modality="image",
        task="segment",
        class_names=class_names,
        info={
            "source": str(root),
            "format": "masks",
            "images": len(names),
            "resized_to": list(target) if any(s != target for s in sizes) else None,
            "split_seed": split_seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
        },
    )
