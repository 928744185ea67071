"""Load an audio folder (one sub-folder of WAV files per class) as log-mel spectrograms, computed with torch.

Pipeline, the same for training data and for a WAV given to ``glassnet predict``:

1. read the WAV with ``scipy.io.wavfile`` (PCM 8/16/24/32-bit and 32/64-bit float, any number of
   channels), mix it to mono and scale it to floats in [-1, 1];
2. resample it to ``sample_rate`` with ``scipy.signal.resample_poly`` (polyphase FIR with scipy's
   default Kaiser-window low-pass filter, up/down factors reduced by their greatest common divisor);
3. centre it in a window of ``duration`` seconds: longer clips are centre-cropped, shorter ones
   padded with zeros on both sides;
4. ``log(mel + 1e-6)`` of a power spectrogram: ``torch.stft`` with a Hann window, then a
   triangular HTK mel filterbank over 0 .. ``sample_rate / 2`` built here (no torchaudio).

Each example is a ``1 x n_mels x frames`` float32 tensor of modality ``audio``; its per-channel
mean and standard deviation, fitted on the training split only, become the model's first layer.
"""

from __future__ import annotations

import functools
import math
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.bundle import DataBundle, bundle_from_arrays
from glassnet.data.folders import unique_files
from glassnet.data.registry import register_format
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError

AUDIO_SUFFIXES = (".wav",)
LOG_FLOOR = 1e-6  # added to mel energies before the log so that silence stays finite
MAX_SAMPLE_RATE = 768_000  # the highest rate audio hardware records; beyond it a header is damaged
CHUNK = 256  # clips featurised per torch call: fast batched STFTs without holding every waveform


# ---------------------------------------------------------------------------------------------
# reading and shaping waveforms


MAX_WAV_CHUNKS = 1000  # a header walk never loops on a file of tiny chunks


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a WAV file as a mono float32 waveform in [-1, 1].

    Integer PCM is scaled by its full range (8-bit is unsigned, centred on 128; 24-bit arrives
    from scipy left-justified in int32); float files are taken as they are. Channels are averaged.

    Args:
        path: the WAV file.

    Returns:
        ``(waveform, sample_rate)``: a 1-D float32 array and the file's rate in Hz.

    Raises:
        DataError: the file is missing, is not a WAV file, is truncated or has a damaged header,
            holds no samples, or holds NaN or infinite values.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file '{path}' not found")
    _check_wav_header(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            # scipy warns about unknown chunks (harmless) and about a data chunk cut short (truncated)
            warnings.simplefilter("always", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except MemoryError as exc:  # the header declares more samples than memory holds (or the clip is that long)
        raise DataError(
            f"cannot read '{path}': its header declares more audio than fits in memory ({exc}); "
            "the file is damaged or far too long: cut it into clips"
        ) from exc
    # a damaged header breaks scipy's parser in several ways: 0 channels divide by zero, no 'fmt ' chunk
    # leaves the rate unset (UnboundLocalError)
    except (ValueError, OSError, EOFError, IndexError, struct.error, ZeroDivisionError, UnboundLocalError) as exc:
        raise DataError(
            f"cannot read '{path}' as a WAV file ({exc}). Give PCM (8/16/24/32-bit) or float WAV files; "
            "convert other formats first, e.g. ffmpeg -i clip.mp3 clip.wav"
        ) from exc
    if any("EOF prematurely" in str(w.message) for w in caught):
        raise DataError(
            f"audio file '{path}' is truncated: it holds fewer bytes than its header declares. "
            "Copy or export it again, or remove it"
        )
    if data.shape[0] == 0:
        raise DataError(f"audio file '{path}' holds no samples (0 frames); remove it or record it again")
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise DataError(
            f"audio file '{path}' declares a sample rate of {rate} Hz (expected 1 to {MAX_SAMPLE_RATE:,}); "
            "its header is damaged: export the clip again"
        )
    return _to_mono_float(data, path), int(rate)


def _check_wav_header(path: Path) -> None:
    """Refuse a RIFF/WAVE header that contradicts itself, which scipy's reader accepts: a sample
    size that does not fit the frame (it reads by ``block_align`` and ignores ``bits_per_sample``)
    or a data chunk longer than the file (it returns what there is, silently). Files that are not
    RIFF are left to scipy, which names what they are not."""
    try:
        with path.open("rb") as file:
            head = file.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return
            order = "<" if head[:4] == b"RIFF" else ">"
            size = path.stat().st_size
            for _ in range(MAX_WAV_CHUNKS):
                chunk = file.read(8)
                if len(chunk) < 8:
                    return
                name, length = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
                if name == b"fmt " and length >= 16:
                    _, channels, _, _, block_align, bits = struct.unpack(order + "HHIIHH", file.read(16))
                    length -= 16
                    if channels and block_align % channels == 0 and not 0 < bits <= 8 * block_align // channels:
                        raise DataError(
                            f"audio file '{path}' has a damaged header: {bits} bits per sample do not fit its "
                            f"{block_align}-byte frames of {channels} channel(s); export the clip again"
                        )
                elif name == b"data":
                    if length > size - file.tell():
                        raise DataError(
                            f"audio file '{path}' is truncated: its header declares {length:,} bytes of audio, "
                            f"the file holds {size - file.tell():,}. Copy or export it again, or remove it"
                        )
                    return
                file.seek(length + length % 2, os.SEEK_CUR)  # chunks are padded to an even length
    except (OSError, struct.error) as exc:
        raise DataError(f"cannot read '{path}' as a WAV file ({exc}); export the clip again") from exc


def _to_mono_float(data: np.ndarray, path: Path) -> np.ndarray:
    """Scale integer PCM to [-1, 1] and average the channels."""
    if data.dtype == np.uint8:
        wave = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        wave = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    elif np.issubdtype(data.dtype, np.floating):
        wave = data.astype(np.float32)
    else:
        raise DataError(f"audio file '{path}' holds {data.dtype} samples; expected integer PCM or float")
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if not np.isfinite(wave).all():
        raise DataError(f"audio file '{path}' contains NaN or infinite samples; fix or remove the file")
    return wave


def resample(waveform: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D waveform with ``scipy.signal.resample_poly`` (Kaiser-window polyphase filter).

    Args:
        waveform: samples at ``rate``.
        rate: the waveform's sample rate in Hz.
        target_rate: the wanted sample rate in Hz.

    Returns:
        float32 samples at ``target_rate`` (``ceil(len * target_rate / rate)`` of them).
    """
    if rate == target_rate:
        return waveform.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    divisor = math.gcd(int(rate), int(target_rate))
    up, down = target_rate // divisor, rate // divisor
    return resample_poly(waveform, up, down, window=_lowpass(up, down)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _lowpass(up: int, down: int) -> np.ndarray:
    """scipy's default anti-aliasing filter for ``resample_poly``, designed once per rate pair
    (designing it costs more than filtering a one-second clip)."""
    from scipy.signal import firwin

    half_len = 10 * max(up, down)
    return firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))


def fix_length(waveform: np.ndarray, length: int) -> np.ndarray:
    """Centre a waveform in ``length`` samples: centre-crop it, or pad zeros evenly on both sides.

    Args:
        waveform: 1-D samples.
        length: the number of samples wanted.

    Returns:
        A 1-D array of exactly ``length`` samples.
    """
    excess = len(waveform) - length
    if excess >= 0:
        start = excess // 2
        return waveform[start : start + length]
    before = -excess // 2
    return np.pad(waveform, (before, -excess - before))


# ---------------------------------------------------------------------------------------------
# log-mel spectrograms in torch


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)``.

    Args:
        hz: frequencies in Hz.

    Returns:
        The mels, as a float64 tensor.
    """
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of ``hz_to_mel``: ``700 * (10 ** (mel / 2595) - 1)``.

    Args:
        mel: HTK mels.

    Returns:
        The frequencies in Hz, as a float64 tensor.
    """
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters equally spaced on the HTK mel scale, as a matrix over FFT bins.

    Filter ``m`` rises linearly from mel point ``m`` to ``m + 1`` and falls to ``m + 2`` of
    ``n_mels + 2`` points spread evenly in mel between ``f_min`` and ``f_max``; peaks are 1 (no
    area normalisation), as torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``.

    Args:
        n_mels: number of filters.
        n_fft: FFT size; the filters cover its ``n_fft // 2 + 1`` frequency bins.
        sample_rate: sample rate in Hz.
        f_min: lowest frequency in Hz.
        f_max: highest frequency in Hz (default ``sample_rate / 2``).

    Returns:
        A float32 ``n_mels x (n_fft // 2 + 1)`` tensor.

    Raises:
        ConfigError: a value is out of range, or a filter covers no FFT bin (too many mels for
            ``n_fft``).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    _check_spectrogram_options(sample_rate, n_mels, n_fft, hop_length=1)
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ConfigError(
            f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2:g} Hz. "
            f"Received: f_min={f_min}, f_max={f_max}"
        )
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64)
    points = mel_to_hz(mels)
    lower, centre, upper = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    empty = torch.nonzero(weights.sum(dim=1) == 0).flatten().tolist()
    if empty:
        raise ConfigError(
            f"n_mels={n_mels} is too many for n_fft={n_fft} at {sample_rate} Hz: mel filter {empty[0]} covers no "
            "FFT bin. Lower n_mels or raise n_fft"
        )
    return weights.to(torch.float32)


def log_mel(
    waveform: torch.Tensor, sample_rate: int, n_mels: int = 40, n_fft: int = 512, hop_length: int = 160
) -> torch.Tensor:
    """Log-mel spectrogram ``log(mel + 1e-6)`` of one waveform or a batch, in torch only.

    ``torch.stft`` with a Hann window of ``n_fft`` samples, centred frames (zero padding at the
    ends), the power spectrum ``|X|^2`` and the ``mel_filterbank`` over 0 .. ``sample_rate / 2``.

    Args:
        waveform: ``samples`` or ``batch x samples``, floats in [-1, 1].
        sample_rate: sample rate of ``waveform`` in Hz.
        n_mels: number of mel bands.
        n_fft: FFT and window size in samples.
        hop_length: samples between frames (``1 + samples // hop_length`` frames).

    Returns:
        ``n_mels x frames`` (or ``batch x n_mels x frames``) float32 tensor.

    Raises:
        ConfigError: an option is out of range.
    """
    _check_spectrogram_options(sample_rate, n_mels, n_fft, hop_length)
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    window = torch.hann_window(n_fft, device=waveform.device)
    spectrum = torch.stft(
        waveform, n_fft, hop_length=hop_length, window=window, center=True, pad_mode="constant", return_complex=True
    )
    power = spectrum.real.square() + spectrum.imag.square()
    bank = mel_filterbank(n_mels, n_fft, sample_rate).to(waveform.device)
    return torch.log(torch.matmul(bank, power) + LOG_FLOOR)


def mel_to_magnitude(log_mels: torch.Tensor, sample_rate: int, n_fft: int = 512, iterations: int = 30) -> torch.Tensor:
    """Linear magnitude spectrogram whose log-mel spectrogram is ``log_mels``: the inverse of ``log_mel``'s filters.

    The mel energies are ``exp(log_mels) - 1e-6``; the power spectrum is the non-negative
    least-squares solution of ``filterbank @ power = mel``, found by multiplicative updates (Lee and
    Seung's rule for non-negative factors) started from the pseudo-inverse, clamped at zero.

    Args:
        log_mels: ``n_mels x frames`` (or ``batch x n_mels x frames``) log-mel spectrogram.
        sample_rate: sample rate in Hz of the audio it describes.
        n_fft: FFT size of the spectrogram.
        iterations: multiplicative updates after the pseudo-inverse.

    Returns:
        ``(n_fft // 2 + 1) x frames`` (or batched) float32 magnitudes ``|X|``.
    """
    log_mels = torch.as_tensor(log_mels, dtype=torch.float32)
    bank = mel_filterbank(log_mels.shape[-2], n_fft, sample_rate).to(log_mels.device)
    energy = (log_mels.exp() - LOG_FLOOR).clamp(min=0.0)
    power = (torch.linalg.pinv(bank) @ energy).clamp(min=1e-10)
    for _ in range(iterations):
        power = power * (bank.T @ energy) / (bank.T @ (bank @ power) + 1e-10)
    return power.sqrt()


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int = 512,
    hop_length: int = 160,
    iterations: int = 60,
    momentum: float = 0.99,
    length: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """A waveform whose STFT magnitude is close to ``magnitude``: fast Griffin-Lim in torch.

    Alternates between the spectrograms with the wanted magnitude and the spectrograms of real
    signals (an inverse STFT followed by an STFT), with Perraudin, Balazs and Sondergaard's
    momentum ("A fast Griffin-Lim algorithm", 2013): the phase estimate moves past each projection
    by ``momentum`` times the last step. The STFT is that of ``log_mel`` (Hann window of ``n_fft``,
    centred frames).

    Args:
        magnitude: ``(n_fft // 2 + 1) x frames`` (or batched) magnitudes.
        n_fft: FFT and window size.
        hop_length: samples between frames.
        iterations: projections.
        momentum: 0 gives the original algorithm; 0.99 converges in far fewer iterations.
        length: samples of the result (default ``hop_length * (frames - 1)``).
        seed: seed of the random starting phase (the same seed gives the same waveform).

    Returns:
        ``samples`` (or ``batch x samples``) float32 waveform.

    Raises:
        ConfigError: an option is out of range or the magnitude has the wrong number of bins.
    """
    magnitude = torch.as_tensor(magnitude, dtype=torch.float32)
    if magnitude.ndim not in (2, 3) or magnitude.shape[-2] != n_fft // 2 + 1:
        raise ConfigError(
            f"griffin_lim needs (n_fft // 2 + 1) x frames magnitudes, {n_fft // 2 + 1} bins for n_fft={n_fft}. "
            f"Received: shape {tuple(magnitude.shape)}"
        )
    if iterations < 1 or not 0 <= momentum < 1:
        raise ConfigError(f"need iterations >= 1 and 0 <= momentum < 1. Received: {iterations}, {momentum}")
    window = torch.hann_window(n_fft, device=magnitude.device)
    length = length or hop_length * (magnitude.shape[-1] - 1)
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=generator) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase.to(magnitude.device))

    def inverse(spectrum: torch.Tensor) -> torch.Tensor:
        return torch.istft(spectrum, n_fft, hop_length=hop_length, window=window, center=True, length=length)

    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = torch.stft(
            inverse(magnitude * angles), n_fft, hop_length=hop_length, window=window, center=True,
            pad_mode="constant", return_complex=True,
        )  # fmt: skip
        angles = rebuilt + momentum * (rebuilt - previous)
        previous = rebuilt
        angles = angles / angles.abs().clamp(min=1e-16)
    return inverse(magnitude * angles)


def _check_spectrogram_options(sample_rate: int, n_mels: int, n_fft: int, hop_length: int) -> None:
    for name, value, least in (("sample_rate", sample_rate, 1), ("n_mels", n_mels, 1), ("n_fft", n_fft, 2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{name} must be an integer >= {least}. Received: {name}={value!r}")
    if not isinstance(hop_length, int) or isinstance(hop_length, bool) or hop_length < 1:
        raise ConfigError(f"hop_length must be an integer >= 1. Received: hop_length={hop_length!r}")


# ---------------------------------------------------------------------------------------------
# features of files


def audio_options(
    sample_rate: int = 16000, duration: float = 1.0, n_mels: int = 40, n_fft: int = 512, hop_length: int = 160
) -> dict[str, Any]:
    """Check the feature options and return them as the ``DataSpec.extra["audio"]`` mapping.

    Args:
        sample_rate: rate every clip is resampled to, in Hz.
        duration: clip length in seconds after cropping or padding.
        n_mels: mel bands.
        n_fft: FFT and Hann window size in samples.
        hop_length: samples between spectrogram frames.

    Returns:
        The options plus ``samples`` (clip length in samples) and ``frames`` (spectrogram width).

    Raises:
        ConfigError: a value is out of range.
    """
    _check_spectrogram_options(sample_rate, n_mels, n_fft, hop_length)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration <= 3600:
        raise ConfigError(f"duration must be a number of seconds in (0, 3600]. Received: duration={duration!r}")
    samples = round(duration * sample_rate)
    if samples < 1:
        raise ConfigError(f"duration={duration} s is shorter than one sample at {sample_rate} Hz")
    mel_filterbank(n_mels, n_fft, sample_rate)  # fail before reading files when the filters are impossible
    return {
        "sample_rate": sample_rate,
        "duration": float(duration),
        "n_mels": n_mels,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "samples": samples,
        "frames": 1 + samples // hop_length,
        "log_floor": LOG_FLOOR,
    }


def files_features(files: Sequence[str | os.PathLike[str]], options: dict[str, Any]) -> np.ndarray:
    """Log-mel features of WAV files, computed in chunks of batched STFTs.

    Args:
        files: WAV files.
        options: the mapping returned by ``audio_options``.

    Returns:
        ``N x 1 x n_mels x frames`` float32 array.

    Raises:
        DataError: a file cannot be read (the message names it).
    """
    parts = [
        waveforms_features([_fixed_waveform(path, options) for path in files[start : start + CHUNK]], options)
        for start in range(0, len(files), CHUNK)
    ]
    return np.concatenate(parts) if parts else waveforms_features([], options)


def waveforms_features(waves: Sequence[np.ndarray], options: dict[str, Any]) -> np.ndarray:
    """Log-mel features of waveforms already at ``options["sample_rate"]``, each centred in (or cropped to)
    ``options["samples"]`` as a file's would be, in chunks of batched STFTs.

    Returns:
        ``N x 1 x n_mels x frames`` float32 array.
    """
    parts = []
    for start in range(0, len(waves), CHUNK):
        batch = torch.from_numpy(np.stack([fix_length(w, options["samples"]) for w in waves[start : start + CHUNK]]))
        mels = log_mel(batch, options["sample_rate"], options["n_mels"], options["n_fft"], options["hop_length"])
        parts.append(mels[:, None].numpy())
    if not parts:
        return np.zeros((0, 1, options["n_mels"], options["frames"]), dtype=np.float32)
    return np.concatenate(parts)


def audio_features(path: str | os.PathLike[str], spec: DataSpec) -> np.ndarray:
    """Features of one WAV file with the options a saved run was trained with (for prediction).

    Args:
        path: a WAV file.
        spec: the run's ``DataSpec`` (its ``extra["audio"]`` holds the feature options).

    Returns:
        ``1 x n_mels x frames`` float32 array, shaped as ``spec.input_shape``.

    Raises:
        DataError: the model does not take audio, or the file cannot be read.
    """
    options = spec.extra.get("audio")
    if spec.modality != "audio" or not isinstance(options, dict):
        raise DataError(f"'{path}': WAV input needs an audio model; this model takes {spec.modality} data")
    keys = ("sample_rate", "duration", "n_mels", "n_fft", "hop_length")
    checked = audio_options(**{k: options[k] for k in keys}) | {"strict": bool(options.get("strict"))}
    features = files_features([path], checked)[0]
    if tuple(features.shape) != tuple(spec.input_shape):
        raise DataError(f"'{path}' gives features of shape {features.shape}; the model takes {spec.input_shape}")
    return features


def _fixed_waveform(path: str | os.PathLike[str], options: dict[str, Any]) -> np.ndarray:
    wave, rate = read_wav(path)
    wave = resample(wave, rate, options["sample_rate"])
    if options.get("strict") and len(wave) > options["samples"] + options["hop_length"]:
        # a transcription model: cropping would drop words the transcript should hold
        raise DataError(
            f"'{path}' lasts {len(wave) / options['sample_rate']:.2f} s; this model takes clips of at most "
            f"{options['duration']:g} s: cut it into shorter utterances"
        )
    return fix_length(wave, options["samples"])


# ---------------------------------------------------------------------------------------------
# the folder format


def is_audio_folder(path: Path) -> bool:
    """Whether ``path`` is a directory with a non-hidden sub-folder that directly holds a ``.wav`` file.

    Args:
        path: a user path.

    Returns:
        True for an audio folder.
    """
    if not path.is_dir() or (path / "transcripts.csv").is_file():  # WAV files with transcripts: speech recognition
        return False
    try:
        return any(_wav_files(folder) for folder in _class_folders(path))
    except OSError:  # unreadable folders are not ours to claim; the loader reports them
        return False


def scan_audio_folder(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """Class names, WAV files and labels of an audio folder (classes sorted, files sorted).

    Args:
        root: the audio folder.

    Returns:
        ``(class_names, files, labels)``.

    Raises:
        DataError: the folder is missing or not a folder, holds no class folders of WAV files,
            has a class folder without WAV files, or has a single class.
    """
    layout = f"one sub-folder of .wav files per class ({root}/<class>/<clip>.wav)"
    if not root.exists():
        raise DataError(f"audio folder '{root}' not found; give a folder with {layout}")
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder; an audio dataset is a folder with {layout}")
    folders = _class_folders(root)
    # each real file once: a class folder linked into another must not give one clip two labels
    listing = unique_files(folders, _is_wav_name, recursive=False, roots=[root])
    found = {folder.name: [Path(f) for f in files] for folder, files in zip(folders, listing.files)}
    if not any(found.values()):
        loose = _wav_files(root)
        hint = f" ({len(loose)} .wav files lie directly in it: move them into class sub-folders)" if loose else ""
        raise DataError(f"audio folder '{root}' holds no audio{hint}; expected {layout}")
    for (name, files), skipped in zip(found.items(), listing.skipped):
        if skipped and not files:
            raise DataError(
                f"class folder '{root / name}' holds no clips of its own: its {skipped} .wav file(s) are the same "
                "files as clips of another class folder (links or hard links); give it its own clips or remove the "
                "links"
            )
        if not files:
            raise DataError(f"class folder '{root / name}' holds no .wav files; add clips or remove the folder")
    listing.warn(root)
    if len(found) < 2:
        only = next(iter(found))
        raise DataError(
            f"audio folder '{root}' has a single class ('{only}'); classification needs at least two class sub-folders"
        )
    names = sorted(found)
    files = [f for name in names for f in found[name]]
    labels = np.concatenate([np.full(len(found[name]), i) for i, name in enumerate(names)])
    return names, files, labels


@register_format(
    "audio",
    detect=is_audio_folder,
    description="audio folder: one sub-folder of WAV files per class",
    example="glassnet train --data sounds/ --model cnn data.duration=2.0",
)
def load_audio_folder(
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    duration: float = 1.0,
    n_mels: int = 40,
    n_fft: int = 512,
    hop_length: int = 160,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> DataBundle:
    """Load a folder of class sub-folders of WAV files as log-mel spectrograms for classification.

    Classes are the sub-folder names, sorted; hidden files and folders are ignored. Every clip is
    resampled to ``sample_rate``, centre-cropped or zero-padded to ``duration`` and turned into a
    ``1 x n_mels x frames`` log-mel spectrogram; the split is stratified and seeded.

    Args:
        path: the audio folder.
        sample_rate: rate every clip is resampled to, in Hz.
        duration: clip length in seconds (longer clips are centre-cropped, shorter ones padded).
        n_mels: mel bands of the spectrogram.
        n_fft: FFT and Hann window size in samples.
        hop_length: samples between frames (``frames = 1 + sample_rate * duration // hop_length``).
        val_fraction: share of the clips for validation.
        test_fraction: share of the clips for the test split.
        split_seed: seed of the stratified split.

    Returns:
        A ``DataBundle`` with modality ``audio``; ``spec.extra["audio"]`` holds every feature option
        so that ``audio_features`` turns a new WAV into the same features.

    Raises:
        DataError: the folder is missing, empty or has one class, or a file is not readable audio.
        ConfigError: an option has a bad value.
    """
    root = Path(path)
    options = audio_options(sample_rate, duration, n_mels, n_fft, hop_length)
    names, files, labels = scan_audio_folder(root)
    features = files_features(files, options)
    return bundle_from_arrays(
        features,
        labels,
        name=root.resolve().name or str(root),
        modality="audio",
        task="classify",
        class_names=tuple(names),
        extra={"audio": options},
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        info={"source": str(root), "description": f"audio folder, {len(files)} WAV files", "files": len(files)},
    )


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_wav_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(AUDIO_SUFFIXES)


def _wav_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_wav_name(p.name) and p.is_file())
