"""Report section of a text-to-speech (``synthesize``) run: distortion, intelligibility and audio players."""

from __future__ import annotations

from glassnet.report.card import ReportContext, esc, fmt, section, table
from glassnet.report.transcription import _player
from glassnet.report.validate import ANY

_RATES = {"cer": ANY, "wer": ANY}
_JUDGED = {
    "sentences": ANY, "synthesised": _RATES, "recorded": _RATES, "recorded_vocoded": _RATES, "mcd_dtw": ANY,
    "word_concatenation?": _RATES, "word_concatenation_mcd_dtw?": ANY,
}  # fmt: skip
_SYNTHESIS = {
    "test": {
        "free_running?": {
            "sentences": ANY,
            "vocoder": ANY,
            "mcd_dtw": ANY,
            "judge": ANY,
            "baseline?": ANY,
            "all?": _JUDGED,
            "digits?": _JUDGED,
            "samples": [
                {"text": ANY, "heard": ANY, "mcd_dtw": ANY, "synthesised": ANY, "recorded": ANY},
            ],
        },
    },
}


@section("Speech synthesis", order=52)
def synthesis(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "synthesize":
        return None
    free = ctx.check("train", result, _SYNTHESIS)["test"].get("free_running")
    if not free:
        return None
    parts = [
        f'<p class="note">The test sentences, never read in training, spoken with the durations the model predicts '
        f"and turned into sound by the {esc(free['vocoder'])} vocoder. Mel cepstral distortion (MCD) compares each "
        "with its recording after dynamic time warping (dB, lower is better).</p>"
    ]
    rows = []
    for key, name in (("all", "every test sentence"), ("digits", "digit strings")):
        judged = free.get(key)
        if not judged:
            continue
        size = f" ({fmt(judged['sentences'])})"
        rows.append([f"model, {name}{size}", fmt(judged["mcd_dtw"]), *_rates(judged["synthesised"])])
        if judged.get("word_concatenation"):
            rows.append(
                [
                    f"word concatenation, {name}",
                    fmt(judged.get("word_concatenation_mcd_dtw")),
                    *_rates(judged["word_concatenation"]),
                ]
            )
        rows.append([f"recordings through the vocoder, {name}", "", *_rates(judged["recorded_vocoded"])])
        rows.append([f"recordings, {name}", "0", *_rates(judged["recorded"])])
    if rows:
        parts.append(
            f'<h3>Intelligibility</h3><p class="note">A recogniser ({esc(free["judge"])}) transcribes the synthesised '
            "sentences (lower is better). Beside the model: the classical baseline (recorded training words "
            "joined, through the same vocoder), and the recordings themselves with and without the vocoder, which "
            "show how much of the error is the recogniser's and how much the vocoder's.</p>"
            + table(["speech", "MCD (dB)", "CER", "WER"], rows)
        )
    else:
        parts.append(
            f"<p>Mel cepstral distortion over {fmt(free['sentences'])} test sentences: {fmt(free['mcd_dtw'])} dB.</p>"
        )
    samples = free.get("samples") or []
    if samples:
        body = "".join(
            "<tr>"
            f"<td>{esc(s['text'])}</td><td>{esc(s['heard']) if s['heard'] is not None else ''}</td>"
            f'<td class="num">{fmt(s["mcd_dtw"])}</td>'
            f"<td>{_player(ctx, s['synthesised'])}</td><td>{_player(ctx, s['recorded'])}</td>"
            "</tr>"
            for s in samples
        )
        head = "".join(f"<th>{h}</th>" for h in ("text", "the recogniser heard", "MCD (dB)", "synthesised", "recorded"))
        parts.append(f"<h3>Listen</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "".join(parts)


def _rates(rates: dict) -> list[str]:
    return [fmt(rates["cer"]), fmt(rates["wer"])]
