"""Subword tokenizers of pretrained text encoders, through Hugging Face ``tokenizers``.

A pretrained encoder reads the token ids of its own vocabulary, made by its own normalisation and
splitting (BERT's WordPiece lower-cases, strips accents, splits punctuation and words into
``##`` pieces). ``Subword`` wraps the encoder's ``tokenizer.json`` (or a WordPiece ``vocab.txt``)
so that glassnet's text data come out exactly as the encoder was trained to read them: special
tokens (``[CLS] ... [SEP]``) added, truncated to ``max_length`` with the specials kept, padded at
the end with the tokenizer's padding id.

The whole tokenizer is kept in the data spec (``extra["subword"]``, its JSON), so a run predicts
on new texts without the original files. Needs ``pip install 'glassnet[text]'`` (``tokenizers``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.errors import ConfigError, DataError

SUBWORD = "subword"  # the spec's extra["tokenizer"] for texts encoded by a Subword tokenizer
PAD_TOKENS = ("[PAD]", "<pad>", "<|padding|>")
UNK_TOKENS = ("[UNK]", "<unk>", "<|unk|>")
INSTALL = "pip install 'glassnet[text]'"


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise ConfigError(f"a pretrained encoder's tokenizer needs the tokenizers package: {INSTALL}") from exc
    return tokenizers


class Subword:
    """One pretrained subword tokenizer, as glassnet's text data use it.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        source: where it came from (for messages and the data's provenance).

    Raises:
        DataError: the tokenizer has no padding token (ids of texts of different lengths could not
            share one tensor).
    """

    def __init__(self, tokenizer: Any, source: str) -> None:
        self.tokenizer = tokenizer
        self.source = source
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.pad_token = self._special(PAD_TOKENS, "padding")
        self.pad_id = int(tokenizer.token_to_id(self.pad_token))
        unk = next((t for t in UNK_TOKENS if tokenizer.token_to_id(t) is not None), None)
        self.unk_id = int(tokenizer.token_to_id(unk)) if unk is not None else None
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.vocab = [""] * (max(vocab.values()) + 1)
        for token, i in vocab.items():
            self.vocab[i] = token

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Subword:
        """A tokenizer from ``tokenizer.json``, or from a WordPiece ``vocab.txt`` (BERT's rules, lower-cased
        unless a ``tokenizer_config.json`` beside it says ``do_lower_case: false``).

        Raises:
            DataError: the file is missing or not a tokenizer.
        """
        path = Path(path).expanduser()
        tokenizers = _tokenizers()
        try:
            if path.name == "vocab.txt":
                from tokenizers.implementations import BertWordPieceTokenizer

                lowercase = _lower_case(path.parent / "tokenizer_config.json")
                made = BertWordPieceTokenizer(str(path), lowercase=lowercase)
                tokenizer = tokenizers.Tokenizer.from_str(made.to_str())
            else:
                tokenizer = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception for a malformed file
            raise DataError(f"cannot read the tokenizer '{path}' ({str(exc).splitlines()[0]})") from exc
        return cls(tokenizer, str(path))

    @classmethod
    def from_json(cls, text: str, source: str = "the run's data spec") -> Subword:
        """A tokenizer from the JSON kept in a data spec (``to_json``).

        Raises:
            DataError: the text is not a tokenizer.
        """
        try:
            tokenizer = _tokenizers().Tokenizer.from_str(text)
        except Exception as exc:
            raise DataError(f"cannot read the tokenizer kept in {source} ({str(exc).splitlines()[0]})") from exc
        return cls(tokenizer, source)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def _special(self, candidates: Sequence[str], what: str) -> str:
        padding = self.tokenizer.padding  # a tokenizer.json may name its padding token
        named = [padding["pad_token"]] if padding else []
        for token in [*named, *candidates]:
            if self.tokenizer.token_to_id(token) is not None:
                return token
        raise DataError(f"the tokenizer '{self.source}' has no {what} token (looked for {', '.join(candidates)})")

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's length in tokens, special tokens included, before any truncation."""
        return np.array([len(e.ids) for e in self.tokenizer.encode_batch(list(texts))], dtype=np.int64)

    def encode(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        """int64 ids ``(len(texts), max_length)``: specials added, longer texts cut (specials kept), padded."""
        if not texts:
            return torch.zeros((0, max_length), dtype=torch.int64)
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(length=max_length, pad_id=self.pad_id, pad_token=self.pad_token)
        try:
            rows = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        finally:
            self.tokenizer.no_padding()
            self.tokenizer.no_truncation()
        return torch.tensor(rows, dtype=torch.int64)

    def spec_extra(self) -> dict[str, Any]:
        """What a data spec keeps to encode new texts the same way (``encode_texts``)."""
        return {
            "vocab": self.vocab,
            "pad_index": self.pad_id,
            "unk_index": self.unk_id,
            "tokenizer": SUBWORD,
            "subword": self.to_json(),
            "subword_source": self.source,
            "lowercase": False,  # the tokenizer's own normaliser decides
        }


_CACHE: list[tuple[str, Subword]] = []  # (tokenizer JSON, its Subword), most recent last


def from_spec_extra(extra: dict[str, Any]) -> Subword:
    """The tokenizer a data spec keeps, parsed once per JSON text (a server encodes each request with it)."""
    text = extra["subword"]
    for known, subword in _CACHE:
        if known is text:
            return subword
    subword = Subword.from_json(text)
    _CACHE.append((text, subword))
    del _CACHE[:-2]
    return subword


def _lower_case(config: Path) -> bool:
    if not config.is_file():
        return True
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case", True))
    except (OSError, ValueError, AttributeError):
        return True
