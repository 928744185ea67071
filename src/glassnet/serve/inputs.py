"""Requests into model inputs, by the same readers as ``glassnet predict``.

JSON arrays are checked and shaped here; everything that is a file for ``glassnet predict`` (CSV
rows, texts, images, WAV, ``.npy``) is written to a private temporary file and read by
``glassnet.data.inputs.read_inputs``, so a server and ``glassnet predict`` never disagree on
preprocessing. Every refusal is a ``DataError`` that names the upload, never the temporary file.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.inputs import IMAGE_SUFFIXES, read_inputs
from glassnet.data.spec import DataSpec
from glassnet.errors import DataError

UPLOAD_SUFFIXES = (*IMAGE_SUFFIXES, ".wav", ".csv", ".tsv", ".txt", ".npy")
MAX_EXAMPLES = 4096  # examples in one request


def from_json(body: bytes, spec: DataSpec, dtype: torch.dtype, key: str = "inputs") -> tuple[torch.Tensor, list[str]]:
    """``{"inputs": [example, ...]}`` (each shaped like the model's input, or flat), ``{"texts": [...]}``
    for text models, or ``{"observations": [...]}`` for agents (``key``)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"the body is not valid JSON ({_first_line(exc)})") from exc
    if not isinstance(payload, dict):
        raise DataError(
            f'the JSON body must be an object such as {{"{key}": [...]}}; received {type(payload).__name__}'
        )
    if "texts" in payload and spec.modality == "text":
        return _texts(payload["texts"], spec)
    if key not in payload:
        hint = ' or "texts": ["..."]' if spec.modality == "text" else ""
        raise DataError(
            f'the JSON body has no "{key}" (received keys: {", ".join(map(str, payload)) or "none"}); '
            f'send "{key}": [...]{hint}'
        )
    return examples(payload[key], spec, dtype, key)


def examples(values: Any, spec: DataSpec, dtype: torch.dtype, key: str = "inputs") -> tuple[torch.Tensor, list[str]]:
    """A list of examples as a batch ``N x input_shape``, checked: numbers, finite, the right size."""
    if not isinstance(values, list) or not values:
        raise DataError(f'"{key}" must be a non-empty list of examples, one per prediction')
    if len(values) > MAX_EXAMPLES:
        raise DataError(f'"{key}" holds {len(values):,} examples; send at most {MAX_EXAMPLES:,} per request')
    size = math.prod(spec.input_shape)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f'"{key}" must hold numbers only, each example a (nested) list of {size} numbers shaped '
            f"{list(spec.input_shape)} ({_first_line(exc)})"
        ) from exc
    if array.ndim >= 1 and array.size == size and (array.ndim == 1 or array.size != len(array) * size):
        array = array.reshape(1, size)  # one example without the outer list (an 8 x 8 grey image, a row)
    if array.ndim < 2 or array.size != len(array) * size:
        raise DataError(
            f'"{key}" must be a list of examples of {size} numbers each, shaped {list(spec.input_shape)} '
            f"(or flat, or without dimensions of size 1); received an array of shape {list(array.shape)}"
        )
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f'"{key}" example {int(np.flatnonzero(bad)[0])} holds NaN or infinite values; send finite numbers'
        )
    if dtype == torch.int64:
        if (array != np.round(array)).any() or (array < 0).any():
            raise DataError(f'"{key}" of this model are token ids: whole numbers >= 0 (or send "texts")')
        vocab = len(spec.extra.get("vocab") or ()) or None
        if vocab is not None and (array >= vocab).any():
            raise DataError(f'"{key}" holds a token id >= the vocabulary size {vocab}')
    elif np.abs(array).max() > np.finfo(np.float32).max:
        raise DataError(f'"{key}" holds numbers beyond float32 range (+-3.4e38)')
    batch = torch.from_numpy(array.reshape(len(array), *spec.input_shape)).to(dtype)
    return batch, [f"{key}[{i}]" for i in range(len(batch))]


def _texts(texts: Any, spec: DataSpec) -> tuple[torch.Tensor, list[str]]:
    from glassnet.data.text import encode_texts

    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise DataError('"texts" must be a non-empty list of strings')
    if len(texts) > MAX_EXAMPLES:
        raise DataError(f'"texts" holds {len(texts):,} texts; send at most {MAX_EXAMPLES:,} per request')
    return encode_texts(texts, spec), [f"texts[{i}]" for i in range(len(texts))]


def from_files(files: Sequence[tuple[str, bytes]], spec: DataSpec) -> tuple[torch.Tensor, list[str]]:
    """Uploaded ``(filename, content)`` pairs read as ``glassnet predict FILE`` reads them; the suffix of
    the name says what the file is (as for ``glassnet predict``).

    Raises:
        DataError: no file, an unknown suffix, or a file the reader refuses (named by its upload name).
    """
    if not files:
        raise DataError('the upload holds no file; send one or more files in fields named "file"')
    with tempfile.TemporaryDirectory(prefix="glassnet-upload-") as folder:
        paths, names = [], {}
        for i, (name, content) in enumerate(files):
            suffix = Path(name or "").suffix.lower()
            if suffix not in UPLOAD_SUFFIXES:
                raise DataError(
                    f"'{name}': unsupported file type {suffix or '(no suffix)'}; "
                    f"send one of {', '.join(UPLOAD_SUFFIXES)}"
                )
            path = Path(folder) / f"upload{i}{suffix}"
            path.write_bytes(content)
            paths.append(path)
            names[str(path)] = name
        try:
            batch, labels = read_inputs(paths, spec)
        except DataError as exc:
            raise DataError(_renamed(str(exc), names)) from None
    if len(batch) > MAX_EXAMPLES:
        raise DataError(f"the upload holds {len(batch):,} examples; send at most {MAX_EXAMPLES:,} per request")
    return batch, [_renamed(label, names) for label in labels]


def _renamed(text: str, names: dict[str, str]) -> str:
    for path, name in names.items():
        text = text.replace(path, name)
    return text


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
