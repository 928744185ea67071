"""The ``synthesize`` task (text to speech): data from a recogniser's CTC alignments, loss, free-running evaluation.

Data. A synthesis model learns one voice from clips with transcripts (any ``transcribe`` dataset:
the ``one-voice`` built-in, a ``transcripts`` folder). It needs to know which frames say which
character, and a CTC recogniser knows: ``synthesis_bundle`` runs a ``transcribe`` run (the
*aligner*) over every clip and finds, by Viterbi forced alignment, the most likely path of the
transcript's characters through the recogniser's per-frame symbol probabilities. A character owns
the frames the path spends on it, and the blank frames between two characters are shared at the
midpoint; the blank frames before the first character belong to a start symbol ``^``, those after
the last to an end symbol ``$`` (the silences of the clip). These durations, moved from the
recogniser's output rate to the 10 ms frames of the target spectrogram, are what the model's
duration predictor learns and what its length regulator uses in training.

Inputs are ``N x 2 x L`` integers (symbol ids of ``^ text $``, padded with 0; durations in frames),
targets ``N x (n_mels + 1) x W`` floats: the log-mel spectrogram (``n_mels`` bands, 80 by default,
n_fft 512, hop 160 at 16 kHz; the log floor past the clip's end) and, in the last channel, the
symbols' durations (``-1`` past the last symbol). See ``glassnet.models.tts`` for the outputs.

Loss and metrics. ``loss`` = ``mel_l1`` (mean absolute error of the log-mel bands over the clip's
frames, with the true durations) + ``duration_mse`` (squared error of ``log(1 + frames)`` per
symbol). ``duration_mae`` is the mean error of the predicted durations in frames. Validation
uses the true durations, so it measures how well the spectrogram is drawn; the free-running test
(predicted durations, Griffin-Lim vocoder) comes after training, in ``details``:

- ``mcd_dtw``: mel cepstral distortion (dB; cepstra 1-12 of the log-amplitude mel bands)
  between each synthesised sentence and its recording, after dynamic time warping;
- intelligibility: the judge recogniser (the aligner unless ``judge=RUN`` is given) transcribes the
  synthesised test sentences: CER and WER against the text, beside its rates on the recordings
  themselves and on the recordings passed through the vocoder (how much the vocoder alone costs);
- the digit strings among the test sentences get their own rates.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.data.spec import DataSpec
from glassnet.data.transcripts import BLANK_ID, normalise_transcript, utterances_of
from glassnet.errors import ConfigError, DataError, GlassnetError
from glassnet.train.tasks import Task, TaskContext, register_task

PAD, START, END = "<pad>", "^", "$"
N_MELS = 80
N_FFT = 512
HOP = 160  # 10 ms at 16 kHz: the frame rate of glassnet's recognisers
SAMPLE_RATE = 16000
LOG_FLOOR = math.log(1e-6)
GRIFFIN_LIM_ITERATIONS = 60
EVALUATED = 120  # test sentences synthesised and judged after training (the first ones, in order)
KEPT = 4  # of those, the sentences whose synthesised and recorded audio the run keeps for the report
CEPSTRA = 13
SPEAKER_VAL, SPEAKER_TEST = 0.1, 0.15  # the sentence split of one speaker chosen from many
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ALIGNER_HINT = (
    "train a recogniser on the same clips first (glassnet train --data DATA --model speech_ctc --out runs/asr) "
    "and pass it as data.aligner=runs/asr"
)


# ---------------------------------------------------------------------------------------------
# text


def synthesis_symbols(texts: Sequence[str]) -> tuple[str, ...]:
    """The input symbols of a synthesis model: padding, start, end, space, then every other character, sorted."""
    return (PAD, START, END, " ", *sorted({c for t in texts for c in t} - {" "}))


def spoken_text(text: str) -> str:
    """Text as the voice reads it: each digit as its word (``call 555 0123`` -> ``call five five five zero one
    two three``), then normalised as transcripts are (lower case, punctuation out, single spaces)."""
    return normalise_transcript(re.sub(r"[0-9]", lambda m: f" {DIGIT_WORDS[int(m.group())]} ", text))


def encode_text(text: str, symbols: Sequence[str]) -> list[int]:
    """``^ text $`` as symbol ids, the text read with ``spoken_text``.

    Raises:
        ConfigError: the text is empty, or holds characters the voice never said in training.
    """
    spoken = spoken_text(text)
    if not spoken:
        raise ConfigError(f"nothing to say in {text!r}: give words or digits")
    index = {s: i for i, s in enumerate(symbols)}
    unknown = sorted({c for c in spoken if c not in index})
    if unknown:
        known = "".join(s for s in symbols[4:])
        raise ConfigError(
            f"the voice was never trained on {', '.join(map(repr, unknown))} (in {spoken!r}); it knows the "
            f"characters {known!r} and the space. Rephrase the text with those"
        )
    return [index[START], *(index[c] for c in spoken), index[END]]


# ---------------------------------------------------------------------------------------------
# alignment


def forced_alignment(log_probs: np.ndarray, target: Sequence[int]) -> np.ndarray:
    """The most likely CTC path of ``target`` through ``T x V`` log-probabilities (Viterbi).

    Args:
        log_probs: per-frame log-probabilities over the symbols, blank at id 0.
        target: the transcript's symbol ids (no blanks).

    Returns:
        For each frame, the position in ``target`` of the symbol the path emits there, or -1 for a blank.

    Raises:
        ValueError: the transcript needs more frames than there are (with the blanks between repeats).
    """
    frames = len(log_probs)
    states = [BLANK_ID]
    for symbol in target:
        states += [int(symbol), BLANK_ID]
    states_arr = np.array(states)
    n = len(states)
    emit = log_probs[:, states_arr]  # T x S
    skip = np.zeros(n, dtype=bool)  # a symbol state may be entered from two states back (past a blank)
    skip[3::2] = states_arr[3::2] != states_arr[1:-2:2]
    score = np.full(n, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((frames, n), dtype=np.int8)  # 0 stay, 1 from the previous state, 2 from two back
    for t in range(1, frames):
        stay, step = score, np.concatenate([[-np.inf], score[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        choices = np.stack([stay, step, jump])
        back[t] = choices.argmax(axis=0)
        score = choices.max(axis=0) + emit[t]
    ends = [n - 1, n - 2] if n > 1 else [0]
    state = max(ends, key=lambda s: score[s])
    if not np.isfinite(score[state]):
        raise ValueError(f"{len(target)} symbols cannot be aligned to {frames} frames")
    path = np.zeros(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return np.where(path % 2 == 1, (path - 1) // 2, -1)


def symbol_owners(positions: np.ndarray, count: int) -> np.ndarray:
    """The ``^ text $`` symbol (0 .. count + 1) that owns each aligned frame.

    A frame on character ``j`` belongs to symbol ``j + 1``; blank frames before the first character
    to ``^`` (0), after the last to ``$`` (``count + 1``), and between two characters half to each.
    """
    owners = np.where(positions >= 0, positions + 1, -1)
    emitted = np.flatnonzero(positions >= 0)
    if len(emitted) == 0:
        return np.zeros(len(positions), dtype=np.int64)
    owners[: emitted[0]] = 0
    owners[emitted[-1] + 1 :] = count + 1
    for a, b in zip(emitted[:-1], emitted[1:]):
        if b > a + 1:
            middle = (a + 1 + b) // 2
            owners[a + 1 : middle] = owners[a]
            owners[middle:b] = owners[b]
    return owners


def durations_from_owners(owners: np.ndarray, count: int, frame_times: np.ndarray, frames: int) -> np.ndarray:
    """Frames of the target spectrogram for each of ``count + 2`` symbols.

    Args:
        owners: the symbol of each aligner frame (``symbol_owners``), non-decreasing.
        count: characters of the text (symbols ``^`` and ``$`` come on top).
        frame_times: where each aligner frame ends, in frames of the target spectrogram.
        frames: frames of the target spectrogram; the durations sum to it.
    """
    ends = np.zeros(count + 2)
    last = 0.0
    for s in range(count + 2):
        held = np.flatnonzero(owners == s)
        last = frame_times[held[-1]] if len(held) else last
        ends[s] = last
    ends = np.clip(np.round(np.maximum.accumulate(ends)), 0, frames)
    ends[-1] = frames
    return np.diff(np.concatenate([[0], ends])).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# the data


def synthesis_bundle(
    bundle: DataBundle,
    aligner: Any = None,
    speaker: str | None = None,
    mel_bands: int = N_MELS,
    judge: Any = None,
) -> DataBundle:
    """The ``synthesize`` bundle of a ``transcribe`` bundle: symbols and durations in, log-mel spectrograms out.

    Args:
        bundle: speech with transcripts whose splits carry their ``utterances`` (file and text).
        aligner: a ``transcribe`` run (a path or an open ``Run``) whose CTC alignments give the durations.
        speaker: the one speaker to learn, when the data has several; their clips are split anew by sentence
            (10% validation, 15% test), since a split of several voices may hold this one out whole.
        mel_bands: mel bands of the target spectrograms.
        judge: the ``transcribe`` run that scores the synthesised test sentences (default: the aligner).

    Raises:
        ConfigError: no aligner, an aligner that does not transcribe, several speakers and none chosen.
        DataError: the data is not speech with transcripts, a clip cannot be read or aligned.
    """
    from glassnet.train.run import Run

    spec = bundle.spec
    if spec.task != "transcribe" or any(utterances_of(bundle.split(s)) is None for s in ("train", "val", "test")):
        raise DataError(
            f"a synthesis model learns from speech with transcripts (a transcribe dataset such as one-voice or a "
            f"transcripts folder); dataset {spec.name or '(unnamed)'!r} is for {spec.task}"
        )
    if aligner is None:
        from glassnet.data.registry import list_datasets

        built_in = spec.name in {d.name for d in list_datasets()}  # a folder's spec names the folder, not its path
        hint = ALIGNER_HINT.replace("--data DATA", f"--data {spec.name}") if built_in else ALIGNER_HINT
        raise ConfigError(f"a synthesis model learns durations from a recogniser's alignments: {hint}")
    run = aligner if isinstance(aligner, Run) else Run.open(aligner)
    if run.spec.task != "transcribe":
        raise ConfigError(f"data.aligner={aligner} is a {run.spec.task} run; {ALIGNER_HINT}")
    judged = Run.open(judge) if judge is not None else None
    if judged is not None and judged.spec.task != "transcribe":
        raise ConfigError(f"data.judge={judge} is a {judged.spec.task} run; the judge must transcribe speech")
    if isinstance(mel_bands, bool) or not isinstance(mel_bands, int) or not 8 <= mel_bands <= 128:
        raise ConfigError(f"mel_bands must be an integer in [8, 128]. Received: mel_bands={mel_bands!r}")
    rows = {s: list(utterances_of(bundle.split(s)) or []) for s in ("train", "val", "test")}
    if speaker:
        rows = _one_speaker(rows, speaker)
    voices = sorted({u["speaker"] for r in rows.values() for u in r if u.get("speaker")})
    if not speaker and len(voices) > 1:
        counts = {v: sum(u.get("speaker") == v for r in rows.values() for u in r) for v in voices}
        top = ", ".join(f"{v} ({n})" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
        raise ConfigError(
            f"the data has {len(voices)} speakers and a synthesis model learns one voice: choose one with "
            f"data.speaker=NAME (most clips: {top})"
        )
    if not rows["train"]:
        raise DataError(f"no training clips{f' of speaker {speaker!r}' if speaker else ''}")
    symbols = synthesis_symbols([u["text"] for r in rows.values() for u in r])
    prepared = {s: _prepare(r, run, symbols, mel_bands) for s, r in rows.items()}
    longest = max(len(p["ids"]) for r in prepared.values() for p in r)
    widest = max(max(p["mel"].shape[1], len(p["ids"])) for r in prepared.values() for p in r)
    train_mels = torch.cat([p["mel"] for p in prepared["train"]], dim=1)
    splits = {s: _tensors(prepared[s], longest, widest, mel_bands) for s in prepared}
    new_spec = DataSpec(
        modality="audio",
        input_shape=(2, longest),
        task="synthesize",
        num_outputs=mel_bands + 1,
        name=spec.name,
        extra={
            "symbols": list(symbols),
            "n_mels": mel_bands,
            "n_fft": N_FFT,
            "hop_length": HOP,
            "sample_rate": SAMPLE_RATE,
            "max_frames": widest,
            "mel_mean": float(train_mels.mean()),
            "aligner": str(run.path),
            "judge": str(judged.path) if judged is not None else None,
            "speaker": speaker or (voices[0] if voices else None),
        },
    )
    out = DataBundle(
        TensorDataset(*splits["train"]),
        TensorDataset(*splits["val"]),
        TensorDataset(*splits["test"]),
        new_spec,
        {**bundle.info, "source_task": "transcribe", "aligner": str(run.path)},
    )
    for s in ("train", "val", "test"):
        out.split(s).utterances = [{"file": p["file"], "text": p["text"]} for p in prepared[s]]  # type: ignore[attr-defined]
    return out


def _one_speaker(rows: dict[str, list[dict[str, Any]]], speaker: str) -> dict[str, list[dict[str, Any]]]:
    """The clips of one speaker, split anew by sentence (the data's own split may hold whole speakers out)."""
    from glassnet.data.one_voice import sentence_split

    said = [u for split in ("train", "val", "test") for u in rows[split] if u.get("speaker") == speaker]
    if len({u["text"] for u in said}) < 3:
        known = sorted({u.get("speaker") for r in rows.values() for u in r if u.get("speaker")})
        raise DataError(
            f"speaker {speaker!r} says {len(said)} clips of {len({u['text'] for u in said})} distinct sentences; a "
            f"voice needs at least 3 sentences (train, validation, test). Speakers: {', '.join(known[:10])}"
        )
    groups = sentence_split([u["text"] for u in said], SPEAKER_VAL, SPEAKER_TEST, 0)
    return {split: [said[i] for i in group] for split, group in zip(("train", "val", "test"), groups)}


def _prepare(
    utterances: list[dict[str, Any]], run: Any, symbols: Sequence[str], mel_bands: int
) -> list[dict[str, Any]]:
    """Each clip's symbol ids, target spectrogram and durations (the aligner run over the clips in batches)."""
    from glassnet.data.audio import read_wav, resample

    options = run.spec.extra["audio"]
    waves = []
    for u in utterances:
        wave, rate = read_wav(u["file"])
        waves.append(resample(wave, rate, SAMPLE_RATE))
        if len(waves[-1]) * options["sample_rate"] / SAMPLE_RATE > options["samples"] + options["hop_length"]:
            raise DataError(
                f"'{u['file']}' lasts {len(waves[-1]) / SAMPLE_RATE:.2f} s, longer than the {options['duration']:g} s "
                f"clips the aligner was trained on; {ALIGNER_HINT}"
            )
    log_probs = recogniser_outputs(run, waves, SAMPLE_RATE).log_softmax(dim=2).numpy()
    alphabet = {s: i for i, s in enumerate(run.spec.extra["alphabet"])}
    index = {s: i for i, s in enumerate(symbols)}
    step = options["frames"] / log_probs.shape[1]  # aligner input frames per output frame
    ends = ((np.arange(log_probs.shape[1]) + 1) * step - 0.5) * options["hop_length"]  # samples, centred clip
    prepared = []
    for u, wave, clip in zip(utterances, waves, log_probs):
        path, text = u["file"], u["text"]
        missing = sorted({c for c in text if c not in alphabet})
        if missing:
            raise DataError(
                f"the aligner has no symbol for {', '.join(map(repr, missing))} of {text!r}; {ALIGNER_HINT}"
            )
        try:
            positions = forced_alignment(clip, [alphabet[c] for c in text])
        except ValueError as exc:
            raise DataError(f"'{path}': {exc}; the aligner's output rate is too low for this transcript") from exc
        mel = log_mel_of(wave, mel_bands)
        before = (options["samples"] - round(len(wave) * options["sample_rate"] / SAMPLE_RATE)) // 2  # centred
        frame_times = (ends - before) / options["sample_rate"] * SAMPLE_RATE / HOP + 0.5
        durations = durations_from_owners(symbol_owners(positions, len(text)), len(text), frame_times, mel.shape[1])
        ids = [index[START], *(index[c] for c in text), index[END]]
        prepared.append({"file": str(path), "text": text, "ids": ids, "durations": durations, "mel": mel})
    return prepared


def log_mel_of(wave: np.ndarray, mel_bands: int) -> torch.Tensor:
    """The target spectrogram of a 16 kHz waveform: ``mel_bands x frames`` (n_fft 512, hop 160)."""
    from glassnet.data.audio import log_mel

    return log_mel(torch.from_numpy(wave), SAMPLE_RATE, mel_bands, N_FFT, HOP)


def _tensors(prepared: list[dict[str, Any]], longest: int, widest: int, mel_bands: int) -> tuple[torch.Tensor, ...]:
    inputs = torch.zeros(len(prepared), 2, longest, dtype=torch.int64)
    targets = torch.full((len(prepared), mel_bands + 1, widest), LOG_FLOOR)
    targets[:, mel_bands] = -1
    for k, p in enumerate(prepared):
        n, frames = len(p["ids"]), p["mel"].shape[1]
        inputs[k, 0, :n] = torch.as_tensor(p["ids"])
        inputs[k, 1, :n] = torch.as_tensor(p["durations"])
        targets[k, :mel_bands, :frames] = p["mel"]
        targets[k, mel_bands, :n] = torch.as_tensor(p["durations"], dtype=torch.float32)
    return inputs, targets


# ---------------------------------------------------------------------------------------------
# the task


@register_task
class Synthesis(Task):
    """Text to log-mel spectrogram with durations, scored on the spectrogram drawn with the true durations.

    Metrics:
        ``loss``: ``mel_l1 + duration_mse``.
        ``mel_l1``: mean absolute error of the log-mel bands over the clips' frames (nats).
        ``duration_mse``: mean squared error of each symbol's ``log(1 + frames)``.
        ``duration_mae``: mean absolute error of the predicted durations, in frames.
    """

    name = "synthesize"
    monitor_modes = {"loss": "min", "mel_l1": "min", "duration_mse": "min", "duration_mae": "min"}
    headline_metrics = ("mel_l1", "duration_mae")
    default_monitor = "val/mel_l1"
    data_options = ("aligner", "judge", "speaker", "mel_bands")

    def not_predicted(self, run_path: Any) -> str:
        return (
            f"the run at '{run_path}' speaks text: use glassnet synthesize {run_path} \"TEXT\" --out speech.wav "
            "(Python: glassnet.synthesize(run, text))"
        )

    def prepare_data(self, bundle: DataBundle, options: dict[str, Any]) -> DataBundle:
        """The ``synthesis_bundle`` of a dataset (``data.aligner``, ``judge``, ``speaker``, ``mel_bands``)."""
        return synthesis_bundle(bundle, **options)

    def parts(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        if outputs.ndim != 3 or targets.ndim != 3 or outputs.shape[:2] != targets.shape[:2]:
            raise DataError(
                "synthesize needs N x (mels + 1) x W outputs and targets of the same N and channels. Received: "
                f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        width = targets.shape[2]
        outputs = outputs.float()
        if outputs.shape[2] < width:
            outputs = F.pad(outputs, (0, width - outputs.shape[2]), value=LOG_FLOOR)
        outputs = outputs[:, :, :width]
        mels = targets.shape[1] - 1
        durations = targets[:, mels]
        symbols = durations >= 0
        frames = torch.arange(width, device=targets.device) < durations.clamp(min=0).sum(1, keepdim=True)
        mel_error = (outputs[:, :mels] - targets[:, :mels]).abs().mean(dim=1)  # N x W
        log_error = outputs[:, mels] - torch.log1p(durations.clamp(min=0))
        predicted = (outputs[:, mels].exp() - 1).round().clamp(min=0)
        return {
            "mel_l1": (mel_error * frames).sum() / frames.sum().clamp(min=1),
            "duration_mse": (log_error.square() * symbols).sum() / symbols.sum().clamp(min=1),
            "duration_mae": ((predicted - durations).abs() * symbols).sum() / symbols.sum().clamp(min=1),
        }

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        parts = self.parts(outputs, targets)
        return parts["mel_l1"] + parts["duration_mse"]

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        parts = {k: float(v) for k, v in self.parts(outputs, targets).items()}
        return {"loss": parts["mel_l1"] + parts["duration_mse"], **parts}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``prediction``: the spectrogram ``N x mels x W``; ``confidence``: none (NaN)."""
        return {"prediction": outputs[:, :-1], "confidence": torch.full((len(outputs),), float("nan"))}

    def shown(self, spec: DataSpec, value: torch.Tensor) -> str:
        return f"log-mel spectrogram of {value.shape[-1]} frames"

    def details(self, context: TaskContext) -> None:
        synthesis_details(context)


# ---------------------------------------------------------------------------------------------
# speaking


def synthesize_ids(model: torch.nn.Module, ids: Sequence[int], speed: float = 1.0) -> torch.Tensor:
    """The ``mels x frames`` log-mel spectrogram of one symbol sequence, with predicted durations.

    Args:
        model: a synthesis model.
        ids: ``^ text $`` symbol ids.
        speed: speaking rate relative to the voice's (durations are divided by it).
    """
    if not 0.25 <= speed <= 4:
        raise ConfigError(f"speed must be in [0.25, 4]. Received: speed={speed}")
    x = torch.tensor([[list(ids), [-1] * len(ids)]], dtype=torch.int64)
    model.eval()
    with torch.no_grad():
        if speed != 1.0:
            out = model(x)
            log_d = out[0, -1, : len(ids)]
            x[0, 1] = ((log_d.exp() - 1) / speed).round().clamp(min=0).long()
        out = model(x)[0]
    frames = int(x[0, 1].sum()) if speed != 1.0 else int(model.frames_of(out[-1:, : len(ids)]).sum())
    return out[:-1, : max(frames, 1)]


def vocode(
    log_mels: torch.Tensor, spec: DataSpec, iterations: int = GRIFFIN_LIM_ITERATIONS, seed: int = 0
) -> np.ndarray:
    """Waveform (float32 in [-1, 1]) of a log-mel spectrogram, by Griffin-Lim."""
    from glassnet.data.audio import griffin_lim, mel_to_magnitude

    extra = spec.extra
    magnitude = mel_to_magnitude(log_mels.float(), extra["sample_rate"], extra["n_fft"])
    wave = griffin_lim(magnitude, extra["n_fft"], extra["hop_length"], iterations=iterations, seed=seed)
    return np.clip(wave.numpy(), -1.0, 1.0).astype(np.float32)


def synthesize_text(run: Any, text: str, speed: float = 1.0, iterations: int = GRIFFIN_LIM_ITERATIONS) -> np.ndarray:
    """Speak ``text`` with a synthesis run: a 16-bit-ready float waveform at ``run.spec.extra["sample_rate"]``.

    Raises:
        ConfigError: the run does not synthesise, or the text holds characters the voice never learned.
    """
    if run.spec.task != "synthesize":
        raise ConfigError(f"run {run.path} is a {run.spec.task} run; speech comes from a synthesize run (fastspeech)")
    ids = encode_text(text, run.spec.extra["symbols"])
    return vocode(synthesize_ids(run.model, ids, speed), run.spec, iterations)


def synthesize(
    run: Any, text: str, out: str | None = None, speed: float = 1.0, iterations: int = GRIFFIN_LIM_ITERATIONS
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with a text-to-speech run (``gn.synthesize``).

    Args:
        run: a ``synthesize`` run: its directory or an open ``Run``.
        text: what to say; digits are read one by one as words.
        out: a WAV file to write as well (16-bit PCM), or None.
        speed: speaking rate relative to the voice's.
        iterations: Griffin-Lim iterations.

    Returns:
        The waveform (float32 in [-1, 1]) and its sample rate.

    Raises:
        ConfigError: the run does not synthesise, or the text cannot be said by its voice.
        RunError: the run cannot be opened.
    """
    from glassnet.runs import write_bytes
    from glassnet.train.run import Run

    opened = run if isinstance(run, Run) else Run.open(run)
    wave = synthesize_text(opened, text, speed, iterations)
    rate = int(opened.spec.extra["sample_rate"])
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(out, wav_bytes(wave, rate))
    return wave, rate


def wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    """A 16-bit PCM WAV file of a float waveform."""
    from scipy.io import wavfile

    buffer = io.BytesIO()
    peak = float(np.abs(wave).max()) if len(wave) else 0.0
    scaled = wave * (0.9 / peak) if peak > 0.9 else wave
    wavfile.write(buffer, rate, np.round(np.clip(scaled, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# judging


def recogniser_outputs(run: Any, waves: Sequence[np.ndarray], rate: int) -> torch.Tensor:
    """A ``transcribe`` run's ``N x T x V`` logits for waveforms at ``rate``, featurised as its clips were (a longer
    clip cropped to the middle), in batches."""
    from glassnet.data.audio import resample, waveforms_features

    options = run.spec.extra["audio"]
    features = torch.from_numpy(waveforms_features([resample(w, rate, options["sample_rate"]) for w in waves], options))
    with torch.no_grad():
        outputs = [run.model(features[k : k + 32]).float() for k in range(0, len(features), 32)]
    return torch.cat(outputs) if outputs else torch.zeros(0, 0, len(run.spec.extra["alphabet"]))


def recognise(run: Any, waves: Sequence[np.ndarray], rate: int) -> list[str]:
    """What a ``transcribe`` run hears in waveforms (greedy decoding); a clip longer than its window is cropped
    to the middle."""
    from glassnet.data.transcripts import decode_ids
    from glassnet.train.transcription import greedy_decode

    if not waves:
        return []
    symbols = run.spec.extra["alphabet"]
    return [decode_ids(ids, symbols) for ids in greedy_decode(recogniser_outputs(run, waves, rate))]


def text_error_rates(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``cer`` and ``wer`` (torchmetrics) of transcripts against texts."""
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    if not references:
        return {"cer": float("nan"), "wer": float("nan")}
    return {
        "cer": round(float(char_error_rate(list(hypotheses), list(references))), 6),
        "wer": round(float(word_error_rate(list(hypotheses), list(references))), 6),
    }


def cepstra(log_mels: torch.Tensor, count: int = CEPSTRA) -> np.ndarray:
    """Mel cepstra 1 .. ``count - 1`` of each frame: ``frames x (count - 1)``.

    The orthonormal DCT-II of the log-*amplitude* mel bands (half the log-power ``log_mel`` gives),
    the scale the usual mel cepstral distortion formula assumes.
    """
    from scipy.fft import dct

    return dct(0.5 * log_mels.double().numpy().T, type=2, norm="ortho", axis=1)[:, 1:count]


def mcd_dtw(synthesised: torch.Tensor, reference: torch.Tensor) -> float:
    """Mel cepstral distortion in dB between two log-mel spectrograms, frames matched by dynamic time warping.

    The warping path (steps diagonal, down or right) minimises the summed Euclidean distance of the
    cepstra; the distortion is ``10 / ln 10 * sqrt(2)`` times its mean along the path.
    """
    a, b = cepstra(synthesised), cepstra(reference)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    steps = np.zeros((rows + 1, cols + 1))
    total[0, 0] = 0.0
    for diagonal in range(2, rows + cols + 1):  # cells i + j = diagonal depend only on the two diagonals before
        i = np.arange(max(1, diagonal - cols), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        options = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])
        counts = np.stack([steps[i - 1, j - 1], steps[i - 1, j], steps[i, j - 1]])
        best = options.argmin(axis=0)
        pick = np.arange(len(i))
        total[i, j] = cost[i - 1, j - 1] + options[best, pick]
        steps[i, j] = 1 + counts[best, pick]
    return float(10 / math.log(10) * math.sqrt(2) * total[-1, -1] / steps[-1, -1])


class WordConcatenation:
    """The classical baseline: a sentence joined from recorded words (concatenative synthesis, words as units).

    Every word of the training sentences is cut from its recording's spectrogram at the aligned
    durations (from its first character's first frame to its last character's last frame), and the
    pause between words from the frames of the spaces; a sentence is the start silence, its words
    (for each word the recording whose length is the median of its recordings) joined by the median
    pause, and the end silence. A word never recorded is spelt from single-letter units cut the
    same way. The spectrogram then goes through the same vocoder as the model's.

    Args:
        inputs: ``N x 2 x L`` symbol ids and durations of the training split.
        targets: ``N x (mels + 1) x W`` its spectrograms and durations.
        symbols: the symbol alphabet (``synthesis_symbols``).
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        space, start, end = self.symbols.index(" "), self.symbols.index(START), self.symbols.index(END)
        mels = targets.shape[1] - 1
        words: dict[str, list[torch.Tensor]] = {}
        letters: dict[str, list[torch.Tensor]] = {}
        edges: dict[int, list[torch.Tensor]] = {start: [], end: [], space: []}
        for x, y in zip(inputs, targets):
            ids, durations = x[0].tolist(), x[1].tolist()
            bounds = np.concatenate([[0], np.cumsum(durations)]).astype(int)
            word: list[int] = []
            for k, symbol in enumerate(ids):
                if symbol == 0:
                    break
                if symbol in edges:
                    edges[symbol].append(y[:mels, bounds[k] : bounds[k + 1]])
                    if word:
                        text = "".join(self.symbols[ids[j]] for j in word)
                        words.setdefault(text, []).append(y[:mels, bounds[word[0]] : bounds[word[-1] + 1]])
                    word = []
                else:
                    word.append(k)
                    letters.setdefault(self.symbols[symbol], []).append(y[:mels, bounds[k] : bounds[k + 1]])
        self.words = {w: _median_length(parts) for w, parts in words.items()}
        self.letters = {c: _median_length(parts) for c, parts in letters.items()}
        self.start, self.end, self.pause = (_median_length(edges[k]) for k in (start, end, space))

    def speak(self, text: str) -> torch.Tensor:
        """The ``mels x frames`` spectrogram of ``text`` (read with ``spoken_text``) joined from recorded units."""
        parts = [self.start]
        for k, word in enumerate(spoken_text(text).split()):
            if k:
                parts.append(self.pause)
            parts += [self.words[word]] if word in self.words else [self.letters[c] for c in word if c in self.letters]
        parts.append(self.end)
        return torch.cat([p for p in parts if p.shape[1]], dim=1)


def _median_length(parts: list[torch.Tensor]) -> torch.Tensor:
    """The recording whose length is the median of ``parts`` (an empty one when there is none)."""
    if not parts:
        return torch.zeros(0, 0)
    ordered = sorted(parts, key=lambda p: p.shape[1])
    return ordered[len(ordered) // 2]


def is_digit_string(text: str) -> bool:
    """Whether a normalised text is a string of digit words (``four one five``)."""
    return bool(text) and all(w in DIGIT_WORDS for w in text.split())


def synthesis_details(context: TaskContext) -> None:
    """Speak the test sentences with predicted durations and judge them (see the module docstring).

    ``results["test"]`` gains ``free_running``: the judge, the sentences judged, ``mcd_dtw`` and the
    judge's ``cer``/``wer`` on the synthesised speech, on the recordings and on the recordings
    through the vocoder (``all`` sentences and ``digits`` only), and ``samples`` (text, what the
    judge heard, the kept synthesised and recorded WAVs).
    """
    from glassnet.data.audio import read_wav, resample
    from glassnet.runs import write_bytes
    from glassnet.train.run import Run

    run, bundle, model = context.run, context.bundle, context.model
    spec = bundle.spec
    inputs, targets = split_tensors(bundle.test)
    utterances = utterances_of(bundle.test) or []
    count = min(EVALUATED, len(inputs), len(utterances))
    if count == 0:
        return
    judge_path = spec.extra.get("judge") or spec.extra.get("aligner")
    try:
        judge = Run.open(judge_path) if judge_path else None
    except GlassnetError:  # the aligner moved since training: judge nothing rather than fail the run
        judge = None
    model = model.cpu().float().eval()
    mels = spec.extra["n_mels"]
    concatenation = WordConcatenation(*split_tensors(bundle.train), spec.extra["symbols"])
    synthesised, recorded, vocoded, joined, texts, distortion, joined_distortion = [], [], [], [], [], [], []
    for k in range(count):
        length = int((inputs[k, 0] != 0).sum())
        ids = inputs[k, 0, :length].tolist()
        mel = synthesize_ids(model, ids)
        frames = int(targets[k, mels, :length].sum())
        reference = targets[k, :mels, :frames]
        distortion.append(mcd_dtw(mel, reference))
        synthesised.append(vocode(mel, spec))
        wave, rate = read_wav(utterances[k]["file"])
        recorded.append(resample(wave, rate, spec.extra["sample_rate"]))
        vocoded.append(vocode(reference, spec))
        texts.append(utterances[k]["text"])
        joined_mel = concatenation.speak(texts[-1])
        joined_distortion.append(mcd_dtw(joined_mel, reference))
        joined.append(vocode(joined_mel, spec))
    rate = spec.extra["sample_rate"]
    free: dict[str, Any] = {
        "sentences": count,
        "vocoder": f"Griffin-Lim, {GRIFFIN_LIM_ITERATIONS} iterations (momentum 0.99)",
        "mcd_dtw": round(float(np.mean(distortion)), 4),
        "judge": str(judge.path) if judge else None,
        "baseline": "word concatenation: recorded training words joined by a recorded pause (same vocoder)",
    }
    heard: list[str] = []
    if judge is not None:
        heard = recognise(judge, synthesised, rate)
        on_recorded = recognise(judge, recorded, rate)
        on_vocoded = recognise(judge, vocoded, rate)
        on_joined = recognise(judge, joined, rate)
        digits = [i for i, t in enumerate(texts) if is_digit_string(t)]
        for name, rows in (("all", range(count)), ("digits", digits)):
            pick = list(rows)
            if not pick:
                continue
            refs = [texts[i] for i in pick]
            free[name] = {
                "sentences": len(pick),
                "synthesised": text_error_rates([heard[i] for i in pick], refs),
                "recorded": text_error_rates([on_recorded[i] for i in pick], refs),
                "recorded_vocoded": text_error_rates([on_vocoded[i] for i in pick], refs),
                "word_concatenation": text_error_rates([on_joined[i] for i in pick], refs),
                "mcd_dtw": round(float(np.mean([distortion[i] for i in pick])), 4),
                "word_concatenation_mcd_dtw": round(float(np.mean([joined_distortion[i] for i in pick])), 4),
            }
    samples = []
    for k in range(min(KEPT, count)):
        kept = {}
        for kind, wave in (("synthesised", synthesised[k]), ("recorded", recorded[k])):
            target = run.figures_dir / f"speech-{k}-{kind}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(target, wav_bytes(wave, rate))
            kept[kind] = str(Path(target).relative_to(run.path))
        samples.append(
            {"text": texts[k], "heard": heard[k] if heard else None, "mcd_dtw": round(distortion[k], 3), **kept}
        )
    free["samples"] = samples
    context.results["test"]["free_running"] = free
