"""Figures of speech-recognition runs: what the recogniser hears and when it emits each symbol."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from glassnet.figures import pyplot, save_figure

SPACE = "\u2423"  # the open box a typesetter draws for a space


def alignment(
    spectrograms: Sequence[np.ndarray],
    posteriors: Sequence[np.ndarray],
    references: Sequence[str],
    hypotheses: Sequence[str],
    symbols: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """Per utterance: its log-mel spectrogram over the probability of each symbol at each output frame.

    The lower panel shows the non-blank symbols' probabilities (one row per symbol, dark = likely);
    each symbol the greedy decoder emits is written above the frame where it peaks, so the picture
    shows where in the audio each character was heard.

    Args:
        spectrograms: ``mels x frames`` log-mel arrays.
        posteriors: ``T x V`` probabilities (blank first) of the same utterances.
        references: the true transcripts.
        hypotheses: the greedy transcripts.
        symbols: the alphabet (blank, space, characters).
        path: the PNG to write.
    """
    plt = pyplot()
    n = len(spectrograms)
    fig, axes = plt.subplots(2 * n, 1, figsize=(9, 3.4 * n), squeeze=False, height_ratios=[1, 1.2] * n)
    shown = [SPACE if s == " " else s for s in symbols]
    for k in range(n):
        top, bottom = axes[2 * k, 0], axes[2 * k + 1, 0]
        mel = np.asarray(spectrograms[k])
        top.imshow(mel, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        top.set_title(f"true: {references[k]}\nheard: {hypotheses[k]}", fontsize=8, loc="left")
        top.set_ylabel("mel band", fontsize=7)
        top.tick_params(labelsize=6)
        probs = np.asarray(posteriors[k])
        bottom.imshow(
            probs[:, 1:].T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
        )
        bottom.set_yticks(range(len(symbols) - 1), shown[1:], fontsize=5)
        bottom.set_xlabel("output frame", fontsize=7)
        bottom.tick_params(axis="x", labelsize=6)
        best = probs.argmax(axis=1)
        previous = 0
        for t, s in enumerate(best):
            if s != 0 and s != previous:
                bottom.text(
                    t, len(symbols) - 1.5, shown[s] if s != 1 else "_", fontsize=6, ha="center", color="#c0392b"
                )
            previous = s
    fig.tight_layout()
    save_figure(fig, path)


def word_attributions(
    utterances: Sequence[tuple[np.ndarray, np.ndarray, Sequence[tuple[int, int]], Sequence[str], str]],
    path: str | os.PathLike[str],
) -> None:
    """Per utterance: its log-mel spectrogram over each decoded word's attribution in time.

    Args:
        utterances: ``(spectrogram mels x frames, attribution W x frames, spans [(start, stop)], words,
            reference)`` per utterance; each word's curve is scaled to its own maximum and its span shaded.
        path: the PNG to write.
    """
    plt = pyplot()
    n = max(len(utterances), 1)
    fig, axes = plt.subplots(2 * n, 1, figsize=(9, 3.2 * n), squeeze=False, height_ratios=[1, 1] * n)
    colours = plt.get_cmap("tab10")
    for k, (mel, weights, spans, words, reference) in enumerate(utterances):
        top, bottom = axes[2 * k, 0], axes[2 * k + 1, 0]
        top.imshow(np.asarray(mel), origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        top.set_title(f"true: {reference}\nheard: {' '.join(words)}", fontsize=8, loc="left")
        top.set_ylabel("mel band", fontsize=7)
        top.tick_params(labelsize=6)
        frames = np.arange(np.asarray(mel).shape[1])
        for w, (curve, (start, stop), word) in enumerate(zip(np.asarray(weights), spans, words)):
            colour = colours(w % 10)
            scaled = curve / curve.max() if curve.max() > 0 else curve
            bottom.plot(frames, scaled + w, color=colour, linewidth=0.8)
            bottom.axvspan(start, stop, ymin=w / len(words), ymax=(w + 1) / len(words), color=colour, alpha=0.15)
            bottom.text(frames[-1], w + 0.5, f" {word}", fontsize=7, va="center", color=colour)
        bottom.set_xlim(0, frames[-1])
        bottom.set_ylim(0, max(len(words), 1))
        bottom.set_yticks([])
        bottom.set_xlabel("input frame (10 ms); shaded: the word's own frames", fontsize=7)
        bottom.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    save_figure(fig, path)
