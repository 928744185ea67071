"""Explaining speech recognition runs: which frames of the audio drive each decoded word.

A recogniser answers with a sequence, so there is no single score to explain. Each test utterance
is decoded greedily; each decoded word is scored by the log-probability of the path that spells it,
``sum_t log p(symbol_t | x)`` over the output frames where the best path emits the word's
characters. That score is attributed to the input spectrogram by integrated gradients (Sundararajan
et al., 2017) from a silent baseline (every value at the clip's quietest log-mel level), with the
midpoint rule over ``steps`` points; summing the attribution over the mel bands gives each input
frame's share in the word.

Two numbers say whether the explanation is sensible and complete:

- ``inside_share``: the share of a word's absolute attribution that lies in the word's own frames
  (from one output frame before its first character to one after its last, in input frames),
  beside ``span_share``, the share of the clip those frames cover. A recogniser that hears a word
  where it is spoken puts far more than ``span_share`` inside; one that has learned the clip's
  length or the speaker does not.
- ``completeness_error``: ``|sum(attribution) - (score(x) - score(baseline))|`` over
  ``|score(x) - score(baseline)|``, integrated gradients' completeness axiom; large values mean
  too few ``steps``.

And one trust check, the deletion test of the classifier explanations applied to words: silencing
(setting to the baseline) the ``k`` frames the attribution ranks highest, ``k`` the length of the
word's span, must lower the word's score more than silencing ``k`` frames drawn at random (the
mean of ``RANDOM_DRAWS`` draws). ``deletion_drop`` and ``random_drop`` are the two falls of the
word's path log-probability; ``faithful_words`` is the share of words whose top frames matter
more than random ones. An attribution that ranks frames no better than chance is refused as
evidence with a warning.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from glassnet.data.transcripts import BLANK_ID, SPACE_ID, decode_ids, symbols_of
from glassnet.errors import ConfigError, DataError
from glassnet.progress import Progress, progress_bar

DEFAULT_STEPS = 32
LOCAL_RATIO = 2.0  # warn when words put less than this multiple of their span's share of the clip inside it
COMPLETENESS_TOLERANCE = 0.05
RANDOM_DRAWS = 4  # random deletions per word, averaged
FIGURE_UTTERANCES = 3


def decoded_words(log_probs: torch.Tensor) -> list[dict[str, Any]]:
    """The words of the greedy path of one utterance's ``T x V`` log-probabilities.

    Returns:
        One dict per word: ``symbols`` (its ids) and ``frames`` (the output frame where each symbol is
        emitted, the first of a run of repeats).
    """
    path = log_probs.argmax(dim=1).tolist()
    words: list[dict[str, Any]] = []
    current: dict[str, Any] = {"symbols": [], "frames": []}
    previous = BLANK_ID
    for t, symbol in enumerate(path):
        if symbol != previous and symbol != BLANK_ID:
            if symbol == SPACE_ID:
                if current["symbols"]:
                    words.append(current)
                current = {"symbols": [], "frames": []}
            else:
                current["symbols"].append(symbol)
                current["frames"].append(t)
        previous = symbol
    if current["symbols"]:
        words.append(current)
    return words


def _scores(log_probs: torch.Tensor, words: list[dict[str, Any]]) -> torch.Tensor:
    """``S x W``: each word's path log-probability in each of ``S`` forward passes (``S x T x V``)."""
    columns = []
    for word in words:
        frames = torch.tensor(word["frames"])
        symbols = torch.tensor(word["symbols"])
        columns.append(log_probs[:, frames, symbols].sum(dim=1))
    return torch.stack(columns, dim=1)


def word_attributions(
    model: torch.nn.Module, x: torch.Tensor, words: list[dict[str, Any]], steps: int = DEFAULT_STEPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients of each word's path score for one utterance ``1 x mels x frames``.

    Returns:
        ``W x mels x frames`` attributions and ``W`` completeness errors (relative).
    """
    baseline = torch.full_like(x, float(x.min()))
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps  # midpoint rule
    path = (baseline + alphas.view(-1, 1, 1, 1) * (x - baseline)).requires_grad_(True)  # S x 1 x M x F
    scores = _scores(model(path).float().log_softmax(dim=2), words)  # S x W
    gradients = []
    for w in range(len(words)):
        (gradient,) = torch.autograd.grad(scores[:, w].sum(), path, retain_graph=w < len(words) - 1)
        gradients.append(gradient.mean(dim=0))
    attributions = (x - baseline) * torch.stack(gradients)  # W x 1 x M x F
    with torch.no_grad():
        ends = _scores(model(torch.cat([baseline, x])).float().log_softmax(dim=2), words)
    change = ends[1] - ends[0]
    total = attributions.flatten(1).sum(dim=1)
    errors = (total - change).abs() / change.abs().clamp_min(1e-6)
    return attributions[:, 0].detach(), errors.detach()


def deletion_drops(
    model: torch.nn.Module,
    x: torch.Tensor,
    words: list[dict[str, Any]],
    per_frame: torch.Tensor,
    counts: list[int],
    seed: int = 0,
) -> list[tuple[float, float]]:
    """For each word, how far its path score falls when its ``counts[w]`` top-attributed frames are silenced,
    and when as many random frames are (the mean of ``RANDOM_DRAWS`` draws).

    Args:
        model: the recogniser.
        x: one utterance ``1 x 1 x mels x frames``.
        words: its decoded words (``decoded_words``).
        per_frame: ``W x frames`` absolute attribution of each word to each frame.
        counts: frames to silence per word.
        seed: seed of the random frames.
    """
    frames = x.shape[-1]
    silent = float(x.min())
    generator = torch.Generator().manual_seed(seed)
    variants = [x[0]]
    for weight, k in zip(per_frame, counts):
        k = max(1, min(int(k), frames))
        choices = [weight.topk(k).indices] + [
            torch.randperm(frames, generator=generator)[:k] for _ in range(RANDOM_DRAWS)
        ]
        for chosen in choices:
            deleted = x[0].clone()
            deleted[..., chosen] = silent
            variants.append(deleted)
    with torch.no_grad():
        scores = _scores(model(torch.stack(variants)).float().log_softmax(dim=2), words)  # (1 + W * (1 + R)) x W
    drops = []
    for w in range(len(words)):
        rows = 1 + w * (1 + RANDOM_DRAWS) + torch.arange(1 + RANDOM_DRAWS)
        fall = scores[0, w] - scores[rows, w]
        drops.append((float(fall[0]), float(fall[1:].mean())))
    return drops


def explain_transcription(
    run: Any, n: int = 16, steps: int = DEFAULT_STEPS, seed: int = 0, progress: Progress = None
) -> dict[str, Any]:
    """Which frames drive each decoded word of ``n`` test utterances; writes ``results/explain.json`` and
    ``figures/explain_words.png``.

    Args:
        run: an opened speech recognition (``transcribe``) run.
        n: test utterances to explain (a seeded sample when the split has more).
        steps: integrated gradients' points along the path.
        seed: the sample.
        progress: a bar over the utterances.

    Raises:
        ConfigError: ``steps`` < 2.
        DataError: the test split is empty or no utterance decodes to a word.
    """
    from glassnet.figures import speech as drawing

    if not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"steps must be an integer >= 2. Received: steps={steps!r}")
    started = time.perf_counter()
    model, spec = run.model.eval(), run.spec
    symbols = symbols_of(spec)
    inputs, targets = run.split("test")
    if not len(inputs):
        raise DataError(f"the data of '{run.path}' has an empty test split; there is nothing to explain")
    order = torch.arange(len(inputs))
    if n < len(inputs):
        order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    trainable = [p for p in model.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)  # gradients of the input only; restored below
    try:
        records, pictures = _explain_utterances(model, inputs, targets, order, symbols, steps, progress)
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
    if not records:
        raise DataError("no explained utterance decodes to a word: the model emits only blanks (train it longer)")
    inside = np.array([r["inside_share"] for r in records])
    span = np.array([r["span_share"] for r in records])
    errors = np.array([r["completeness_error"] for r in records])
    deletion = np.array([r["deletion_drop"] for r in records])
    random_drop = np.array([r["random_drop"] for r in records])
    summary = {
        "words": len(records),
        "utterances": len({r["utterance"] for r in records}),
        "median_inside_share": round(float(np.median(inside)), 4),
        "median_span_share": round(float(np.median(span)), 4),
        "local_words": round(float(np.mean(inside > LOCAL_RATIO * span)), 4),
        "median_completeness_error": round(float(np.median(errors)), 4),
        "max_completeness_error": round(float(errors.max()), 4),
        "median_deletion_drop": round(float(np.median(deletion)), 4),
        "median_random_drop": round(float(np.median(random_drop)), 4),
        "faithful_words": round(float(np.mean(deletion > random_drop)), 4),
    }
    warnings = []
    if summary["median_inside_share"] < LOCAL_RATIO * summary["median_span_share"]:
        warnings.append(
            f"the decoded words are not driven by their own frames: a median {summary['median_inside_share']:.0%} of "
            f"a word's attribution lies in its span, which covers {summary['median_span_share']:.0%} of the clip"
        )
    if summary["median_deletion_drop"] <= summary["median_random_drop"]:
        warnings.append(
            f"the attributions rank frames no better than chance: silencing a word's top-ranked frames lowers its "
            f"score by a median {summary['median_deletion_drop']:.2f} nats, random frames by "
            f"{summary['median_random_drop']:.2f}; do not read them as what the word rests on"
        )
    if summary["median_completeness_error"] > COMPLETENESS_TOLERANCE:
        warnings.append(
            f"integrated gradients is incomplete (median error {summary['median_completeness_error']:.1%}): "
            "raise --steps"
        )
    path = run.figure("explain_words")
    drawing.word_attributions(pictures, path)
    result = {
        "kind": "transcription",
        "task": spec.task,
        "method": "integrated_gradients",
        "method_label": "Integrated gradients",
        "method_description": (
            "each decoded word's path log-probability, integrated along a straight line from a silent clip "
            "(every value at the clip's quietest log-mel level), summed over the mel bands per frame"
        ),
        "examples": len(order),
        "steps": steps,
        "summary": summary,
        "words": records,
        "warnings": warnings,
        "figures": [path.name],
        "time_s": round(time.perf_counter() - started, 3),
    }
    run.write_result("explain", result)
    return result


def _explain_utterances(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    order: torch.Tensor,
    symbols: tuple[str, ...],
    steps: int,
    progress: Progress,
) -> tuple[list[dict[str, Any]], list[tuple]]:
    """The per-word records of the chosen utterances, and the pictures of the first few."""
    records: list[dict[str, Any]] = []
    pictures: list[tuple] = []
    with progress_bar(len(order), "explain words", progress, unit="utterances") as bar:
        for i in order.tolist():
            x = inputs[i : i + 1]
            with torch.no_grad():
                log_probs = model(x).float().log_softmax(dim=2)[0]
            words = decoded_words(log_probs)
            bar.update(1)
            if not words:
                continue
            attributions, errors = word_attributions(model, x, words, steps)
            per_frame = attributions.abs().sum(dim=1)  # W x frames
            frames, outputs = x.shape[-1], log_probs.shape[0]
            ratio = frames / outputs
            spans = []
            for word in words:
                start = max(0, int((word["frames"][0] - 1) * ratio))
                stop = min(frames, int(np.ceil((word["frames"][-1] + 2) * ratio)))
                spans.append((start, stop))
            drops = deletion_drops(model, x, words, per_frame, [b - a for a, b in spans], seed=i)
            for word, weight, error, (start, stop), (drop, chance) in zip(words, per_frame, errors, spans, drops):
                total = float(weight.sum())
                records.append(
                    {
                        "utterance": i,
                        "word": decode_ids(word["symbols"], symbols),
                        "start_frame": start,
                        "end_frame": stop,
                        "inside_share": round(float(weight[start:stop].sum()) / total, 4) if total > 0 else 0.0,
                        "span_share": round((stop - start) / frames, 4),
                        "completeness_error": round(float(error), 4),
                        "deletion_drop": round(drop, 4),
                        "random_drop": round(chance, 4),
                    }
                )
            if len(pictures) < FIGURE_UTTERANCES:
                reference = decode_ids(targets[i], symbols)
                pictures.append((x[0, 0].numpy(), per_frame.numpy(), spans, [r["word"] for r in records[-len(words) :]],
                                 reference))  # fmt: skip
    return records, pictures
