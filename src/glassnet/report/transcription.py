"""Report section of a speech-recognition (``transcribe``) run: error rates, decoders, speakers, worst utterances."""

from __future__ import annotations

import base64

from glassnet.report.card import ReportContext, esc, fmt, section, table
from glassnet.report.validate import ANY, Each

_RATES = {"wer": ANY, "cer": ANY, "sentence_accuracy": ANY}
_UTTERANCE = {
    "index": ANY, "file?": ANY, "speaker?": ANY, "reference": ANY, "hypothesis": ANY, "wer": ANY, "cer": ANY,
    "audio?": ANY,
}  # fmt: skip
_TRANSCRIPTION = {
    "test": {
        "wer?": ANY,
        "cer?": ANY,
        "sentence_accuracy?": ANY,
        "per_speaker?": Each({**_RATES, "utterances": ANY}),
        "worst?": [_UTTERANCE],
        "typical?": [_UTTERANCE],
        "beam_search?": {"beam": ANY, "free": _RATES, "word_list": _RATES, "word_list_size": ANY},
    },
}
MOST_SPEAKERS = 12  # rows of the per-speaker table (the worst speakers first)


@section("Speech recognition", order=51)
def transcription(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "transcribe":
        return None
    test = ctx.check("train", result, _TRANSCRIPTION)["test"]
    parts = []
    beam = test.get("beam_search")
    if beam:
        rows = [
            ["greedy (best path)", fmt(test.get("wer")), fmt(test.get("cer")), fmt(test.get("sentence_accuracy"))],
            [f"beam search ({beam['beam']} beams)", *(fmt(beam["free"][k]) for k in _RATES)],
            [
                f"beam search, training words only ({fmt(beam['word_list_size'])} words)",
                *(fmt(beam["word_list"][k]) for k in _RATES),
            ],
        ]
        parts.append(
            '<h3>Decoders</h3><p class="note">Word and character error rates on the test split (lower is better); '
            "the word list allows only words that occur in the training transcripts.</p>"
            + table(["decoder", "WER", "CER", "sentences exact"], rows)
        )
    speakers = test.get("per_speaker") or {}
    if speakers:
        rows = [
            [name, fmt(s["wer"]), fmt(s["cer"]), fmt(s["utterances"])]
            for name, s in list(speakers.items())[:MOST_SPEAKERS]
        ]
        more = (
            f" ({len(speakers) - MOST_SPEAKERS} more speakers in results/train.json)"
            if len(speakers) > MOST_SPEAKERS
            else ""
        )
        parts.append(
            f'<h3>Per speaker</h3><p class="note">Test speakers, never heard in training, the hardest first{more}.</p>'
            + table(["speaker", "WER", "CER", "utterances"], rows)
        )
    alignment = ctx.figure("alignment", "spectrograms of test utterances over the probability of each symbol in time")
    if alignment:
        parts.append(
            '<h3>What the model heard, and when</h3><p class="note">The log-mel spectrogram of the worst and of a '
            "typical test utterance above the probability of each character at each output frame; red letters "
            f"mark where the greedy decoder emits a character.</p>{alignment}"
        )
    for key, title in (("worst", "Worst test utterances"), ("typical", "Typical test utterances")):
        items = test.get(key) or []
        if items:
            parts.append(f"<h3>{title}</h3>" + _utterances(ctx, items))
    return "".join(parts) or None


def _utterances(ctx: ReportContext, items: list[dict]) -> str:
    rows = []
    for item in items:
        player = _player(ctx, item.get("audio"))
        rows.append(
            "<tr>"
            f"<td>{esc(item['reference'])}</td><td>{esc(item['hypothesis']) or '<em>(nothing)</em>'}</td>"
            f'<td class="num">{fmt(item["wer"])}</td><td>{esc(item.get("speaker") or "")}</td><td>{player}</td>'
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("reference", "transcribed", "WER", "speaker", "listen"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _player(ctx: ReportContext, relative: str | None) -> str:
    """An ``<audio>`` player of a clip the run keeps, inlined as a data URI ('' when there is none)."""
    if not relative:
        return ""
    path = ctx.run.path / relative
    if not ctx.own(path):
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'
