"""Read examples for prediction from files: NumPy arrays, CSV rows and images.

Every reader checks the examples against the model's ``DataSpec`` and names the file (and row)
of anything that does not fit.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import torch

from glassnet.data.spec import DataSpec
from glassnet.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def read_inputs(paths: list[str | os.PathLike[str]], spec: DataSpec) -> tuple[torch.Tensor, list[str]]:
    """Read every file into one batch shaped ``(N, *spec.input_shape)``.

    ``.npy`` files hold one example or a batch (never pickles); ``.csv`` files hold one
    example per row (tabular; a header row naming the features is allowed); images are
    converted to the model's channels and size and scaled to [0, 1].

    Returns:
        The batch and one label per example (``file`` or ``file:row``).

    Raises:
        DataError: a file is missing, unreadable, of an unknown type, or does not fit ``spec``.
    """
    if not paths:
        raise DataError("no input files given")
    batches, labels = [], []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise DataError(f"input file '{path}' not found")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            x = _read_npy(path, spec)
            names = [str(path)] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]
        elif suffix == ".csv":
            x, names = _read_csv(path, spec)
        elif suffix in IMAGE_SUFFIXES:
            x, names = _read_image(path, spec)[None], [str(path)]
        else:
            raise DataError(
                f"cannot read '{path}': unknown file type {suffix or '(none)'}; "
                f"use .npy, .csv or an image ({', '.join(IMAGE_SUFFIXES)})"
            )
        if not np.isfinite(x).all():
            raise DataError(f"'{path}' contains NaN or infinite values")
        batches.append(x.astype(np.float32))
        labels.extend(names)
    return torch.from_numpy(np.concatenate(batches)), labels


def _read_npy(path: Path, spec: DataSpec) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"'{path}' is not a plain NumPy array (pickled objects are refused): {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc}") from exc
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"'{path}' holds {x.dtype} values; expected numbers")
    if x.shape == spec.input_shape:
        return x[None]
    if x.shape[1:] == spec.input_shape:
        if len(x) == 0:
            raise DataError(f"'{path}' holds an empty batch (shape {x.shape}); give at least one example")
        return x
    raise DataError(
        f"'{path}' has shape {x.shape}; the model takes {spec.input_shape} per example "
        f"(or a batch of shape (N, {', '.join(map(str, spec.input_shape))}))"
    )


def _read_csv(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    if spec.modality != "tabular":
        raise DataError(f"'{path}': CSV input needs a tabular model; this model takes {spec.modality} data")
    width = math.prod(spec.input_shape)
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV '{path}': {exc}") from exc
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if rows and spec.feature_names and [c.strip() for c in rows[0]] == list(spec.feature_names):
        rows = rows[1:]
    if not rows:
        raise DataError(f"CSV '{path}' has no data rows")
    values, names = [], []
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise DataError(f"CSV '{path}' row {number} has {len(row)} columns; the model takes {width}")
        try:
            values.append([float(cell) for cell in row])
        except ValueError as exc:
            raise DataError(f"CSV '{path}' row {number}: {exc}") from exc
        names.append(f"{path}:{number}")
    return np.asarray(values, dtype=np.float32).reshape(-1, *spec.input_shape), names


def _read_image(path: Path, spec: DataSpec) -> np.ndarray:
    if spec.modality != "image":
        raise DataError(f"'{path}': image input needs an image model; this model takes {spec.modality} data")
    from PIL import Image, UnidentifiedImageError

    channels, height, width = spec.input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image '{path}': {exc}") from exc
    return array[None] if channels == 1 else array.transpose(2, 0, 1)
