"""Load an image folder (one sub-folder per class) as a ``DataBundle``, in memory or streamed from disk.

Layouts:

- ``ROOT/<class>/<image>``: one sub-folder per class, split into train, validation and test
  (stratified, seeded by ``split_seed``);
- ``ROOT/train/<class>/...`` and ``ROOT/test/<class>/...``: the given train and test splits are
  kept; validation is taken stratified from ``train`` (or read from ``ROOT/val/<class>/...``
  when that folder exists).

Images (PNG, JPEG, BMP, GIF, TIFF, WebP; hidden files and other extensions are ignored) become
``C x H x W`` float32 tensors in [0, 1]. Data whose decoded size fits ``memory_budget_mb`` is
decoded once into tensors (the Trainer batches them without a DataLoader); larger folders become
an ``ImageFolderDataset`` per split that decodes on access, so a DataLoader with worker processes
streams it. Symbolic links are followed, but each folder and each file is read once (see
``glassnet.data.folders``), so link loops and linked copies never repeat an image or put it in two splits.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from glassnet.data.bundle import DataBundle, bundle_from_splits, statistic_axes
from glassnet.data.folders import FolderFiles, unique_files
from glassnet.data.registry import register_format
from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split
from glassnet.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# modes that hold one grey channel; "LA" (grey + alpha) keeps its grey channel
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
# high-bit-depth grey modes and the value that maps to 1.0
_DEEP_GREY_SCALE = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}
# EXIF orientations that turn the stored image by 90 degrees (its displayed size is transposed)
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_IN_HEADER = frozenset({"JPEG", "MPO", "TIFF", "WEBP"})
STATISTICS_SAMPLE = 2000
PARALLEL_MIN_FILES = 256  # below this, starting threads costs more than it saves
T = TypeVar("T")
SPLIT_FOLDERS = ("train", "test")
VAL_FOLDER = "val"


@dataclass(frozen=True)
class _Scan:
    """What the headers of one split's files say: paths, labels, displayed sizes and modes."""

    files: list[str]
    labels: np.ndarray
    sizes: list[tuple[int, int]]  # (height, width) as displayed
    modes: list[str]


def is_image_folder(path: Path) -> bool:
    """Whether ``path`` is a directory with a sub-folder (or a ``train/<class>`` folder) of images.

    Args:
        path: a user path.

    Returns:
        True when some non-hidden sub-folder, or sub-sub-folder, directly holds an image file.
    """
    if not path.is_dir():
        return False
    for folder in _subfolders(path):
        if _has_image(folder) or any(_has_image(inner) for inner in _subfolders(folder)):
            return True
    return False


@register_format(
    "images",
    detect=is_image_folder,
    description="image folder: one sub-folder per class",
    example="glassnet train --data photos/ --model cnn data.size=64",
)
def load_image_folder(
    path: str | os.PathLike[str],
    size: int | Sequence[int] | None = None,
    channels: int | str = "auto",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    in_memory: bool | str = "auto",
    memory_budget_mb: float = 2048,
) -> DataBundle:
    """Load a folder of class sub-folders of images as a classification ``DataBundle``.

    Classes are the sub-folder names, sorted. With ``train/`` and ``test/`` sub-folders that each
    hold class folders, those are the train and test splits (``test_fraction`` is then unused) and
    validation is ``val_fraction`` of ``train``, stratified, unless a ``val/`` folder exists too.

    Args:
        path: the image folder.
        size: ``H`` (square) or ``[H, W]`` in pixels; default: the most common size of the training images.
            Other sizes are resized (PIL bilinear).
        channels: 1 (grey), 3 (RGB) or ``auto``: 1 when every image is greyscale, else 3.
            Alpha channels and palettes are dropped by converting to RGB (or grey).
        val_fraction: share of the examples (of ``train/`` in the train/test layout) for validation.
        test_fraction: share of the examples for the test split (class-folder layout).
        split_seed: seed of the stratified split.
        in_memory: True decodes every image into tensors; False streams them from disk through an
            ``ImageFolderDataset``; ``auto`` decodes when the float32 tensors fit ``memory_budget_mb``.
        memory_budget_mb: the decoded size (MiB) up to which ``auto`` keeps images in memory.

    Returns:
        A ``DataBundle`` whose spec has modality ``image``, shape ``C x H x W`` and per-channel
        statistics of the training split (estimated on up to 2,000 images when streamed).

    Raises:
        DataError: the folder is missing or empty, has a single class or a class without images,
            or an image cannot be read.
        ConfigError: an option has a bad value.
    """
    root = Path(path)
    height_width = _check_size(size)
    _check_options(channels, in_memory, memory_budget_mb)
    splits, layout = _scan_layout(root)
    class_names = _class_names(root, splits)
    found, listing = _list_images(root, splits, class_names)
    scans = {name: _scan_split(folder, class_names, found[name]) for name, folder in splits.items()}
    train, val, test = _split(scans, layout, val_fraction, test_fraction, split_seed)
    everything = [train, val, test]
    height_width = height_width or _most_common_size(train)
    n_channels = _choose_channels(channels, [m for s in everything for m in s.modes])
    decoded_mb = sum(len(s.files) for s in everything) * n_channels * height_width[0] * height_width[1] * 4 / 2**20
    keep = decoded_mb <= memory_budget_mb if in_memory == "auto" else bool(in_memory)
    info = {
        "source": str(root),
        "description": f"image folder ({layout} layout), {len(class_names)} classes",
        "layout": layout,
        "image_size": list(height_width),
        "channels": n_channels,
        "in_memory": keep,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction if layout == "class folders" else None,
        "split_seed": split_seed,
        **listing.info(),
    }
    listing.warn(root)
    datasets = [ImageFolderDataset(s.files, s.labels, n_channels, height_width) for s in everything]
    name = root.resolve().name
    if keep:
        return _in_memory_bundle(datasets, name, class_names, info)
    return _streaming_bundle(datasets, name, class_names, info, split_seed)


class ImageFolderDataset(Dataset):
    """Images decoded from disk on access: ``(C x H x W float32 in [0, 1], int64 class index)``.

    Holds only paths and labels, so it pickles cheaply into DataLoader worker processes.

    Attributes:
        files: image paths.
        targets: class index of each file (int64 tensor).
        channels: 1 or 3.
        size: ``(height, width)`` every image is resized to.
    """

    def __init__(self, files: Sequence[str], labels: Sequence[int] | np.ndarray, channels: int, size: Sequence[int]):
        """Describe a split.

        Args:
            files: image paths.
            labels: class index of each file.
            channels: 1 (grey) or 3 (RGB).
            size: ``(height, width)`` in pixels.
        """
        if len(files) != len(labels):
            raise DataError(f"{len(files)} image files but {len(labels)} labels; they must match")
        self.files = [str(f) for f in files]
        self.targets = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.channels = int(channels)
        self.size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(decode_image(self.files[index], self.channels, self.size)), self.targets[index]

    def decode_all(self) -> torch.Tensor:
        """Every image of the split stacked into one ``N x C x H x W`` tensor."""
        out = torch.empty((len(self), self.channels, *self.size), dtype=torch.float32)
        pixels = _parallel_map(lambda file: decode_image(file, self.channels, self.size), self.files)
        for i, array in enumerate(pixels):
            out[i] = torch.from_numpy(array)
        return out


def decode_image(path: str | os.PathLike[str], channels: int, size: Sequence[int]) -> np.ndarray:
    """Read one image as a ``C x H x W`` float32 array in [0, 1].

    EXIF orientation is applied, alpha and palettes are dropped, grey becomes RGB (or RGB grey)
    as ``channels`` asks, and the image is resized to ``size`` with PIL's bilinear filter.

    Args:
        path: the image file.
        channels: 1 or 3.
        size: ``(height, width)``.

    Returns:
        The pixels, channels first.

    Raises:
        DataError: the file is not an image PIL can read, or is truncated or damaged.
    """
    from PIL import Image, ImageOps

    height, width = int(size[0]), int(size[1])
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, naming the file below
            if image.getexif().get(0x0112, 1) != 1:
                image = ImageOps.exif_transpose(image)  # only when needed: it copies the image
            if image.mode in _DEEP_GREY_SCALE:
                array = _deep_grey(image, (width, height))
            else:
                image = _convert(image, channels)
                if image.size != (width, height):
                    image = image.resize((width, height), Image.BILINEAR)
                array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc, "The file is not a readable image or is truncated") from exc
    if array.ndim == 2:
        array = array[None] if channels == 1 else np.repeat(array[None], 3, axis=0)
    else:
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array, dtype=np.float32)


def _convert(image: Any, channels: int) -> Any:
    """8-bit ``L`` or ``RGB``; transparent pixels keep their colour (the alpha channel is dropped)."""
    if channels == 1:
        return image if image.mode == "L" else image.convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


def _deep_grey(image: Any, size: tuple[int, int]) -> np.ndarray:
    """16-bit and float grey images, scaled to [0, 1] and resized in float32 so no depth is lost."""
    from PIL import Image

    array = np.asarray(image, dtype=np.float32) / _DEEP_GREY_SCALE[image.mode]
    if image.size != size:
        array = np.asarray(Image.fromarray(array).resize(size, Image.BILINEAR))
    return np.clip(array, 0.0, 1.0)


def _check_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    values = [size] if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else None
    if (
        values is None
        or len(values) not in (1, 2)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    ):
        raise ConfigError(
            f"size must be a positive integer (square images) or [height, width]. Received: size={size!r}"
        )
    return (values[0], values[-1])


def _check_options(channels: int | str, in_memory: bool | str, memory_budget_mb: float) -> None:
    if channels not in (1, 3, "auto") or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1, 3 or 'auto'. Received: channels={channels!r}")
    if in_memory not in (True, False, "auto"):
        raise ConfigError(f"in_memory must be true, false or 'auto'. Received: in_memory={in_memory!r}")
    if isinstance(memory_budget_mb, bool) or not isinstance(memory_budget_mb, (int, float)) or memory_budget_mb < 0:
        raise ConfigError(f"memory_budget_mb must be a number >= 0. Received: memory_budget_mb={memory_budget_mb!r}")


def _scan_layout(root: Path) -> tuple[dict[str, Path], str]:
    """The folder of each given split: ``{"all": root}`` or ``{"train": ..., "test": ...[, "val": ...]}``."""
    if not root.exists():
        raise DataError(f"image folder '{root}' not found; give the path of a folder with one sub-folder per class")
    if not root.is_dir():
        raise DataError(
            f"'{root}' is a file, not an image folder; give a folder with one sub-folder of images per class"
        )
    if all((root / name).is_dir() for name in SPLIT_FOLDERS) and all(
        any(True for _ in _subfolders(root / name)) for name in SPLIT_FOLDERS
    ):
        splits = {name: root / name for name in SPLIT_FOLDERS}
        if (root / VAL_FOLDER).is_dir():
            splits[VAL_FOLDER] = root / VAL_FOLDER
        return splits, "train/test folders"
    return {"all": root}, "class folders"


def _class_names(root: Path, splits: dict[str, Path]) -> tuple[str, ...]:
    """Sorted class-folder names of the training folder; the other splits may not add classes."""
    main = splits.get("train", root)
    names = tuple(sorted(f.name for f in _subfolders(main)))
    if not names:
        raise DataError(
            f"image folder '{main}' has no class sub-folders; put each class's images in its own "
            f"sub-folder, e.g. '{main / 'cat' / '001.png'}' and '{main / 'dog' / '002.png'}'"
        )
    if len(names) == 1:
        raise DataError(
            f"image folder '{main}' has a single class ({names[0]!r}); classification needs at least two "
            "class sub-folders"
        )
    for folder in splits.values():
        extra = sorted({f.name for f in _subfolders(folder)} - set(names))
        if extra:
            raise DataError(
                f"'{folder}' has class folders that '{main}' lacks: {', '.join(extra)}; every class must have "
                f"training images (classes in '{main}': {', '.join(names)})"
            )
    return names


def _list_images(
    root: Path, splits: dict[str, Path], class_names: tuple[str, ...]
) -> tuple[dict[str, dict[str, tuple[list[str], int]]], FolderFiles]:
    """Per split and class, the image files and how many were left out as duplicates; and the listing.

    One listing covers every split, so a file reached twice (links, link loops) is used once, in one split.
    """
    folders = [(split, name) for split, folder in splits.items() for name in class_names if (folder / name).is_dir()]
    listing = unique_files(
        [splits[split] / name for split, name in folders], _is_image_name, roots=[root, *splits.values()]
    )
    found: dict[str, dict[str, tuple[list[str], int]]] = {split: {} for split in splits}
    for (split, name), files, skipped in zip(folders, listing.files, listing.skipped):
        found[split][name] = (files, skipped)
    return found, listing


def _scan_split(folder: Path, class_names: tuple[str, ...], listed: dict[str, tuple[list[str], int]]) -> _Scan:
    """Read the header of every image listed for ``folder``'s class folders (no pixels are decoded)."""
    files: list[str] = []
    labels: list[int] = []
    found = {name: files_of for name, (files_of, _) in listed.items()}
    if not any(found.values()):
        raise DataError(
            f"no images in '{folder}': its class folders ({', '.join(found) or 'none'}) hold no "
            f"{', '.join(IMAGE_SUFFIXES)} files; put the images of each class in its folder"
        )
    for label, name in enumerate(class_names):
        if name in found and not found[name]:
            skipped = listed[name][1]
            what = (
                f"holds no images of its own: its {skipped} image(s) are the same files as images found "
                "elsewhere in the dataset (links or hard links); give it its own images or remove the links"
                if skipped
                else f"holds no images ({', '.join(IMAGE_SUFFIXES)}); add images of that class or remove the folder"
            )
            raise DataError(f"class folder '{folder / name}' {what}")
        files.extend(found.get(name, []))
        labels.extend([label] * len(found.get(name, [])))
    sizes, modes = zip(*(_header(f) for f in files))  # serial: header reads are too small for threads
    return _Scan(files, np.asarray(labels, dtype=np.int64), list(sizes), list(modes))


def _header(path: str) -> tuple[tuple[int, int], str]:
    """Displayed ``(height, width)`` and mode of an image, read from its header only."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            # only formats whose EXIF sits in the header: a PNG's getexif() would decode the whole file
            if image.format in _EXIF_IN_HEADER and image.getexif().get(0x0112) in _TRANSPOSED_ORIENTATIONS:
                width, height = height, width
            return (height, width), image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc, "The file is not a readable image") from exc


def _unreadable(path: str | os.PathLike[str], exc: Exception, why: str) -> DataError:
    """The error for an image PIL refuses; a decompression bomb is named with its size and the limit."""
    from PIL import Image

    bomb = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", str(exc))
    if isinstance(exc, Image.DecompressionBombError) and bomb:
        pixels, limit = (int(g) for g in bomb.groups())
        return DataError(
            f"image '{path}' has {pixels:,} pixels, over the limit of {limit:,} that guards against "
            "decompression bombs (a small file that decodes to gigabytes); shrink the image or remove it"
        )
    return DataError(f"cannot read image '{path}': {exc}. {why}; replace it with an intact copy or delete it")


def _split(
    scans: dict[str, _Scan], layout: str, val_fraction: float, test_fraction: float, seed: int
) -> tuple[_Scan, _Scan, _Scan]:
    """Train, validation and test scans: a stratified split of one folder, or the given folders."""
    if layout == "class folders":
        whole = scans["all"]
        parts = stratified_split(whole.labels, val_fraction, test_fraction, seed, classification=True)
        return tuple(_take(whole, index) for index in parts)  # type: ignore[return-value]
    train, test = scans["train"], scans["test"]
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction!r}")
    if "val" in scans:
        return train, scans["val"], test
    if val_fraction == 0:
        return train, _take(train, np.array([], dtype=int)), test
    # a stratified split with the validation share as its "test" part, and no validation part of its own
    rest, _, val = stratified_split(train.labels, 0.0, val_fraction, seed, classification=True)
    return _take(train, rest), _take(train, val), test


def _take(scan: _Scan, index: np.ndarray) -> _Scan:
    return _Scan(
        [scan.files[i] for i in index],
        scan.labels[index],
        [scan.sizes[i] for i in index],
        [scan.modes[i] for i in index],
    )


def _most_common_size(train: _Scan) -> tuple[int, int]:
    # ties go to the size seen first in sorted file order, so the choice is reproducible
    return Counter(train.sizes).most_common(1)[0][0]


def _choose_channels(channels: int | str, modes: list[str]) -> int:
    if channels != "auto":
        return int(channels)
    return 1 if all(mode in GREY_MODES for mode in modes) else 3


def _in_memory_bundle(
    datasets: list[ImageFolderDataset], name: str, class_names: tuple[str, ...], info: dict[str, Any]
) -> DataBundle:
    """Decode every image once and build the bundle from tensors (statistics fitted on train)."""
    train, val, test = ((d.decode_all(), d.targets) for d in datasets)
    return bundle_from_splits(
        train, val, test, name=name, modality="image", task="classify", class_names=class_names, info=info
    )


def _streaming_bundle(
    datasets: list[ImageFolderDataset], name: str, class_names: tuple[str, ...], info: dict[str, Any], seed: int
) -> DataBundle:
    """Lazy splits; the spec's per-channel statistics are estimated on a sample of training images."""
    train, val, test = datasets
    mean, std = _sample_statistics(train, seed)
    spec = DataSpec(
        modality="image",
        input_shape=(train.channels, *train.size),
        task="classify",
        num_outputs=len(class_names),
        class_names=class_names,
        input_mean=mean,
        input_std=std,
        name=name,
    )
    info = {**info, "statistics_sample": min(len(train), STATISTICS_SAMPLE)}
    return DataBundle(train=train, val=val, test=test, spec=spec, info=info)


def _sample_statistics(train: ImageFolderDataset, seed: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of up to ``STATISTICS_SAMPLE`` training images."""
    count = min(len(train), STATISTICS_SAMPLE)
    chosen = np.sort(np.random.default_rng(seed).choice(len(train), size=count, replace=False))
    sample = ImageFolderDataset(
        [train.files[i] for i in chosen], train.targets[chosen].numpy(), train.channels, train.size
    )
    x = sample.decode_all()
    axes = statistic_axes("image", x.ndim)
    mean = x.mean(dim=axes)
    std = x.std(dim=axes) if len(x) > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant channel must not divide by zero
    return tuple(mean.tolist()), tuple(std.tolist())


def _parallel_map(function: Callable[[str], T], files: list[str]) -> Iterator[T]:
    """``map`` in file order, on threads for many files: PIL releases the GIL while it decodes."""
    workers = min(8, os.cpu_count() or 1)
    if workers < 2 or len(files) < PARALLEL_MIN_FILES:
        yield from map(function, files)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="glassnet-images")
    try:
        yield from pool.map(function, files)
    finally:
        pool.shutdown(cancel_futures=True)  # a bad file stops the work queued behind it


def _subfolders(folder: Path) -> list[Path]:
    """Non-hidden sub-folders, sorted by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def _has_image(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(_is_image_name(e.name) and e.is_file() for e in entries)
    except OSError:
        return False
