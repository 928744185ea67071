"""The ``spoken-digits`` built-in: the words "zero" .. "nine" synthesised in many voices, split by voice.

On first use the clips are synthesised with espeak-ng (every voice variant it ships, each paired
with one of several English accents or with another language reading the English words) and, when
it is installed, flite (its voices), at several speeds and pitches, into
``cache_dir() / "spoken-digits"``: one sub-folder of 16-kHz WAV files per digit (so the folder also
loads with the ``audio`` format) and a ``manifest.json`` naming the voice, speed and pitch of
every clip. The folder is built in a temporary folder and renamed into place, so it is either
complete or absent.

Splits hold out whole voices: no test (or validation) voice is heard in training, so the test
score measures generalisation to unseen speakers. Features are those of the ``audio`` format
(1 s at 16 kHz, log-mel spectrograms).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.data.audio import audio_options, files_features, read_wav, resample
from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.locate import cache_dir
from glassnet.data.registry import register_dataset
from glassnet.errors import ConfigError, DataError
from glassnet.progress import Progress, progress_bar

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ENGLISH_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
# other languages reading the English spelling give foreign accents
FOREIGN_ACCENTS = ("de", "nl", "fr-fr", "es", "it", "pt-br", "sv", "da", "pl", "fi", "hu", "af")
SPEEDS = (140, 200)  # espeak-ng words per minute (175 is its default)
PITCHES = (35, 65)  # espeak-ng pitch, 0..99 (50 is its default)
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")  # awb_time only speaks clock times
SAMPLE_RATE = 16000
FORMAT = 1  # bump when the layout or the synthesis changes, so old caches are rebuilt
FOLDER = "spoken-digits"
SOURCE = "synthesised on first use with espeak-ng (GPL-3) and flite (BSD-like) into the glassnet cache"
INSTALL_HINT = (
    "{name} is synthesised with espeak-ng, which is not installed (no 'espeak-ng' on PATH). "
    "Install it: 'sudo apt-get install espeak-ng' on Debian/Ubuntu, 'brew install espeak-ng' on macOS, "
    "'sudo dnf install espeak-ng' on Fedora; flite ('apt-get install flite') adds more voices"
)
_BREAK = '<break time="500ms"/>'
_MIN_GAP_S = 0.15  # silences this long separate words; shorter ones are stop closures inside a word
_QUIET = 1e-3  # espeak-ng writes exact zeros in breaks; this also absorbs dither-level noise
_MARGIN_S = 0.01  # silence kept around each trimmed word


class SynthesisError(RuntimeError):
    """One voice could not say the digits; that voice is skipped and recorded in the manifest."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        name: unique, file-safe name (``espeak-en-gb+f3``, ``flite-slt``).
        engine: ``espeak-ng`` or ``flite``.
        voice: the engine's voice argument (``-v en-gb+f3`` or ``-voice slt``).
    """

    name: str
    engine: str
    voice: str


# ---------------------------------------------------------------------------------------------
# voices


def require_espeak(name: str = FOLDER) -> str:
    """Path of the espeak-ng executable.

    Args:
        name: the dataset that needs it, for the message.

    Raises:
        DataError: espeak-ng is not installed; the message says how to install it.
    """
    found = shutil.which("espeak-ng")
    if found is None:
        raise DataError(INSTALL_HINT.format(name=name))
    return found


def plan_voices(espeak: str, flite: str | None = None) -> list[Voice]:
    """Every voice to synthesise: each accent's default voice, each espeak-ng variant once, flite's voices.

    Variants (sorted by name) are paired with accents in turn, so each variant is one speaker
    with one accent, and holding out a voice holds out its variant.

    Args:
        espeak: the espeak-ng executable.
        flite: the flite executable, or None.

    Returns:
        The voices, in a stable order.
    """
    languages = {line.split()[1] for line in _lines([espeak, "--voices"])[1:] if len(line.split()) > 1}
    accents = [a for a in ENGLISH_ACCENTS + FOREIGN_ACCENTS if a in languages] or ["en"]
    voices = [Voice(f"espeak-{a}", "espeak-ng", a) for a in accents]
    for i, variant in enumerate(_espeak_variants(espeak)):
        accent = accents[i % len(accents)]
        voices.append(Voice(f"espeak-{accent}+{variant}", "espeak-ng", f"{accent}+{variant}"))
    if flite:
        text = " ".join(_lines([flite, "-lv"]))
        voices += [Voice(f"flite-{v}", "flite", v) for v in FLITE_VOICES if f" {v} " in f" {text} "]
    return voices


def _espeak_variants(espeak: str) -> list[str]:
    """Variant file names from ``espeak-ng --voices=variant`` (``!v/f3`` -> ``f3``)."""
    variants = set()
    for line in _lines([espeak, "--voices=variant"])[1:]:
        fields = line.split(None, 4)
        if len(fields) == 5 and fields[4].startswith("!v/"):
            name = fields[4][3:].split("  ")[0].strip()
            if name and name.replace("_", "").replace("-", "").isalnum():  # skips names with spaces
                variants.add(name)
    return sorted(variants, key=str.lower)


def _lines(command: list[str]) -> list[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataError(f"'{' '.join(command)}' failed: {exc}") from exc
    return [line for line in done.stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# synthesis


def synthesise_spoken_digits(
    target: str | os.PathLike[str],
    voices: Sequence[Voice] | None = None,
    speeds: Sequence[int] = SPEEDS,
    pitches: Sequence[int] = PITCHES,
    workers: int | None = None,
    progress: Progress = "auto",
) -> Path:
    """Synthesise the ten digits in every voice, speed and pitch into ``target``, atomically.

    Clips are written into a temporary folder beside ``target`` (``<digit>/<voice>_s<speed>_p<pitch>.wav``,
    16 kHz mono 16-bit, trimmed of silence) with ``manifest.json`` last, then the folder is
    renamed to ``target``. A voice that fails to say any digit is skipped and listed in the
    manifest under ``skipped``.

    Args:
        target: the folder to create; one left by an older synthesis format is replaced.
        voices: the speakers (default: ``plan_voices`` over the installed engines).
        speeds: speaking rates in words per minute.
        pitches: espeak-ng pitches (0..99); flite maps them to a mean F0 of ``80 + 2 * pitch`` Hz.
        workers: synthesis processes run at once (default: up to 4, one per CPU core).
        progress: a bar over the (voice, speed, pitch) takes with elapsed time and time left: True on
            stderr, a text stream, False or None for none; ``"auto"`` (default) draws it when stderr is a
            terminal (synthesis takes minutes, once per cache).

    Returns:
        ``target``.

    Raises:
        DataError: espeak-ng is missing, or no voice could be synthesised.
    """
    espeak = require_espeak()
    flite = shutil.which("flite")
    voices = list(voices) if voices is not None else plan_voices(espeak, flite)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        clips, skipped = _synthesise_all(building, voices, list(speeds), list(pitches), workers, progress)
        if not clips:
            raise DataError(f"no voice could be synthesised into '{target}': {skipped}")
        manifest = {
            "format": FORMAT,
            "sample_rate": SAMPLE_RATE,
            "digits": list(DIGITS),
            "engines": {
                "espeak-ng": _version([espeak, "--version"]),
                "flite": flite and _version([flite, "--version"]),
            },
            "speeds": list(speeds),
            "pitches": list(pitches),
            "voices": [asdict(v) for v in voices if v.name not in skipped],
            "skipped": skipped,
            "clips": clips,
        }
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _move_into_place(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _synthesise_all(
    folder: Path,
    voices: list[Voice],
    speeds: list[int],
    pitches: list[int],
    workers: int | None,
    progress: Progress = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run every (voice, speed, pitch) take in a bounded pool; keep the voices whose takes all worked."""
    for word in DIGITS:
        (folder / word).mkdir()
    scratch = folder / ".scratch"
    scratch.mkdir()
    takes = [(v, s, p) for v in voices for s in speeds for p in pitches]
    workers = workers or min(4, os.cpu_count() or 1)
    # threads suffice: the work happens in the engines' processes
    bar = progress_bar(len(takes), "synthesise spoken-digits", progress, unit="takes")
    with bar, ThreadPoolExecutor(max_workers=workers) as pool:
        results = []
        for result in pool.map(lambda take: _take(folder, scratch, *take), takes):
            results.append(result)
            bar.update(1)
    shutil.rmtree(scratch)
    skipped = {v.name: r for (v, _, _), r in zip(takes, results) if isinstance(r, str)}
    clips = [c for (v, _, _), r in zip(takes, results) if v.name not in skipped for c in r]
    for name in skipped:  # a voice with a failed take leaves no clips, so every voice says every digit
        for path in folder.glob(f"*/{name}_s*_p*.wav"):
            path.unlink()
    return clips, skipped


def _take(folder: Path, scratch: Path, voice: Voice, speed: int, pitch: int) -> list[dict[str, Any]] | str:
    """Synthesise the ten digits for one voice, speed and pitch; return their clips, or why it failed."""
    from scipy.io import wavfile

    stem = f"{voice.name}_s{speed}_p{pitch}"
    try:
        words = _say_digits(voice, speed, pitch, scratch, stem)
    except SynthesisError as exc:
        return f"{stem}: {exc}"
    clips = []
    for digit, (word, wave) in enumerate(zip(DIGITS, words)):
        relative = f"{word}/{stem}.wav"
        wavfile.write(folder / relative, SAMPLE_RATE, np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16))
        clips.append({"file": relative, "digit": digit, "voice": voice.name, "speed": speed, "pitch": pitch})
    return clips


def _say_digits(voice: Voice, speed: int, pitch: int, scratch: Path, stem: str) -> list[np.ndarray]:
    """The ten words at 16 kHz: espeak-ng says them in one call and they are cut at the pauses;
    flite, or a take whose pauses are unclear, says one word per call."""
    if voice.engine == "espeak-ng":
        text = "<speak>" + _BREAK.join(DIGITS) + "</speak>"
        wave, rate = _run_engine(voice, speed, pitch, text, scratch / f"{stem}.all.wav")
        words = split_words(wave, rate, len(DIGITS))
        if words is not None:
            return [_finish(w, rate) for w in words]
    words = []
    for word in DIGITS:
        wave, rate = _run_engine(voice, speed, pitch, word, scratch / f"{stem}.{word}.wav")
        words.append(_finish(_trim(wave, rate), rate))
    return words


def _run_engine(voice: Voice, speed: int, pitch: int, text: str, out: Path) -> tuple[np.ndarray, int]:
    if voice.engine == "espeak-ng":
        command = ["espeak-ng", "-m", "-v", voice.voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text]
    else:
        stretch, f0 = 175 / speed, 80 + 2 * pitch
        command = ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={stretch:.3f}"]
        command += ["--setf", f"int_f0_target_mean={f0}", "-t", text, "-o", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise SynthesisError(f"{voice.engine} exited with status {done.returncode}: {done.stderr.strip()[:300]}")
        wave, rate = read_wav(out)
    except (OSError, subprocess.SubprocessError, DataError) as exc:
        raise SynthesisError(str(exc)) from exc
    finally:
        out.unlink(missing_ok=True)
    if np.abs(wave).max() <= _QUIET:
        raise SynthesisError(f"{voice.engine} produced silence for {text!r}")
    return wave, rate


def split_words(wave: np.ndarray, rate: int, count: int, min_gap: float = _MIN_GAP_S) -> list[np.ndarray] | None:
    """Cut a recording of ``count`` words at its pauses (quiet runs of at least ``min_gap`` seconds).

    Args:
        wave: mono samples in [-1, 1].
        rate: sample rate in Hz.
        count: the number of words (or utterances) said.
        min_gap: the shortest silence that separates two of them, in seconds (0.15 by default).

    Returns:
        ``count`` trimmed words, or None when the pauses do not give exactly ``count`` words.
    """
    loud = np.flatnonzero(np.abs(wave) > _QUIET)
    if len(loud) == 0:
        return None
    gaps = np.flatnonzero(np.diff(loud) >= min_gap * rate)
    if len(gaps) != count - 1:
        return None
    starts = np.concatenate([[loud[0]], loud[gaps + 1]])
    ends = np.concatenate([loud[gaps] + 1, [loud[-1] + 1]])
    margin = int(_MARGIN_S * rate)
    return [wave[max(0, a - margin) : b + margin] for a, b in zip(starts, ends)]


def _trim(wave: np.ndarray, rate: int) -> np.ndarray:
    loud = np.flatnonzero(np.abs(wave) > _QUIET)
    margin = int(_MARGIN_S * rate)
    return wave[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def _finish(wave: np.ndarray, rate: int) -> np.ndarray:
    return resample(wave, rate, SAMPLE_RATE)


def _version(command: list[str]) -> str:
    """The engine's version line (flite prints it under its copyright and exits with status 1)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return next((line for line in lines if "version" in line.lower()), lines[0] if lines else "unknown")


def _move_into_place(building: Path, target: Path, version: int = FORMAT) -> None:
    """Rename the finished folder to ``target``; a folder that another process finished first wins.

    Args:
        building: the finished folder.
        target: where it goes; a folder there of another synthesis ``version`` is replaced.
        version: the manifest ``format`` a current folder has.
    """
    old = None
    if target.exists() and not _is_current(target, version):
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(building, target)
    except OSError:
        if not _is_current(target, version):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the built-in dataset


def spoken_digits_folder(progress: Progress = "auto") -> Path:
    """The synthesised folder in the cache, synthesising it first when it is missing or outdated.

    Args:
        progress: the synthesis's progress bar (see ``synthesise_spoken_digits``).

    Returns:
        ``cache_dir() / "spoken-digits"``, complete with its manifest.

    Raises:
        DataError: it must be synthesised and espeak-ng is missing.
    """
    folder = cache_dir() / FOLDER
    if not _is_current(folder):
        synthesise_spoken_digits(folder, progress=progress)
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a synthesised folder, checked against the clips on disk.

    Args:
        folder: the synthesised folder.

    Returns:
        The manifest: engines, speeds, pitches, voices, skipped voices and one entry per clip.

    Raises:
        DataError: the manifest is missing or unreadable, or a clip it lists is missing.
    """
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        clips = manifest["clips"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read '{path}' ({exc}); delete '{folder}' to synthesise it again") from exc
    missing = [c["file"] for c in clips if not (folder / c["file"]).is_file()]
    if missing:
        raise DataError(
            f"'{folder / missing[0]}' listed in '{path}' is missing; delete '{folder}' to synthesise it again"
        )
    return manifest


def voice_split(
    voices: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Split voice names into disjoint train, validation and test voices (seeded shuffle).

    Args:
        voices: the voice names.
        val_fraction: share of voices for validation (at least one when > 0).
        test_fraction: share of voices for testing (at least one).
        seed: seed of the shuffle.

    Returns:
        Sorted ``(train, val, test)`` voice lists.

    Raises:
        ConfigError: the fractions are out of range or leave no training voice.
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "need 0 < test_fraction < 1, 0 <= val_fraction < 1 and val_fraction + test_fraction < 1. "
            f"Received: val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    order = list(np.random.default_rng(seed).permutation(sorted(voices)))
    n_test = max(1, round(test_fraction * len(order)))
    n_val = max(1, round(val_fraction * len(order))) if val_fraction > 0 else 0
    if n_test + n_val >= len(order):
        raise ConfigError(
            f"{len(order)} voices cannot give {n_test} test and {n_val} validation voices and keep one for training; "
            "lower test_fraction or val_fraction"
        )
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return sorted(map(str, train)), sorted(map(str, val)), sorted(map(str, test))


@register_dataset(
    "spoken-digits",
    task="classify",
    modality="audio",
    size="about 5,000 clips of the words zero..nine (1 s, 16 kHz) in ~120 synthetic voices, 10 classes",
    source=SOURCE,
    description="spoken digits in many synthetic voices, accents, speeds and pitches; test voices are unseen",
)
def spoken_digits(
    val_fraction: float = 0.15, test_fraction: float = 0.2, split_seed: int = 0, n_mels: int = 40
) -> DataBundle:
    """Spoken digits as ``1 x n_mels x 101`` log-mel spectrograms, split by voice.

    Args:
        val_fraction: share of voices for validation.
        test_fraction: share of voices for testing.
        split_seed: seed of the voice split.
        n_mels: mel bands of the spectrograms.

    Returns:
        A ``DataBundle`` whose ``info["voices"]`` names the voices of each split.

    Raises:
        DataError: the clips must be synthesised and espeak-ng is missing.
        ConfigError: an option has a bad value.
    """
    options = audio_options(sample_rate=SAMPLE_RATE, duration=1.0, n_mels=n_mels)
    folder = spoken_digits_folder()
    manifest = read_manifest(folder)
    clips = manifest["clips"]
    names = voice_split(sorted({c["voice"] for c in clips}), val_fraction, test_fraction, split_seed)
    features = cached_features(folder, clips, options)
    labels = np.array([c["digit"] for c in clips], dtype=np.int64)
    voice_of = np.array([c["voice"] for c in clips])
    splits = [np.isin(voice_of, group) for group in names]
    return bundle_from_splits(
        *[(features[mask], labels[mask]) for mask in splits],
        name="spoken-digits",
        modality="audio",
        task="classify",
        class_names=DIGITS,
        extra={"audio": options},
        info={
            "source": SOURCE,
            "description": "spoken digits; whole voices held out for validation and test",
            "folder": str(folder),
            "engines": manifest.get("engines", {}),
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "voices": dict(zip(("train", "val", "test"), names)),
        },
    )


def cached_features(folder: Path, clips: list[dict[str, Any]], options: dict[str, Any], tag: str = "") -> np.ndarray:
    """Features of the clips, computed once per ``n_mels`` and kept beside them in ``features-n<M>.npy``.

    The clips never change after synthesis, so their features are computed with ``files_features``
    (the ``audio`` format's code) on first load and read back afterwards.

    Args:
        folder: the synthesised folder.
        clips: the manifest's clips.
        options: the ``audio_options`` mapping.
        tag: added to the file name (``-d3.5`` for a clip length), for features that differ in more than ``n_mels``.

    Returns:
        ``N x 1 x n_mels x frames`` float32 array, in the order of ``clips``.
    """
    path = folder / f"features-n{options['n_mels']}{tag}.npy"
    expected = (len(clips), 1, options["n_mels"], options["frames"])
    try:
        features = np.load(path, allow_pickle=False)
        if features.shape == expected and features.dtype == np.float32:
            return features
    except (OSError, ValueError):
        pass  # absent or damaged: compute it again
    features = files_features([folder / c["file"] for c in clips], options)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(partial, "wb") as stream:
            np.save(stream, features, allow_pickle=False)
        os.replace(partial, path)
    except OSError:  # a read-only cache still loads; it just computes the features each time
        partial.unlink(missing_ok=True)
    return features


def _is_current(folder: Path, version: int = FORMAT) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text()).get("format") == version
    except (OSError, ValueError, AttributeError):
        return False
