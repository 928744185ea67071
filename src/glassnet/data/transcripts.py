"""Speech with transcripts for recognition (the ``transcribe`` task) and the ``transcripts`` format.

Layout of the format::

    speech/
      transcripts.csv     file,text[,speaker][,split]   (a header row; UTF-8)
      clips/0001.wav ...  the WAV files, named relative to the CSV

``file`` and ``text`` are required; ``speaker`` holds out whole speakers for validation and test
(so the test score is on unseen voices) when there are at least three; ``split`` (``train``,
``val``, ``test``) fixes the split of each row and wins over both. The CSV itself may be given
instead of its folder.

Transcripts are normalised (Unicode NFKC, lower case, punctuation other than the apostrophe and the
hyphen turned into spaces, runs of spaces collapsed). Their characters form the output alphabet of
a CTC model: id 0 is the CTC *blank*, id 1 the space that separates words, then every other
character seen, sorted. Targets are ``N x L`` ids padded with 0 (the blank never occurs in a
transcript, so padding is unambiguous).

Each clip becomes a ``1 x n_mels x frames`` log-mel spectrogram (the ``audio`` format's pipeline,
see ``glassnet.data.audio``), centred in ``duration`` seconds: ``auto`` takes the longest clip,
rounded up to a quarter second. A clip is never cut: one longer than ``duration`` is refused, since
cutting it would lose words its transcript still holds.
"""

from __future__ import annotations

import csv
import io
import math
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.audio import audio_options, files_features, read_wav
from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.registry import register_format
from glassnet.errors import ConfigError, DataError

BLANK = "<blank>"
SPACE = "<space>"
BLANK_ID = 0
SPACE_ID = 1
CSV_NAME = "transcripts.csv"
FILE_COLUMNS = ("file", "path", "audio")
TEXT_COLUMNS = ("text", "transcript", "sentence")
MAX_DURATION = 60.0  # seconds; a longer clip is a recording to cut into utterances first
SPLITS = ("train", "val", "test")
_KEEP = {"'", "-"}  # punctuation that is part of words (don't, twenty-one)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})  # typographic apostrophes


def normalise_transcript(text: str) -> str:
    """A transcript as the model learns it: NFKC, lower case, punctuation as spaces, single spaces.

    Args:
        text: the transcript as written.

    Returns:
        The normalised text (letters, digits, apostrophes, hyphens and single spaces).
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    kept = [c if c in _KEEP or unicodedata.category(c)[0] in "LNM" else " " for c in text]
    words = "".join(kept).split()
    return " ".join(w for w in (w.strip("".join(_KEEP)) for w in words) if w)  # "-" or "'" alone is no word


def alphabet(texts: Sequence[str]) -> tuple[str, ...]:
    """The CTC output symbols of normalised transcripts: blank, space, then every other character, sorted."""
    characters = sorted({c for text in texts for c in text} - {" "})
    return (BLANK, " ", *characters)


def encode_transcripts(texts: Sequence[str], symbols: Sequence[str], length: int | None = None) -> np.ndarray:
    """Normalised transcripts as ``N x L`` symbol ids padded with the blank (0).

    Args:
        texts: normalised transcripts.
        symbols: the alphabet (``alphabet``).
        length: ``L`` (default: the longest transcript).

    Raises:
        DataError: a transcript holds a character outside the alphabet or is longer than ``length``.
    """
    index = {s: i for i, s in enumerate(symbols) if i != BLANK_ID}
    length = max((len(t) for t in texts), default=1) if length is None else length
    out = np.zeros((len(texts), max(length, 1)), dtype=np.int64)
    for row, text in enumerate(texts):
        if len(text) > length:
            raise DataError(f"transcript {text!r} has {len(text)} characters; at most {length} fit")
        try:
            out[row, : len(text)] = [index[c] for c in text]
        except KeyError as exc:
            raise DataError(f"transcript {text!r} holds {exc.args[0]!r}, which is not in the alphabet") from exc
    return out


def decode_ids(ids: Sequence[int] | torch.Tensor, symbols: Sequence[str]) -> str:
    """Symbol ids back to text (blanks and padding dropped)."""
    values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    return "".join(symbols[i] for i in values if 0 < i < len(symbols))


def display_names(symbols: Sequence[str]) -> tuple[str, ...]:
    """The alphabet as class names a reader sees (the space shown as ``<space>``)."""
    return tuple(SPACE if s == " " else s for s in symbols)


def symbols_of(spec: Any) -> tuple[str, ...]:
    """The alphabet a ``transcribe`` spec was trained with.

    Raises:
        DataError: the spec is not that of a transcription model.
    """
    symbols = spec.extra.get("alphabet") if spec.task == "transcribe" else None
    if not isinstance(symbols, (list, tuple)) or len(symbols) < 2:
        raise DataError(f"this model does not transcribe speech (its task is {spec.task!r})")
    return tuple(symbols)


# ---------------------------------------------------------------------------------------------
# features


def clip_seconds(files: Sequence[Path]) -> list[float]:
    """The length of each WAV file in seconds (each file read once; the message of a bad one names it)."""
    lengths = []
    for path in files:
        wave, rate = read_wav(path)
        lengths.append(len(wave) / rate)
    return lengths


def resolve_duration(duration: float | str, seconds: Sequence[float], files: Sequence[Path]) -> float:
    """``duration`` checked against the clips; ``auto``: the longest clip rounded up to 0.25 s.

    Raises:
        ConfigError: ``duration`` is neither ``auto`` nor a number of seconds.
        DataError: a clip is longer than ``duration`` or than ``MAX_DURATION``.
    """
    longest = int(np.argmax(seconds)) if len(seconds) else 0
    if duration == "auto":
        if seconds and seconds[longest] > MAX_DURATION:
            raise DataError(
                f"'{files[longest]}' lasts {seconds[longest]:.1f} s; utterances of at most {MAX_DURATION:.0f} s "
                "are transcribed: cut long recordings into utterances first"
            )
        return max(0.5, math.ceil((max(seconds, default=0.5) + 1e-9) * 4) / 4)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration <= MAX_DURATION:
        raise ConfigError(
            f"duration must be 'auto' or a number of seconds in (0, {MAX_DURATION:.0f}]. "
            f"Received: duration={duration!r}"
        )
    if seconds and seconds[longest] > duration + 1e-9:
        raise DataError(
            f"'{files[longest]}' lasts {seconds[longest]:.2f} s, longer than duration={duration} s; cutting it "
            "would lose words of its transcript: raise duration (or leave it at auto)"
        )
    return float(duration)


def utterance_options(
    duration: float, sample_rate: int = 16000, n_mels: int = 40, n_fft: int = 400, hop_length: int = 160
) -> dict[str, Any]:
    """The ``audio`` feature options of a transcription model (25 ms windows every 10 ms by default)."""
    options = audio_options(sample_rate, duration, n_mels, n_fft, hop_length)
    options["strict"] = True  # glassnet predict refuses clips longer than duration instead of cropping them
    return options


# ---------------------------------------------------------------------------------------------
# bundles


def bundle_from_utterances(
    files: Sequence[Path],
    texts: Sequence[str],
    groups: Sequence[np.ndarray],
    options: dict[str, Any],
    *,
    name: str,
    speakers: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    info: dict[str, Any] | None = None,
) -> DataBundle:
    """A ``transcribe`` bundle from clips, their normalised transcripts and a split of their indices.

    Each split's dataset carries ``utterances`` (file, text and speaker of each example, in order),
    which the report and the per-speaker scores read.

    Args:
        files: the WAV files.
        texts: their normalised transcripts.
        groups: index arrays of the train, validation and test examples.
        options: the feature options (``utterance_options``).
        name: the dataset name.
        speakers: the speaker of each clip, or None.
        features: precomputed ``N x 1 x n_mels x frames`` features (default: computed from ``files``).
        info: provenance for ``DataBundle.info``.

    Raises:
        DataError: a transcript is empty, or the training split is.
    """
    empty = [str(files[i]) for i, t in enumerate(texts) if not t]
    if empty:
        raise DataError(f"the transcript of '{empty[0]}' is empty (after removing punctuation); give its words")
    symbols = alphabet(texts)
    targets = encode_transcripts(texts, symbols)
    if features is None:
        features = files_features(list(files), options)
    bundle = bundle_from_splits(
        *[(features[g], targets[g]) for g in groups],
        name=name,
        modality="audio",
        task="transcribe",
        class_names=display_names(symbols),
        extra={"audio": options, "alphabet": list(symbols), "max_transcript": int(targets.shape[1])},
        info=dict(info or {}),
    )
    for split, group in zip(SPLITS, groups):
        bundle.split(split).utterances = [  # type: ignore[attr-defined]
            {"file": str(files[i]), "text": texts[i], "speaker": None if speakers is None else speakers[i]}
            for i in group
        ]
    return bundle


def utterances_of(dataset: Any) -> list[dict[str, Any]] | None:
    """The ``utterances`` list a transcription split carries, or None (a dataset made otherwise)."""
    found = getattr(dataset, "utterances", None)
    return found if isinstance(found, list) and len(found) == len(dataset) else None


# ---------------------------------------------------------------------------------------------
# the format


def _transcript_csv(path: Path) -> Path | None:
    if path.is_dir():
        found = path / CSV_NAME
        return found if found.is_file() else None
    return path if path.is_file() and path.suffix.lower() == ".csv" else None


def is_transcript_data(path: Path) -> bool:
    """A folder holding ``transcripts.csv``, or a CSV whose header names a file and a text column (and no label)."""
    found = _transcript_csv(path)
    if found is None:
        return False
    if path.is_dir():
        return True
    try:
        with found.open(encoding="utf-8-sig", errors="replace") as handle:
            header = [h.strip().lower() for h in next(csv.reader([handle.readline()]), [])]
    except (OSError, csv.Error):
        return False
    return "label" not in header and bool(set(header) & set(FILE_COLUMNS)) and bool(set(header) & set(TEXT_COLUMNS))


def read_transcripts(path: Path) -> list[dict[str, str]]:
    """The rows of a transcript CSV, each with ``file`` (resolved), ``text`` (as written) and optional columns.

    Raises:
        DataError: the file is missing or unreadable, lacks a file or text column, has a row with a
            missing WAV file, an empty text, or a file listed twice.
    """
    found = _transcript_csv(path)
    if found is None:
        raise DataError(
            f"'{path}' is neither a folder with {CSV_NAME} nor a CSV file; give a CSV with columns file,text "
            "(one row per WAV file, paths relative to the CSV)"
        )
    try:
        content = found.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read '{found}' as UTF-8 text ({exc})") from exc
    try:
        rows = list(csv.reader(io.StringIO(content, newline="")))
    except csv.Error as exc:
        raise DataError(f"'{found}' is not a valid CSV file ({exc})") from exc
    if not rows:
        raise DataError(f"'{found}' is empty; give a header row file,text and one row per clip")
    header = [h.strip().lower() for h in rows[0]]
    file_column = next((header.index(c) for c in FILE_COLUMNS if c in header), None)
    text_column = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if file_column is None or text_column is None:
        raise DataError(
            f"'{found}' needs a file column ({'/'.join(FILE_COLUMNS)}) and a text column ({'/'.join(TEXT_COLUMNS)}); "
            f"its header is {rows[0]}"
        )
    out, seen = [], {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"'{found}' line {number} has {len(row)} fields; the header has {len(header)}")
        record = {name: cell.strip() for name, cell in zip(header, row)}
        wav = (found.parent / row[file_column].strip()).resolve()
        if not row[file_column].strip() or not wav.is_file():
            raise DataError(
                f"'{found}' line {number}: audio file '{row[file_column].strip()}' not found in {found.parent}"
            )
        if wav in seen:
            raise DataError(f"'{found}' lists '{wav.name}' twice (lines {seen[wav]} and {number}); keep one row")
        seen[wav] = number
        if not row[text_column].strip():
            raise DataError(f"'{found}' line {number}: the text of '{row[file_column].strip()}' is empty")
        record["file"], record["text"] = str(wav), row[text_column]
        out.append(record)
    if len(out) < 3:
        raise DataError(f"'{found}' lists {len(out)} clip(s); a train, validation and test split need at least 3")
    return out


def split_rows(
    rows: list[dict[str, str]], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[np.ndarray], str]:
    """Train, validation and test indices of transcript rows, and how they were chosen.

    A ``split`` column wins; otherwise whole speakers are held out when there are at least three,
    else the rows are shuffled (seeded).

    Raises:
        DataError: a ``split`` value is unknown, or no training row is left.
        ConfigError: the fractions are out of range.
    """
    from glassnet.data.spoken_digits import voice_split

    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "need 0 < test_fraction < 1, 0 <= val_fraction < 1 and a sum below 1. "
            f"Received: val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    if any(r.get("split") for r in rows):
        named = [r.get("split", "").lower() for r in rows]
        unknown = sorted(set(named) - set(SPLITS))
        if unknown:
            raise DataError(f"split column holds {unknown[0]!r}; use train, val or test")
        groups = [np.flatnonzero(np.array(named) == s) for s in SPLITS]
        how = "the split column"
    elif len({r.get("speaker") or "" for r in rows} - {""}) >= 3:
        # a row without a speaker is its own speaker (not one shared, invisible voice held out whole)
        speakers = np.array([r.get("speaker") or f"\0row {i}" for i, r in enumerate(rows)])
        names = voice_split(sorted(set(speakers)), val_fraction, test_fraction, seed)
        groups = [np.flatnonzero(np.isin(speakers, group)) for group in names]
        how = "whole speakers held out"
    else:
        order = np.random.default_rng(seed).permutation(len(rows))
        n_test = max(1, round(test_fraction * len(rows)))
        n_val = max(1, round(val_fraction * len(rows))) if val_fraction > 0 else 0
        groups = [np.sort(order[n_test + n_val :]), np.sort(order[n_test : n_test + n_val]), np.sort(order[:n_test])]
        how = "rows shuffled"
    if len(groups[0]) == 0:
        raise DataError("no clip is left for training; lower val_fraction and test_fraction")
    if len(groups[2]) == 0:
        raise DataError(f"no clip is left for testing ({how}); give test rows or raise test_fraction")
    if len(groups[1]) == 0 and (how == "the split column" or val_fraction > 0):
        raise DataError(f"no clip is left for validation ({how}); give val rows or raise val_fraction")
    return groups, how


@register_format(
    "transcripts",
    detect=is_transcript_data,
    description="speech with transcripts: WAV files listed in a CSV with columns file,text (speech recognition)",
    example="glassnet train --data speech/ --model speech_ctc",
)
def load_transcripts(
    path: str | os.PathLike[str],
    duration: float | str = "auto",
    sample_rate: int = 16000,
    n_mels: int = 40,
    n_fft: int = 400,
    hop_length: int = 160,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> DataBundle:
    """Load WAV files and their transcripts for speech recognition (task ``transcribe``).

    Args:
        path: a folder holding ``transcripts.csv`` or the CSV itself (columns ``file,text``, optional
            ``speaker`` and ``split``; file paths relative to the CSV).
        duration: seconds every clip is centred in (``auto``: the longest, rounded up to 0.25 s).
        sample_rate: rate every clip is resampled to, in Hz.
        n_mels: mel bands of the spectrogram.
        n_fft: FFT and Hann window size in samples.
        hop_length: samples between frames.
        val_fraction: share of clips (or speakers) for validation.
        test_fraction: share of clips (or speakers) for testing.
        split_seed: seed of the split.

    Returns:
        A ``DataBundle`` with task ``transcribe``; ``spec.extra`` holds the feature options and the
        alphabet, so ``glassnet predict RUN clip.wav`` prints a transcript.

    Raises:
        DataError: the CSV or a clip is missing or malformed (the message names it), or a clip is
            longer than ``duration``.
        ConfigError: an option has a bad value.
    """
    root = Path(path)
    rows = read_transcripts(root)
    files = [Path(r["file"]) for r in rows]
    texts = [normalise_transcript(r["text"]) for r in rows]
    seconds = clip_seconds(files)
    options = utterance_options(resolve_duration(duration, seconds, files), sample_rate, n_mels, n_fft, hop_length)
    groups, how = split_rows(rows, val_fraction, test_fraction, split_seed)
    speakers = [r.get("speaker") or "" for r in rows] if any(r.get("speaker") for r in rows) else None
    return bundle_from_utterances(
        files,
        texts,
        groups,
        options,
        name=(root.resolve() if root.is_dir() else root.resolve().parent).name or str(root),
        speakers=speakers,
        info={
            "source": str(root),
            "description": f"speech with transcripts, {len(rows)} clips ({how})",
            "split": how,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "hours": round(sum(seconds) / 3600, 3),
        },
    )
