"""The ``fashion-mnist`` built-in dataset: found on this machine or downloaded, then parsed from IDX files.

The four canonical files are looked for in ``$GLASSNET_DATA/fashion-mnist``, then in the user cache
(``cache_dir()/fashion-mnist``), then in ``/usr/share/datasets/fashion-mnist`` (Debian's
dataset-fashion-mnist). Files missing from all of them are downloaded from the canonical location
into the cache and checked against the SHA-256 of the upstream release.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.download import download as download_file
from glassnet.data.locate import cache_dir, data_roots
from glassnet.data.registry import register_dataset
from glassnet.data.splits import stratified_split
from glassnet.errors import ConfigError, DataError

NAME = "fashion-mnist"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SOURCE = "Zalando Research, MIT licence (github.com/zalandoresearch/fashion-mnist)"
DESCRIPTION = "Zalando article images: ten kinds of clothing, shoes and bags, 28x28 grey"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# SHA-256 of the files as served at BASE_URL (the upstream release: 26,421,880 / 29,515 / 4,422,102
# / 5,148 bytes). Debian's package and ../shared/data hold the same images re-compressed without the
# file name in the gzip header, so their checksums differ; files found locally are therefore checked
# by parsing them, and only downloads are checked against these sums.
SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: unsigned bytes with 3 dimensions, and with 1
SIDE = 28


@register_dataset(
    NAME,
    task="classify",
    modality="image",
    size="70,000 images (60,000 train, 10,000 test), 28x28 grey, 10 classes",
    source=f"{SOURCE}; from GLASSNET_DATA, the user cache or Debian's dataset-fashion-mnist, else downloaded",
    description="Zalando article images: T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, "
    "sneakers, bags and ankle boots",
)
def fashion_mnist(
    val_fraction: float = 0.1, split_seed: int = 0, train_size: int | None = None, download: bool = True
) -> DataBundle:
    """Fashion-MNIST as 1x28x28 float32 images in [0, 1] (bright pixels are the article).

    The test split is the official 10,000-image test set; validation is a stratified, seeded share
    of the training images.

    Args:
        val_fraction: share of the training images held out for validation, in [0, 1).
        split_seed: seed of the validation split and of the ``train_size`` subset.
        train_size: use only this many of the 60,000 training images (a stratified subset, for quick
            runs); validation is then taken from them. None uses all.
        download: fetch files that are not on this machine (False: only look for them).

    Returns:
        A ``DataBundle`` with ``info`` recording the source, the folder read and the split options.

    Raises:
        ConfigError: ``val_fraction`` or ``train_size`` is out of range.
        DataError: the files are not on this machine and cannot be downloaded (the message lists
            every way to provide them), or a file is corrupt or truncated (the message names it).
    """
    _check_options(val_fraction, train_size)
    folder = locate_files(download)
    (x_train, y_train), (x_test, y_test) = load_idx_folder(folder)
    if train_size is not None and train_size > len(y_train):
        raise ConfigError(
            f"fashion-mnist train_size={train_size} exceeds the {len(y_train)} training images in {folder}. "
            "Use a smaller number, or None for all."
        )
    if train_size is not None and train_size < len(y_train):
        keep = _stratified_subset(y_train, train_size, split_seed)
        x_train, y_train = x_train[keep], y_train[keep]
    fit, val = _validation_split(y_train, val_fraction, split_seed)
    return bundle_from_splits(
        (_scaled(x_train[fit]), y_train[fit]),
        (_scaled(x_train[val]), y_train[val]),
        (_scaled(x_test), y_test),
        name=NAME,
        modality="image",
        task="classify",
        class_names=CLASS_NAMES,
        info={
            "source": SOURCE,
            "files": str(folder),
            "description": DESCRIPTION,
            "split_seed": split_seed,
            "val_fraction": val_fraction,
            "train_size": train_size,
        },
    )


def _check_options(val_fraction: float, train_size: int | None) -> None:
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"fashion-mnist val_fraction must be in [0, 1). Received: {val_fraction!r}")
    if train_size is not None and (isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1):
        raise ConfigError(
            f"fashion-mnist train_size must be a positive whole number of training images (at most 60000) "
            f"or None for all. Received: {train_size!r}"
        )


def candidate_folders() -> list[Path]:
    """Folders searched for the four files, in order: GLASSNET_DATA, the user cache, Debian's folder."""
    return [root / NAME for root in data_roots()] + [Path(SYSTEM_DIR)]


def locate_files(download: bool = True) -> Path:
    """Return a folder holding all four files, downloading the missing ones into the cache if allowed.

    Args:
        download: fetch missing files from ``BASE_URL`` into ``cache_dir()/fashion-mnist``.

    Returns:
        The folder (the first complete one of ``candidate_folders()``, else the cache folder).

    Raises:
        DataError: no folder is complete and the files cannot be downloaded; the message lists every
            way to provide them.
    """
    # A folder counts only when complete: an interrupted download leaves the cache folder half filled.
    for folder in candidate_folders():
        if all((folder / name).is_file() for name in FILES.values()):
            return folder
    target = cache_dir() / NAME
    if not download:
        raise DataError(_not_found_message(target, "download=False, so nothing was downloaded"))
    try:
        for name in FILES.values():
            download_file(BASE_URL + name, target / name, SHA256[name])
    except DataError as exc:
        raise DataError(_not_found_message(target, str(exc))) from exc
    return target


def _not_found_message(target: Path, reason: str) -> str:
    files = ", ".join(FILES.values())
    partial = [
        f"{folder} lacks {', '.join(n for n in FILES.values() if not (folder / n).is_file())}"
        for folder in candidate_folders()
        if folder.is_dir()
    ]
    seen = f" Found incomplete: {'; '.join(partial)}." if partial else ""
    data = os.environ.get("GLASSNET_DATA")
    data_now = f" (now {data})" if data else " (now unset)"
    return (
        f"Fashion-MNIST is not on this machine and was not downloaded: {reason}.{seen} Provide the four files "
        f"({files}) in any one of these ways: "
        f"(1) set GLASSNET_DATA{data_now} to a folder that holds {NAME}/ with the four files; "
        f"(2) copy the four files into {target}; "
        f"(3) on Debian or Ubuntu run 'sudo apt-get install dataset-fashion-mnist' (installs them in {SYSTEM_DIR}); "
        f"(4) go online and load it again: they are downloaded from {BASE_URL} into {target}."
    )


def load_idx_folder(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Parse the four IDX files of a folder.

    Args:
        folder: a folder holding the four canonical ``*-ubyte.gz`` files.

    Returns:
        ``((train_images, train_labels), (test_images, test_labels))``; images are the raw uint8
        ``N x 28 x 28`` pixels (0 is background), labels int64 class indices.

    Raises:
        DataError: a file is not gzip, truncated or corrupt, or images and labels disagree in number.
    """
    splits = []
    for split in ("train", "test"):
        images_path, labels_path = folder / FILES[f"{split}_images"], folder / FILES[f"{split}_labels"]
        images = read_idx(images_path, IMAGE_MAGIC)
        labels = read_idx(labels_path, LABEL_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
                "they must match. Replace both files with the originals."
            )
        splits.append((_check_images(images, images_path), _to_labels(labels, labels_path)))
    return splits[0], splits[1]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes.

    Args:
        path: the ``.gz`` file.
        magic: the expected magic number (2051 for images, 2049 for labels).

    Returns:
        A uint8 array with the dimensions the header announces.

    Raises:
        DataError: the file is not gzip, is truncated, has another magic number, or its size does
            not match its header (the message names the file and how to replace it).
    """
    fix = f"Delete it and load again to download it, or copy an intact {path.name} there."
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file or is truncated ({exc}). {fix}") from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is {len(raw)} bytes, too short for an IDX header of {header} bytes. {fix}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path} has IDX magic number {found}, expected {magic}. {fix}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        shape = " x ".join(map(str, dims))
        raise DataError(
            f"{path} holds {len(raw)} bytes but its header announces {shape} values ({expected} bytes). {fix}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _check_images(images: np.ndarray, path: Path) -> np.ndarray:
    if images.shape[1:] != (SIDE, SIDE):
        raise DataError(
            f"{path} holds {images.shape[1]}x{images.shape[2]} images; Fashion-MNIST images are {SIDE}x{SIDE}"
        )
    return images


def _scaled(images: np.ndarray) -> np.ndarray:
    """uint8 ``N x 28 x 28`` pixels as float32 ``N x 1 x 28 x 28`` in [0, 1].

    Done per split, after subsetting, so that only the images kept are ever held as floats.
    """
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


def _to_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.size and labels.max() >= len(CLASS_NAMES):
        row = int(np.argmax(labels >= len(CLASS_NAMES)))
        raise DataError(
            f"{path}: label {int(labels[row])} at position {row} is not a class index 0-{len(CLASS_NAMES) - 1}"
        )
    return labels.astype(np.int64)


def _stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` examples with every class in its original proportion."""
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(len(labels)), train_size=size, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise ConfigError(
            f"fashion-mnist train_size={size} is too small to keep every class of {len(labels)} training images "
            f"({exc}). Use at least {2 * len(CLASS_NAMES)}."
        ) from exc
    return np.sort(keep)


def _validation_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training part and of the stratified validation part."""
    if val_fraction == 0:
        return np.arange(len(labels)), np.array([], dtype=np.int64)
    fit, _, val = stratified_split(labels, val_fraction=0.0, test_fraction=val_fraction, seed=seed)
    return fit, val
