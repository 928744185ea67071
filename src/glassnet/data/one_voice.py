"""The ``one-voice`` built-in: 1,200 sentences read by one voice, to learn speech synthesis from.

A text-to-speech model learns one speaker, so this set has one: espeak-ng's ``en-us`` voice at 160
words per minute and its default pitch, recorded clean (no added noise), at 16 kHz. The reading
script alternates digit strings of 3 to 10 digits (``zero four one five``) and voice-assistant
commands (``call anna``, ``set a timer for twenty minutes``), the sentences of ``spoken-numbers``
and ``spoken-commands``. On first use it is synthesised into ``cache_dir() / "one-voice"`` with the
same layout (``clips/``, ``transcripts.csv``, ``manifest.json``), so the folder also loads with the
``transcripts`` format.

The split holds out whole *sentences*: every clip of a text lands in the same split, so the
validation and test sentences are never read in training (the test digit strings are new digit
sequences, the test commands new requests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassnet.data import spoken_digits as sd
from glassnet.data.bundle import DataBundle
from glassnet.data.locate import cache_dir
from glassnet.data.registry import register_dataset
from glassnet.data.spoken_sentences import FORMAT, synthesise_sentences
from glassnet.data.transcripts import bundle_from_utterances, resolve_duration, utterance_options
from glassnet.errors import ConfigError
from glassnet.progress import Progress

SOURCE = "synthesised on first use with espeak-ng (GPL-3), voice en-us, into the glassnet cache"
NAME = "one-voice"
VOICE = sd.Voice("espeak-en-us", "espeak-ng", "en-us")
SPEED = 160  # words per minute
PITCH = 50  # espeak-ng's default
SENTENCES = 1200


def one_voice_folder(progress: Progress = "auto") -> Path:
    """The synthesised ``one-voice`` folder in the cache, synthesising it first when missing or outdated."""
    folder = cache_dir() / NAME
    if not sd._is_current(folder, FORMAT):
        synthesise_sentences(
            folder, NAME, voices=[VOICE], speeds=(SPEED,), pitches=(PITCH,), per_take=SENTENCES, progress=progress
        )
    return folder


def sentence_split(
    texts: list[str], val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, validation and test clips, holding out whole sentences (a seeded shuffle of texts).

    Raises:
        ConfigError: a fraction is out of range, or leaves a split empty.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ConfigError(f"{name} must be in (0, 1). Received: {name}={value}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 (training needs sentences). "
            f"Received: {val_fraction} + {test_fraction}"
        )
    unique = sorted(set(texts))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test, n_val = max(1, round(test_fraction * len(unique))), max(1, round(val_fraction * len(unique)))
    split_of = {}
    for rank, k in enumerate(order):
        split_of[unique[k]] = 2 if rank < n_test else 1 if rank < n_test + n_val else 0
    where = np.array([split_of[t] for t in texts])
    return tuple(np.flatnonzero(where == s) for s in range(3))  # type: ignore[return-value]


@register_dataset(
    NAME,
    task="transcribe",
    modality="audio",
    size="1,200 sentences (digit strings and commands, 1-5 s, 16 kHz) read by one synthetic voice",
    source=SOURCE,
    description="one clean voice reading digit strings and commands, for speech synthesis; test sentences unseen",
)
def one_voice(
    val_fraction: float = 0.1, test_fraction: float = 0.15, split_seed: int = 0, n_mels: int = 40
) -> DataBundle:
    """One voice's sentences with their transcripts, split by sentence.

    Args:
        val_fraction: share of sentences for validation.
        test_fraction: share of sentences for testing.
        split_seed: seed of the sentence split.
        n_mels: mel bands of the recognition spectrograms (a synthesis model makes its own).

    Raises:
        DataError: the clips must be synthesised and espeak-ng is missing.
        ConfigError: an option has a bad value.
    """
    folder = one_voice_folder()
    manifest = sd.read_manifest(folder)
    clips = manifest["clips"]
    files = [folder / c["file"] for c in clips]
    texts = [c["text"] for c in clips]
    options = utterance_options(
        resolve_duration("auto", [float(c["seconds"]) for c in clips], files), sd.SAMPLE_RATE, n_mels
    )
    groups = sentence_split(texts, val_fraction, test_fraction, split_seed)
    features = sd.cached_features(folder, clips, options, tag=f"-d{options['duration']:g}")
    return bundle_from_utterances(
        files,
        texts,
        groups,
        options,
        name=NAME,
        speakers=[c["voice"] for c in clips],
        features=features,
        info={
            "source": SOURCE,
            "description": "one voice reading digit strings and commands; whole sentences held out",
            "folder": str(folder),
            "engines": manifest.get("engines", {}),
            "voice": VOICE.name,
            "split": "whole sentences held out",
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
        },
    )
