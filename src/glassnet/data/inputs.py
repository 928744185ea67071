"""Read examples for prediction from files: arrays, tables, images, texts, series and sounds.

Every reader checks the examples against the model's ``DataSpec`` and names the file (and row)
of anything that does not fit.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.encoding import not_utf8
from glassnet.data.modality import get_modality
from glassnet.data.spec import DataSpec
from glassnet.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_inputs(paths: list[str | os.PathLike[str]], spec: DataSpec) -> tuple[torch.Tensor, list[str]]:
    """Read every file into one batch shaped ``(N, *spec.input_shape)``.

    What a file may hold depends on the model's data:

    - any model: ``.npy`` with one example or a batch (never pickles);
    - tabular: ``.csv`` rows; raw columns by name when the model was trained on a CSV file (its
      encoding recipe is in the spec), else numbers in feature order (a header row is allowed);
    - image: PNG/JPEG/... files, converted to the model's channels and size, scaled to [0, 1];
    - text: ``.txt`` with one text per line, or a ``.csv`` with a ``text`` column (the column the
      model's texts came from, when trained with ``data.text=COLUMN``);
    - sequence: a ``.csv`` whose last ``T`` rows of the model's channel columns form one window;
    - audio: ``.wav`` files, turned into the model's log-mel spectrogram.

    Returns:
        The batch and one label per example (``file``, ``file:line`` or ``file[i]``).

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
        reader = _reader(path, spec)
        x, names = reader(path, spec)
        continuous = get_modality(spec.modality).continuous
        with np.errstate(over="ignore", invalid="ignore"):  # a value beyond float32 becomes inf: refused below
            cast = x.astype(np.float32) if continuous else x
        _check_values(path, cast, names, spec, continuous)
        batches.append(cast if continuous else x.astype(np.int64))
        labels.extend(names)
    return torch.from_numpy(np.concatenate(batches)), labels


def _check_values(path: Path, x: np.ndarray, names: list[str], spec: DataSpec, continuous: bool) -> None:
    """Finite numbers within float32's range; for models of token ids, whole ids of the vocabulary."""
    flat = x.reshape(len(x), -1) if len(x) else x.reshape(0, 0)
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        where = names[int(np.flatnonzero(~finite)[0])]
        raise DataError(
            f"'{path}' contains NaN or infinite values (first at {where}, {int((~finite).sum())} example(s)); "
            "numbers must be finite and within float32's range (+-3.4e38)"
        )
    if continuous:
        return
    vocab = len(spec.extra.get("vocab") or ()) or None
    bad = (flat != np.round(flat)).any(axis=1) | (flat < 0).any(axis=1)
    if vocab is not None:
        bad |= (flat >= vocab).any(axis=1)
    if bad.any():
        where = names[int(np.flatnonzero(bad)[0])]
        limit = f" below the vocabulary size {vocab}" if vocab is not None else ""
        raise DataError(f"'{path}' holds token ids that are not whole numbers >= 0{limit} (first at {where})")


Reader = Callable[[Path, DataSpec], tuple[np.ndarray, list[str]]]
_READERS: dict[str, Callable[[DataSpec], dict[str, Reader]]] = {}


def register_readers(modality: str) -> Callable[[Callable[[DataSpec], dict[str, Reader]]], Any]:
    """Register ``readers(spec) -> {suffix: reader}``: the input files a model of ``modality`` predicts on.

    ``.npy`` batches are read for every modality; a new modality registers its own file types here.
    """

    def decorate(readers: Callable[[DataSpec], dict[str, Reader]]) -> Callable[[DataSpec], dict[str, Reader]]:
        _READERS[modality] = readers
        return readers

    return decorate


def _reader(path: Path, spec: DataSpec) -> Reader:
    """The reader for a file, chosen by its suffix and the model's modality."""
    name = path.name.lower()
    suffix = ".csv" if name.endswith(".csv.gz") else path.suffix.lower()
    readers: dict[str, Reader] = {".npy": _read_npy_batch}
    if spec.modality in _READERS:
        readers.update(_READERS[spec.modality](spec))
    if suffix not in readers:
        raise DataError(
            f"cannot read '{path}' for a model of {spec.modality} data: unknown file type {suffix or '(none)'}; "
            f"it reads {', '.join(sorted(readers))}"
        )
    return readers[suffix]


def _read_npy_batch(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    x = _read_npy(path, spec)
    return x, [str(path)] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]


def _read_image_file(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    return _read_image(path, spec)[None], [str(path)]


def _read_table(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    from glassnet.data.tabular import read_csv_inputs

    return read_csv_inputs(path, spec)


def _read_texts(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    from glassnet.data.text import encode_texts

    try:
        if path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            texts = [line for line in lines if line.strip()]
            names = [f"{path}:{n}" for n, line in enumerate(lines, start=1) if line.strip()]
        else:
            import pandas as pd

            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            column = spec.extra.get("text_column", "text")  # the column the model's texts came from
            if column not in frame.columns:
                raise DataError(f"'{path}' has no {column!r} column (columns: {', '.join(map(str, frame.columns))})")
            texts = frame[column].tolist()
            names = [f"{path}:{n + 2}" for n in range(len(texts))]
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read texts from '{path}': {exc}") from exc
    if not texts:
        raise DataError(f"'{path}' holds no text")
    return encode_texts(texts, spec).numpy(), names


def _read_window(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    length, channels = spec.input_shape
    try:
        frame = pd.read_csv(path)
    except UnicodeDecodeError as exc:  # pandas decodes whole chunks: find the bad byte's line
        raise not_utf8(path) from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read CSV '{path}': {exc}") from exc
    names = list(spec.feature_names) or list(frame.columns[-channels:])
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise DataError(f"'{path}' lacks the model's columns {', '.join(missing)} (it has {', '.join(frame.columns)})")
    if len(frame) < length:
        raise DataError(f"'{path}' has {len(frame)} rows; the model looks back over the last {length}")
    window = frame[names].tail(length)
    try:
        values = window.to_numpy(dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"'{path}': the last {length} rows of {', '.join(names)} must be numbers ({exc})") from exc
    return values[None], [f"{path}[-{length}:]"]


def _read_wav(path: Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    from glassnet.data.audio import audio_features

    return audio_features(path, spec)[None], [str(path)]


def _read_npy(path: Path, spec: DataSpec) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"'{path}' is not a plain NumPy array (pickled objects are refused): {exc}") from exc
        raise DataError(f"'{path}' is not a complete .npy file ({exc}); save it again with numpy.save") from exc
    except EOFError as exc:
        raise DataError(f"'{path}' is empty or cut short ({exc}); save it again with numpy.save") from exc
    except MemoryError as exc:  # the header declares a shape that memory cannot hold
        raise DataError(f"'{path}' declares an array too large for memory ({exc}); give smaller batches") from exc
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
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (OSError, csv.Error) as exc:
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
    from glassnet.data.images import decode_image

    # the decoding of training (orientation, bit depth, size), and its refusals of damaged files and decompression bombs
    channels, height, width = spec.input_shape
    return decode_image(path, channels, (height, width))


@register_readers("tabular")
def _tabular_readers(spec: DataSpec) -> dict[str, Reader]:
    if spec.extra.get("tabular"):  # trained on a CSV file: raw columns by name, encoded by its recipe
        return dict.fromkeys((".csv", ".tsv", ".txt"), _read_table)
    return {".csv": _read_csv}


@register_readers("image")
def _image_readers(spec: DataSpec) -> dict[str, Reader]:
    return dict.fromkeys(IMAGE_SUFFIXES, _read_image_file)


@register_readers("text")
def _text_readers(spec: DataSpec) -> dict[str, Reader]:
    return {".txt": _read_texts, ".csv": _read_texts}


@register_readers("sequence")
def _sequence_readers(spec: DataSpec) -> dict[str, Reader]:
    return {".csv": _read_window}


@register_readers("audio")
def _audio_readers(spec: DataSpec) -> dict[str, Reader]:
    return {".wav": _read_wav}
