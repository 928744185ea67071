"""The ``spoken-numbers`` and ``spoken-commands`` built-ins: connected speech in many voices, with transcripts.

On first use each is synthesised with the voices of ``spoken-digits`` (every espeak-ng variant with
an English or foreign accent, and flite's voices), at two speeds and two pitches, into
``cache_dir() / <name>``: ``clips/*.wav`` (16 kHz mono), ``transcripts.csv`` (``file,text,speaker``, so
the folder also loads with the ``transcripts`` format) and ``manifest.json`` (voice, speed, pitch,
noise and length of every clip). Each take (voice, speed, pitch) says its own seeded sentences:

- ``spoken-numbers``: digit strings of 3 to 10 digits read as words (``four one five five``), the
  lengths of PINs, codes and phone numbers;
- ``spoken-commands``: short requests to a voice assistant drawn from a grammar over a vocabulary
  of about 250 words (``turn off the kitchen lights``, ``set a timer for twenty minutes``).

espeak-ng says a take's sentences in one call with long breaks, cut at the breaks; flite says one
sentence per call. Half the clips get white noise at a signal-to-noise ratio of 10 to 30 dB. The
folder is built in a temporary folder and renamed into place (complete or absent).

Splits hold out whole voices, as ``spoken-digits`` does: test and validation voices are never
heard in training, so word error rates are on unseen speakers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.data import spoken_digits as sd
from glassnet.data.bundle import DataBundle
from glassnet.data.locate import cache_dir
from glassnet.data.registry import register_dataset
from glassnet.data.transcripts import bundle_from_utterances, resolve_duration, utterance_options
from glassnet.errors import DataError
from glassnet.progress import Progress, progress_bar

SOURCE = "synthesised on first use with espeak-ng (GPL-3) and flite (BSD-like) into the glassnet cache"
FORMAT = 1  # bump when the layout, the grammar or the synthesis changes, so old caches are rebuilt
PER_TAKE = 8  # sentences each (voice, speed, pitch) says
NOISY_SHARE = 0.5  # clips that get white noise
SNR_DB = (10.0, 30.0)  # range of their signal-to-noise ratio
BREAK = '<break time="1s"/>'
MIN_GAP_S = 0.5  # silences this long separate sentences; pauses inside a sentence are shorter

NUMBER_WORDS = sd.DIGITS

ROOMS = (
    "kitchen",
    "bedroom",
    "living room",
    "bathroom",
    "garage",
    "office",
    "hallway",
    "garden",
    "basement",
    "nursery",
)
DEVICES = ("lights", "lamp", "fan", "heater", "radio", "television", "speaker", "blinds", "oven", "kettle")
COUNTS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "twenty five", "thirty", "forty", "forty five", "fifty", "sixty", "ninety",
)  # fmt: skip
UNITS = ("seconds", "minutes", "hours")
NAMES = (
    "anna", "ben", "carlos", "diana", "emma", "frank", "grace", "henry", "isabel", "jack", "karen", "leo",
    "maria", "nina", "oscar", "paul", "rachel", "sam", "tina", "victor", "mum", "dad", "the doctor", "the office",
)  # fmt: skip
CITIES = (
    "london", "paris", "berlin", "madrid", "rome", "tokyo", "sydney", "toronto", "chicago", "boston", "dublin",
    "lisbon", "vienna", "prague", "oslo", "cairo", "mumbai", "seoul", "mexico city", "new york",
)  # fmt: skip
GENRES = ("jazz", "rock", "classical", "pop", "blues", "folk", "reggae", "country", "soul", "opera")
APPS = ("calendar", "camera", "browser", "email", "maps", "notes", "settings", "messages", "photos", "clock")
CHORES = (
    "buy milk", "water the plants", "feed the cat", "take my pills", "pay the rent", "call the bank",
    "walk the dog", "book a table", "send the report", "charge my phone", "pick up the kids", "lock the door",
)  # fmt: skip
HOURS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow")
DIRECTIONS = ("left", "right", "forward", "back", "up", "down")
LEVELS = ("ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

COMMANDS: tuple[Callable[[Callable[[Sequence[str]], str]], str], ...] = (
    lambda c: f"turn {c(('on', 'off'))} the {c(ROOMS)} {c(DEVICES)}",
    lambda c: f"set the {c(ROOMS)} {c(DEVICES)} to {c(LEVELS)} percent",
    lambda c: f"set a timer for {c(COUNTS)} {c(UNITS)}",
    lambda c: f"call {c(NAMES)}",
    lambda c: f"send a message to {c(NAMES)}",
    lambda c: f"what is the weather in {c(CITIES)} {c(DAYS)}",
    lambda c: f"play {c(GENRES)} music in the {c(ROOMS)}",
    lambda c: f"{c(('open', 'close'))} the {c(APPS)}",
    lambda c: f"remind me to {c(CHORES)} at {c(HOURS)} {c(('am', 'pm'))}",
    lambda c: f"move {c(DIRECTIONS)} {c(COUNTS)} steps",
    lambda c: f"{c(('raise', 'lower'))} the volume in the {c(ROOMS)}",
    lambda c: f"what time is it in {c(CITIES)}",
    lambda c: f"wake me up at {c(HOURS)} {c(('am', 'pm'))} on {c(DAYS)}",
)


def number_sentences(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` digit strings of 3 to 10 digits, as words."""
    return [" ".join(NUMBER_WORDS[d] for d in rng.integers(0, 10, rng.integers(3, 11))) for _ in range(count)]


def command_sentences(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` requests drawn from the command grammar (each template, then each slot, uniformly)."""

    def choose(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    return [COMMANDS[int(rng.integers(len(COMMANDS)))](choose) for _ in range(count)]


def mixed_sentences(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` sentences, digit strings and commands in turn (the reading script of ``one-voice``)."""
    numbers, commands = number_sentences(rng, (count + 1) // 2), command_sentences(rng, count // 2)
    return [s for pair in zip(numbers, commands) for s in pair] + numbers[len(commands) :]


KINDS: dict[str, Callable[[np.random.Generator, int], list[str]]] = {
    "spoken-numbers": number_sentences,
    "spoken-commands": command_sentences,
    "one-voice": mixed_sentences,
}
NOISY_SHARES = {"one-voice": 0.0}  # a voice to learn to speak from is recorded clean


def command_vocabulary() -> list[str]:
    """Every word the command grammar can say, sorted."""
    words: set[str] = set()
    pools = (ROOMS, DEVICES, COUNTS, UNITS, NAMES, CITIES, GENRES, APPS, CHORES, HOURS, DAYS, DIRECTIONS, LEVELS)
    for pool in pools:
        for phrase in pool:
            words.update(phrase.split())
    for template in COMMANDS:
        words.update(template(lambda options: options[0]).split())
        words.update(template(lambda options: options[-1]).split())
    return sorted(words)


# ---------------------------------------------------------------------------------------------
# synthesis


def synthesise_sentences(
    target: str | os.PathLike[str],
    kind: str,
    voices: Sequence[sd.Voice] | None = None,
    speeds: Sequence[int] = sd.SPEEDS,
    pitches: Sequence[int] = sd.PITCHES,
    per_take: int = PER_TAKE,
    workers: int | None = None,
    progress: Progress = "auto",
) -> Path:
    """Synthesise ``per_take`` sentences of ``kind`` for every voice, speed and pitch into ``target``, atomically.

    Args:
        target: the folder to create; one left by an older synthesis format is replaced.
        kind: ``spoken-numbers`` or ``spoken-commands`` (which sentences).
        voices: the speakers (default: ``plan_voices`` over the installed engines).
        speeds: speaking rates in words per minute.
        pitches: espeak-ng pitches (0..99).
        per_take: sentences per (voice, speed, pitch).
        workers: synthesis processes at once (default: up to 4).
        progress: the progress bar (see ``spoken_digits.synthesise_spoken_digits``).

    Returns:
        ``target``.

    Raises:
        DataError: espeak-ng is missing, or no voice could be synthesised.
    """
    espeak = sd.require_espeak(kind)
    flite = shutil.which("flite")
    voices = list(voices) if voices is not None else sd.plan_voices(espeak, flite)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (building / "clips").mkdir()
        scratch = building / ".scratch"
        scratch.mkdir()
        takes = [(v, s, p) for v in voices for s in speeds for p in pitches]
        bar = progress_bar(len(takes), f"synthesise {kind}", progress, unit="takes")
        with bar, ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
            results = []
            for result in pool.map(lambda take: _take(building, scratch, kind, per_take, *take), takes):
                results.append(result)
                bar.update(1)
        shutil.rmtree(scratch)
        skipped = {v.name: r for (v, _, _), r in zip(takes, results) if isinstance(r, str)}
        clips = [c for (v, _, _), r in zip(takes, results) if v.name not in skipped for c in r]
        for name in skipped:  # a voice with a failed take leaves no clips
            for path in (building / "clips").glob(f"{name}_s*_p*_*.wav"):
                path.unlink()
        if not clips:
            raise DataError(f"no voice could be synthesised into '{target}': {skipped}")
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["file", "text", "speaker"])
        writer.writerows([c["file"], c["text"], c["voice"]] for c in clips)
        (building / "transcripts.csv").write_text(table.getvalue())
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "sample_rate": sd.SAMPLE_RATE,
            "engines": {
                "espeak-ng": sd._version([espeak, "--version"]),
                "flite": flite and sd._version([flite, "--version"]),
            },
            "speeds": list(speeds),
            "pitches": list(pitches),
            "voices": [asdict(v) for v in voices if v.name not in skipped],
            "skipped": skipped,
            "clips": clips,
        }
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1))
        sd._move_into_place(building, target, FORMAT)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _take(
    folder: Path, scratch: Path, kind: str, count: int, voice: sd.Voice, speed: int, pitch: int
) -> list[dict[str, Any]] | str:
    """Synthesise one take's sentences; return their clips, or why it failed."""
    from scipy.io import wavfile

    stem = f"{voice.name}_s{speed}_p{pitch}"
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{stem}".encode()))
    texts = KINDS[kind](rng, count)
    try:
        waves = _say(voice, speed, pitch, texts, scratch, stem)
    except sd.SynthesisError as exc:
        return f"{stem}: {exc}"
    clips = []
    for k, (text, wave) in enumerate(zip(texts, waves)):
        snr = float(rng.uniform(*SNR_DB)) if rng.random() < NOISY_SHARES.get(kind, NOISY_SHARE) else None
        if snr is not None:
            power = float(np.mean(wave**2)) / 10 ** (snr / 10)
            wave = wave + rng.normal(0.0, np.sqrt(power), len(wave)).astype(np.float32)
        relative = f"clips/{stem}_{k}.wav"
        wavfile.write(folder / relative, sd.SAMPLE_RATE, np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16))
        clips.append(
            {
                "file": relative,
                "text": text,
                "voice": voice.name,
                "speed": speed,
                "pitch": pitch,
                "snr_db": None if snr is None else round(snr, 1),
                "seconds": round(len(wave) / sd.SAMPLE_RATE, 3),
            }
        )
    return clips


def _say(voice: sd.Voice, speed: int, pitch: int, texts: list[str], scratch: Path, stem: str) -> list[np.ndarray]:
    """The sentences at 16 kHz: espeak-ng in one call cut at the breaks; flite (or unclear breaks) one call each."""
    if voice.engine == "espeak-ng":
        ssml = "<speak>" + BREAK.join(texts) + "</speak>"
        wave, rate = sd._run_engine(voice, speed, pitch, ssml, scratch / f"{stem}.all.wav")
        parts = sd.split_words(wave, rate, len(texts), min_gap=MIN_GAP_S)
        if parts is not None:
            return [sd._finish(p, rate) for p in parts]
    waves = []
    for k, text in enumerate(texts):
        wave, rate = sd._run_engine(voice, speed, pitch, text, scratch / f"{stem}.{k}.wav")
        waves.append(sd._finish(sd._trim(wave, rate), rate))
    return waves


# ---------------------------------------------------------------------------------------------
# the built-in datasets


def sentences_folder(kind: str, progress: Progress = "auto") -> Path:
    """The synthesised folder of ``kind`` in the cache, synthesising it first when missing or outdated."""
    folder = cache_dir() / kind
    if not sd._is_current(folder, FORMAT):
        synthesise_sentences(folder, kind, progress=progress)
    return folder


def _load(kind: str, val_fraction: float, test_fraction: float, split_seed: int, n_mels: int) -> DataBundle:
    folder = sentences_folder(kind)
    manifest = sd.read_manifest(folder)
    clips = manifest["clips"]
    files = [folder / c["file"] for c in clips]
    seconds = [float(c["seconds"]) for c in clips]
    options = utterance_options(resolve_duration("auto", seconds, files), sd.SAMPLE_RATE, n_mels)
    voices = [c["voice"] for c in clips]
    names = sd.voice_split(sorted(set(voices)), val_fraction, test_fraction, split_seed)
    voice_of = np.array(voices)
    groups = [np.flatnonzero(np.isin(voice_of, group)) for group in names]
    features = sd.cached_features(folder, clips, options, tag=f"-d{options['duration']:g}")
    return bundle_from_utterances(
        files,
        [c["text"] for c in clips],
        groups,
        options,
        name=kind,
        speakers=voices,
        features=features,
        info={
            "source": SOURCE,
            "description": f"{kind}: connected speech; whole voices held out for validation and test",
            "folder": str(folder),
            "engines": manifest.get("engines", {}),
            "split": "whole voices held out",
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "voices": dict(zip(("train", "val", "test"), names)),
        },
    )


@register_dataset(
    "spoken-numbers",
    task="transcribe",
    modality="audio",
    size="about 3,800 utterances of 3-10 digits (1-5 s, 16 kHz) in ~120 synthetic voices",
    source=SOURCE,
    description="digit strings spoken as connected words in many synthetic voices; test voices are unseen",
)
def spoken_numbers(
    val_fraction: float = 0.15, test_fraction: float = 0.2, split_seed: int = 0, n_mels: int = 40
) -> DataBundle:
    """Spoken digit strings with their transcripts, split by voice.

    Args:
        val_fraction: share of voices for validation.
        test_fraction: share of voices for testing.
        split_seed: seed of the voice split.
        n_mels: mel bands of the spectrograms.

    Raises:
        DataError: the clips must be synthesised and espeak-ng is missing.
        ConfigError: an option has a bad value.
    """
    return _load("spoken-numbers", val_fraction, test_fraction, split_seed, n_mels)


@register_dataset(
    "spoken-commands",
    task="transcribe",
    modality="audio",
    size="about 3,800 voice-assistant requests over ~250 words (1-4 s, 16 kHz) in ~120 synthetic voices",
    source=SOURCE,
    description="short spoken commands from a few-hundred-word vocabulary; test voices are unseen",
)
def spoken_commands(
    val_fraction: float = 0.15, test_fraction: float = 0.2, split_seed: int = 0, n_mels: int = 40
) -> DataBundle:
    """Spoken voice-assistant requests with their transcripts, split by voice.

    Args:
        val_fraction: share of voices for validation.
        test_fraction: share of voices for testing.
        split_seed: seed of the voice split.
        n_mels: mel bands of the spectrograms.

    Raises:
        DataError: the clips must be synthesised and espeak-ng is missing.
        ConfigError: an option has a bad value.
    """
    return _load("spoken-commands", val_fraction, test_fraction, split_seed, n_mels)
