"""The ``transcribe`` task (speech recognition): CTC loss, greedy and beam-search decoding, WER and CER.

Inputs are log-mel spectrograms; targets are transcripts as symbol ids ``N x L`` padded with 0 (the
CTC blank, which no transcript holds); models return logits ``N x T x V`` over the alphabet, blank
first and the word-separating space second (``glassnet.data.transcripts``), one step per output
frame. The loss is PyTorch's CTC loss (mean over the batch of each utterance's loss divided by its
length), with impossible alignments zeroed instead of giving infinities.

Metrics use greedy (best-path) decoding: the most likely symbol of each frame, repeats merged,
blanks dropped. ``wer`` and ``cer`` are torchmetrics' word and character error rates over the whole
split (edits summed over utterances, divided by the reference words or characters); ``sentence_accuracy``
is the share of utterances transcribed exactly. After training, the test split is also decoded by
CTC prefix beam search, with and without a word-list constraint (the words of the training
transcripts), and both rates are reported beside the greedy ones.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glassnet.data.bundle import split_tensors
from glassnet.data.spec import DataSpec
from glassnet.data.transcripts import BLANK_ID, SPACE_ID, decode_ids, symbols_of, utterances_of
from glassnet.errors import DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.tasks import Task, TaskContext, register_task

WORST = 8  # test utterances listed in the report, the highest word error rate first
LISTENED = 4  # of the worst and of the typical utterances, those whose audio the report embeds
MAX_CLIP_BYTES = 2 * 2**20  # a clip larger than this is not copied into the run (the report stays small)
BEAM = 8  # hypotheses kept by the beam search of the test split
PRUNE = 1e-3  # symbols less likely than this in a frame are not extended by the beam search
TOP_ALWAYS = 3  # with a word list, a frame's most likely symbols (and the blank) are tried however unlikely
_OFFSET = 0x4E00  # symbol ids become one character each (a CJK block) so word and character rates need no alphabet


def _texts(ids: Iterable[Sequence[int]]) -> list[str]:
    """Id sequences as strings whose words are the transcript's words (one character per symbol)."""
    return ["".join(" " if i == SPACE_ID else chr(_OFFSET + i) for i in row if i != BLANK_ID) for row in ids]


def greedy_decode(outputs: torch.Tensor) -> list[list[int]]:
    """Best-path decoding of ``N x T x V`` logits: each frame's most likely symbol, repeats merged, blanks dropped,
    spaces single."""
    path = outputs.argmax(dim=2)
    keep = torch.ones_like(path, dtype=torch.bool)
    keep[:, 1:] = path[:, 1:] != path[:, :-1]
    keep &= path != BLANK_ID
    return [_single_spaces(row[mask].tolist()) for row, mask in zip(path, keep)]


def _single_spaces(ids: list[int]) -> list[int]:
    """Ids without leading, trailing or doubled spaces (a space separated from the next by a blank emits twice)."""
    out: list[int] = []
    for i in ids:
        if i == SPACE_ID and (not out or out[-1] == SPACE_ID):
            continue
        out.append(i)
    return out[:-1] if out and out[-1] == SPACE_ID else out


def padded(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """Id sequences as an ``N x L`` tensor padded with the blank (at least one column)."""
    out = torch.zeros(len(sequences), max([len(s) for s in sequences] + [1]), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out


def error_rates(hypotheses: list[list[int]], references: list[list[int]]) -> dict[str, float]:
    """``wer``, ``cer`` and ``sentence_accuracy`` of decoded id sequences against reference ones."""
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    hyp, ref = _texts(hypotheses), _texts(references)
    return {
        "wer": float(word_error_rate(hyp, ref)),
        "cer": float(char_error_rate(hyp, ref)),
        "sentence_accuracy": sum(" ".join(h.split()) == " ".join(r.split()) for h, r in zip(hyp, ref))
        / max(len(ref), 1),
    }


def references(targets: torch.Tensor) -> list[list[int]]:
    """Target rows without their padding."""
    return [row[row != BLANK_ID].tolist() for row in targets]


@register_task
class Transcription(Task):
    """Speech to text with CTC, scored by word and character error rates.

    Metrics:
        ``loss``: CTC loss per target symbol (nats), averaged over utterances.
        ``wer``: word error rate of greedy decoding (substitutions + deletions + insertions over
            reference words).
        ``cer``: character error rate, likewise over characters (spaces included).
        ``sentence_accuracy``: share of utterances transcribed exactly.
    """

    name = "transcribe"
    monitor_modes = {"loss": "min", "wer": "min", "cer": "min", "sentence_accuracy": "max"}
    headline_metrics = ("wer", "cer")
    default_monitor = "val/wer"  # the kept weights: the epoch that transcribes best, not the lowest CTC loss

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """CTC loss with the blank at id 0; every output frame counts as input."""
        self.align(outputs, targets)
        log_probs = outputs.float().log_softmax(dim=2).transpose(0, 1)  # T x N x V
        targets = targets.long()
        frames = torch.full((outputs.shape[0],), outputs.shape[1], dtype=torch.long, device=outputs.device)
        lengths = (targets != BLANK_ID).sum(dim=1)
        return F.ctc_loss(log_probs, targets, frames, lengths, blank=BLANK_ID, zero_infinity=True)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``, ``wer``, ``cer`` and ``sentence_accuracy`` (see the class docstring)."""
        self.align(outputs, targets)
        scores = error_rates(greedy_decode(outputs), references(targets))
        return {"loss": self.loss(outputs, targets).item(), **scores}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Greedy transcripts as ids ``N x L`` (blank-padded) and each utterance's mean best-frame probability."""
        confidence = outputs.float().softmax(dim=2).amax(dim=2).mean(dim=1)
        return {"prediction": padded(greedy_decode(outputs)), "confidence": confidence}

    def align(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets, checked: ``N x L`` symbol ids for ``N x T x V`` logits, each readable from ``T`` frames.

        Raises:
            DataError: the shapes disagree, an id is out of range, or a transcript is longer than the output.
        """
        if outputs.ndim != 3 or targets.ndim != 2 or len(outputs) != len(targets):
            raise DataError(
                "transcribe needs N x T x V logits and N x L symbol ids (0-padded). Received: "
                f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        if len(targets) and (targets.min() < 0 or targets.max() >= outputs.shape[2]):
            raise DataError(
                f"symbol ids must be in 0..{outputs.shape[2] - 1}. Received ids from {int(targets.min())} to "
                f"{int(targets.max())}"
            )
        # CTC needs a frame per symbol and a blank between two equal neighbours ("ll" takes 3 frames)
        real = targets != BLANK_ID
        repeats = (real[:, 1:] & (targets[:, 1:] == targets[:, :-1])).sum(dim=1)
        needed = real.sum(dim=1) + repeats
        if len(targets) and int(needed.max()) > outputs.shape[1]:
            raise DataError(
                f"a transcript needing {int(needed.max())} output frames (its symbols and a blank between repeated "
                f"ones) cannot be read from {outputs.shape[1]}; lower the model's stride or give longer clips"
            )
        return targets

    def shown(self, spec: DataSpec, value: torch.Tensor) -> str:
        """Symbol ids as the text they spell."""
        return decode_ids(value, symbols_of(spec))

    def record(self, spec: DataSpec, predictions: Any, i: int) -> dict[str, Any]:
        """The transcript of example ``i`` and the model's confidence in it."""
        record = {"prediction": self.shown(spec, predictions.prediction[i])}
        confidence = getattr(predictions, "confidence", None)
        if confidence is not None:
            record["confidence"] = round(float(confidence[i]), 4)
        return record

    def details(self, context: TaskContext) -> None:
        """Per-speaker rates, the worst utterances, beam-search rates and the alignment figure."""
        transcription_details(context)


# ---------------------------------------------------------------------------------------------
# beam search


def _lexicon_prefixes(words: Iterable[Sequence[int]]) -> tuple[set[tuple[int, ...]], set[tuple[int, ...]]]:
    whole = {tuple(w) for w in words if w}
    prefixes = {w[:k] for w in whole for k in range(len(w) + 1)}
    return whole, prefixes


def beam_search(
    log_probs: torch.Tensor, beam: int = BEAM, words: Iterable[Sequence[int]] | None = None, prune: float = PRUNE
) -> list[int]:
    """CTC prefix beam search over one utterance's ``T x V`` log-probabilities.

    Each hypothesis keeps the probability of ending in a blank and in its last symbol, so paths that
    collapse to the same text are summed, not competed. With ``words``, a hypothesis may only spell
    words of the list: a partial word must begin some listed word, and a word must be complete when a
    space or the end of the utterance closes it.

    Args:
        log_probs: ``T x V`` log-probabilities (blank at 0, space at 1).
        beam: hypotheses kept after each frame.
        words: allowed words as symbol-id sequences (None: any spelling).
        prune: symbols below this probability in a frame are not tried.

    Returns:
        The most probable symbol ids.
    """
    whole, prefixes = _lexicon_prefixes(words) if words is not None else (None, None)
    log_prune = math.log(prune)

    def allowed(text: tuple[int, ...], symbol: int) -> bool:
        if prefixes is None:
            return True
        start = len(text) - text[::-1].index(SPACE_ID) if SPACE_ID in text else 0
        current = text[start:]
        if symbol == SPACE_ID:
            return current in whole
        return current + (symbol,) in prefixes

    def add(a: float, b: float) -> float:
        if a == -math.inf:
            return b
        if b == -math.inf:
            return a
        top = max(a, b)
        return top + math.log1p(math.exp(-abs(a - b)))

    beams: dict[tuple[int, ...], tuple[float, float]] = {
        (): (0.0, -math.inf)
    }  # text -> (ends in blank, ends in symbol)
    frames = log_probs.double().cpu().numpy()
    for frame in frames:
        candidates = np.flatnonzero(frame >= log_prune)
        if prefixes is not None:  # a peaky frame may leave no listed word alive: keep the blank and the runners-up
            candidates = np.union1d(candidates, np.append(np.argsort(frame)[-TOP_ALWAYS:], BLANK_ID))
        following: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for text, (p_blank, p_symbol) in beams.items():
            total = add(p_blank, p_symbol)
            for s in candidates:
                s = int(s)
                p = float(frame[s])
                if s == BLANK_ID:
                    entry = following[text]
                    entry[0] = add(entry[0], total + p)
                    continue
                last = text[-1] if text else None
                if s == last:  # a repeat without a blank between stays one symbol
                    entry = following[text]
                    entry[1] = add(entry[1], p_symbol + p)
                    if s == SPACE_ID:  # spaces merge: one after a blank still closes the same word
                        entry[1] = add(entry[1], p_blank + p)
                        continue
                    if not allowed(text, s):
                        continue
                    extended = following[text + (s,)]
                    extended[1] = add(extended[1], p_blank + p)
                    continue
                if s == SPACE_ID and not text:  # a leading space spells nothing: the empty text goes on
                    entry = following[text]
                    entry[0] = add(entry[0], total + p)
                    continue
                if not allowed(text, s):
                    continue
                extended = following[text + (s,)]
                extended[1] = add(extended[1], total + p)
        ranked = sorted(following.items(), key=lambda item: add(*item[1]), reverse=True)
        beams = {text: (scores[0], scores[1]) for text, scores in ranked[:beam]}
    finals: dict[tuple[int, ...], float] = {}
    for text, scores in beams.items():
        stripped = text[:-1] if text and text[-1] == SPACE_ID else text
        if whole is not None and stripped and not allowed(stripped, SPACE_ID):
            continue  # the last word is unfinished
        finals[stripped] = add(finals.get(stripped, -math.inf), add(*scores))  # "a" and "a " are one text
    return list(max(finals, key=finals.__getitem__)) if finals else []


def training_words(targets: torch.Tensor) -> list[list[int]]:
    """The distinct words of the training transcripts, as symbol-id sequences."""
    found: set[tuple[int, ...]] = set()
    for row in references(targets):
        word: list[int] = []
        for symbol in [*row, SPACE_ID]:
            if symbol == SPACE_ID:
                if word:
                    found.add(tuple(word))
                word = []
            else:
                word.append(symbol)
    return [list(w) for w in sorted(found)]


# ---------------------------------------------------------------------------------------------
# details after training


def transcription_details(context: TaskContext) -> None:
    """Add per-utterance and per-speaker rates, the worst utterances and beam-search rates to the test results.

    ``results["test"]`` gains ``per_speaker`` (rates and utterances of each test speaker, worst
    first, when the data names speakers), ``worst`` (the utterances with the highest WER: index,
    file, speaker, reference, hypothesis, WER, CER), ``typical`` (a few utterances drawn at random) and
    ``beam_search`` (rates of prefix beam search without and with the training words as the only
    allowed words). Writes ``figures/alignment.png`` (spectrogram and symbol posteriors of test
    utterances).
    """
    from glassnet.figures import speech as drawing

    run, bundle, predictions, results = context.run, context.bundle, context.predictions, context.results
    spec = bundle.spec
    symbols = symbols_of(spec)
    inputs, targets = split_tensors(bundle.test)
    if len(targets) == 0:
        return
    test = results["test"]
    truth = references(targets)
    greedy = [row[row != BLANK_ID].tolist() for row in predictions.prediction]
    per = [error_rates([h], [r]) for h, r in zip(greedy, truth)]
    utterances = utterances_of(bundle.test) or [{"file": None, "speaker": None} for _ in truth]

    def text(ids: Sequence[int]) -> str:
        return decode_ids(ids, symbols)

    speakers: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(utterances):
        if u.get("speaker"):
            speakers[u["speaker"]].append(i)
    if speakers:
        table = {
            name: {**error_rates([greedy[i] for i in rows], [truth[i] for i in rows]), "utterances": len(rows)}
            for name, rows in speakers.items()
        }
        test["per_speaker"] = {
            name: {k: round(v, 6) if isinstance(v, float) else v for k, v in scores.items()}
            for name, scores in sorted(table.items(), key=lambda item: -item[1]["wer"])
        }
    order = sorted(range(len(per)), key=lambda i: (-per[i]["wer"], -per[i]["cer"], i))

    def entry(i: int) -> dict[str, Any]:
        return {
            "index": i,
            "file": utterances[i].get("file"),
            "speaker": utterances[i].get("speaker"),
            "reference": text(truth[i]),
            "hypothesis": text(greedy[i]),
            "wer": round(per[i]["wer"], 4),
            "cer": round(per[i]["cer"], 4),
        }

    test["worst"] = [entry(i) for i in order[:WORST] if per[i]["wer"] > 0]
    rng = np.random.default_rng(context.seed)
    typical = sorted(rng.choice(len(per), size=min(WORST, len(per)), replace=False).tolist())
    test["typical"] = [entry(int(i)) for i in typical]
    for item in test["worst"][:LISTENED] + test["typical"][:LISTENED]:
        item["audio"] = _keep_clip(run, item["file"], f"utterance-{item['index']}")
    log_probs = predictions.outputs.float().log_softmax(dim=2)
    lexicon = training_words(split_tensors(bundle.train)[1])
    free = [beam_search(lp) for lp in log_probs]
    constrained = [beam_search(lp, words=lexicon) for lp in log_probs]
    test["beam_search"] = {
        "beam": BEAM,
        "free": {k: round(v, 6) for k, v in error_rates(free, truth).items()},
        "word_list": {k: round(v, 6) for k, v in error_rates(constrained, truth).items()},
        "word_list_size": len(lexicon),
    }
    shown = [order[0], order[len(order) // 2]] if len(order) > 1 else order[:1]
    drawing.alignment(
        [inputs[i, 0].numpy() for i in shown],
        [log_probs[i].exp().numpy() for i in shown],
        [text(truth[i]) for i in shown],
        [text(greedy[i]) for i in shown],
        list(symbols),
        run.figure("alignment"),
    )


def _keep_clip(run: Any, source: str | None, name: str) -> str | None:
    """Copy a test clip into ``figures/<name>.wav`` (16-bit PCM at its own rate) so the report can embed it;
    the path relative to the run, or None when the clip is unknown, unreadable or too large."""
    from scipy.io import wavfile

    from glassnet.data.audio import read_wav
    from glassnet.errors import GlassnetError
    from glassnet.runs import write_bytes

    if not source:
        return None
    try:
        wave, rate = read_wav(source)
    except GlassnetError:
        return None
    if 2 * len(wave) > MAX_CLIP_BYTES:
        return None
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16))
    target = run.figures_dir / f"{name}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(target, buffer.getvalue())
    return str(target.relative_to(run.path))


# ---------------------------------------------------------------------------------------------
# classical baselines


def _pooled(x: torch.Tensor) -> np.ndarray:
    """A spectrogram summarised over time, whatever its length: each mel band's mean and spread, and
    its mean over each third of the clip's loud frames (a coarse template of what is said when)."""
    mel = x[:, 0].double()  # N x M x T
    loudness = mel.mean(dim=1)
    thirds = []
    for k in range(len(mel)):
        loud = torch.nonzero(loudness[k] > loudness[k].median()).flatten()
        if len(loud) < 3:
            loud = torch.arange(mel.shape[2])
        thirds.append(torch.cat([mel[k][:, part].mean(dim=1) for part in torch.tensor_split(loud, 3)]))
    return torch.cat([mel.mean(dim=2), mel.std(dim=2), torch.stack(thirds)], dim=1).numpy()


@register_baselines("transcribe")
def _transcribe_baselines(spec: DataSpec, bundle: Any) -> list[Baseline]:
    """The most common training transcript, and the transcript of the nearest training utterance."""

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return error_rates(predict(x), references(y))

    def most_common(x: torch.Tensor, y: torch.Tensor) -> Any:
        rows, counts = torch.unique(y, dim=0, return_counts=True)
        best = rows[int(counts.argmax())]
        best = best[best != BLANK_ID].tolist()
        return lambda inputs: [best] * len(inputs)

    def nearest(x: torch.Tensor, y: torch.Tensor) -> Any:
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1)).fit(_pooled(x), np.arange(len(y)))
        texts = references(y)
        return lambda inputs: [texts[int(i)] for i in model.predict(_pooled(inputs))]

    return [
        Baseline("most_common", "the most common training transcript for every clip", most_common, True, score),
        Baseline(
            "nearest_utterance",
            "the transcript of the nearest training clip (1-NN on each mel band's mean, spread and thirds over time)",
            nearest,
            False,
            score,
        ),
    ]
