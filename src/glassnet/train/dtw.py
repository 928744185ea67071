"""A classical speech recogniser to measure CTC models against: MFCC features and connected-word DTW.

The method of the isolated- and connected-word recognisers of the 1970s and 1980s, before hidden
Markov models took over:

- ``mfcc``: mel-frequency cepstral coefficients, the DCT-II of a log-mel spectrogram (glassnet's
  own), coefficients 1 to ``n`` (c0, the loudness, left out), with cepstral mean normalisation over
  the clip (which removes a fixed channel or voice colouring) and first differences appended.
- ``recognise``: one-pass dynamic time warping (Ney, 1984, "The use of a one-stage dynamic
  programming algorithm for connected word recognition") over a loop of word templates: an
  utterance is matched against any sequence of the templates, each warped in time (a template
  frame may repeat, advance or skip one), with a silence model between words and a penalty per
  word. The best sequence's words are the transcript.

Templates are recordings of single words (``spoken-digits`` clips, for digit strings), trimmed of
their silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.fft import dct

from glassnet.errors import ConfigError

SILENCE_DB = 35.0  # frames quieter than the loudest by this much are silence when trimming


def mfcc(log_mel: np.ndarray, n: int = 12, deltas: bool = True) -> np.ndarray:
    """``frames x features`` cepstral coefficients of a ``mels x frames`` log-mel spectrogram.

    Args:
        log_mel: natural-log mel energies, ``mels x frames``.
        n: cepstral coefficients kept after c0.
        deltas: append each coefficient's first difference in time.
    """
    cepstra = dct(np.asarray(log_mel, dtype=np.float64), type=2, axis=0, norm="ortho")[1 : n + 1].T
    cepstra = cepstra - cepstra.mean(axis=0, keepdims=True)  # cepstral mean normalisation
    if deltas:
        change = np.gradient(cepstra, axis=0) if len(cepstra) > 1 else np.zeros_like(cepstra)
        cepstra = np.hstack([cepstra, change])
    return cepstra


def speech_frames(log_mel: np.ndarray, margin: int = 2) -> slice:
    """The frames between the first and the last that are within ``SILENCE_DB`` of the loudest."""
    energy = np.asarray(log_mel).mean(axis=0) * (10 / np.log(10))  # mean log-mel in dB
    loud = np.flatnonzero(energy > energy.max() - SILENCE_DB)
    if len(loud) == 0:
        return slice(0, np.asarray(log_mel).shape[1])
    return slice(max(0, loud[0] - margin), loud[-1] + 1 + margin)


def recognise(
    features: np.ndarray, templates: Sequence[tuple[str, np.ndarray]], penalty: float, silence: np.ndarray | None = None
) -> list[str]:
    """The word sequence whose templates, warped in time, best match ``features`` (one-pass DTW).

    Every template may begin at the first frame or right after the best template that ends at the
    previous frame (Ney's word-level back pointers); within a template, each frame of the utterance
    stays on the template frame, moves to the next or skips one. Silence is a one-frame template
    that repeats and says nothing.

    Args:
        features: ``frames x d`` of the utterance.
        templates: ``(word, frames x d)`` pairs; a word may have several templates.
        penalty: added to the distance each time a word begins (fewer, longer words against more, shorter ones).
        silence: a ``d`` vector for the silence template (None: no silence model).

    Returns:
        The recognised words in order (empty when silence matches best throughout).

    Raises:
        ConfigError: no template, an empty template, or an utterance without frames.
    """
    if not templates or any(len(t) == 0 for _, t in templates) or len(features) == 0:
        raise ConfigError("recognise needs at least one template, no empty template and at least one frame")
    pieces = list(templates) + ([("", np.asarray(silence)[None, :])] if silence is not None else [])
    words = [w for w, _ in pieces]
    bank = np.concatenate([np.asarray(t, dtype=np.float64) for _, t in pieces])  # J x d
    lengths = np.array([len(t) for _, t in pieces])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + lengths - 1
    first = np.zeros(len(bank), dtype=bool)
    first[starts] = True
    second = np.zeros(len(bank), dtype=bool)  # a skip into a template's second frame would come from outside it
    second[starts[lengths > 1] + 1] = True
    entry_penalty = np.zeros(len(bank))
    entry_penalty[starts] = [0.0 if w == "" else penalty for w in words]
    frames = len(features)
    local = np.sqrt(((np.asarray(features, dtype=np.float64)[:, None, :] - bank[None]) ** 2).sum(axis=2))  # T x J

    cost = np.full(len(bank), np.inf)
    entered = np.zeros(len(bank), dtype=np.int64)  # when the template in each cell began
    end_piece = np.zeros(frames, dtype=np.int64)  # the best template ending at each time, and when it began
    end_start = np.zeros(frames, dtype=np.int64)
    previous_best = 0.0  # before the first frame, anything may begin
    columns = np.arange(len(bank))
    for t in range(frames):
        choices = np.stack(
            [cost, np.where(first, np.inf, np.roll(cost, 1)), np.where(first | second, np.inf, np.roll(cost, 2))]
        )
        best = choices.argmin(axis=0)
        moved = choices[best, columns]
        moved_from = np.stack([entered, np.roll(entered, 1), np.roll(entered, 2)])[best, columns]
        entry = np.where(first, previous_best + entry_penalty, np.inf)
        begin = entry <= moved
        cost = np.where(begin, entry, moved) + local[t]
        entered = np.where(begin, t, moved_from)
        finished = cost[ends]
        k = int(finished.argmin())
        end_piece[t], end_start[t], previous_best = k, entered[ends[k]], finished[k]
    out: list[str] = []
    t = frames - 1
    while t >= 0:
        k = end_piece[t]
        if words[k]:
            out.append(words[k])
        t = end_start[t] - 1
    return out[::-1]
