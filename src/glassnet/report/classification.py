"""Report sections of classifiers: per-class scores, and how far the probabilities can be trusted.

They read what ``Classification.details`` adds to ``results/train.json``: ``test.per_class`` for
every classifier, ``test.roc`` and ``test.precision_recall`` for binary tasks and
``test.calibration`` (the reliability diagram's bins). A run trained before those records existed
simply has no such section.
"""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, num, section, table
from glassnet.report.validate import ANY, NUMBER, NUMBERS, Each

_SCORES = {"precision": NUMBER, "recall": NUMBER, "f1": NUMBER, "support": NUMBER}
_PER_CLASS = {"test": {"per_class?": Each(_SCORES)}}
_ROC = {"positive_class": ANY, "auc": NUMBER, "fpr": NUMBERS, "tpr": NUMBERS}
_PRECISION_RECALL = {
    "positive_class": ANY, "average_precision": NUMBER, "positive_rate": NUMBER, "recall": NUMBERS,
    "precision": NUMBERS,
}  # fmt: skip
_CALIBRATION = {
    "score": ANY, "event": ANY, "bins": NUMBER, "ece": NUMBER, "mean_predicted": NUMBERS, "observed": NUMBERS,
    "count": NUMBERS,
}  # fmt: skip
_CURVES = {
    "test": {"roc?": _ROC, "precision_recall?": _PRECISION_RECALL, "calibration?": _CALIBRATION},
    "data?": {"class_names?": [ANY]},
}
_OPEN_ROWS = 20  # a per-class table with more rows starts collapsed
_MIDDLE_EXAMPLES = 5  # a bin away from 0 and 1 is described in words when it holds at least this many


@section("Per-class results", order=51)
def per_class(ctx: ReportContext) -> str | None:
    """Precision, recall, F1 and support of each class on the test split, the weakest class named."""
    if ctx.control:
        return None
    result = ctx.result("train", {"test?": {}})
    if not result or not isinstance(result.get("test"), dict) or not result["test"].get("per_class"):
        return None
    scores = ctx.check("train", result, _PER_CLASS)["test"]["per_class"]
    rows = [
        [name, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), fmt(v["support"])] for name, v in scores.items()
    ]
    note = (
        '<p class="note">Precision: of the test examples predicted as the class, the share that belong to it. '
        "Recall: of the test examples of the class, the share predicted as it. F1: their harmonic mean. "
        "Support: the test examples of the class.</p>"
    )
    scores_table = table(["class", "precision", "recall", "F1", "support"], rows)
    if len(rows) > _OPEN_ROWS:  # a long table is there to look up, not to read through
        scores_table = f"<details><summary>All {len(rows)} classes</summary>{scores_table}</details>"
    return note + _weakest(scores) + scores_table


def _weakest(scores: dict[str, dict[str, Any]]) -> str:
    """One sentence on the class with the lowest F1, when the classes differ."""
    rated = [(v["f1"], name, v) for name, v in scores.items() if isinstance(v["f1"], (int, float))]
    if len(rated) < 2 or len({r[0] for r in rated}) == 1:
        return ""
    f1, name, v = min(rated, key=lambda r: r[0])
    return (
        f"<p>The weakest class is <b>{esc(name)}</b> (F1 {num(f1, '.3f')}): the model finds "
        f"{num(v['recall'], '.0%')} of its {num(v['support'], ',')} test examples, and "
        f"{num(v['precision'], '.0%')} of the examples it calls {esc(name)} are.</p>"
    )


@section("Ranking and calibration", order=53)
def ranking_and_calibration(ctx: ReportContext) -> str | None:
    """ROC and precision-recall curves (binary tasks) and the reliability of the probabilities."""
    if ctx.control:
        return None
    result = ctx.result("train", {"test?": {}})
    if not result or not isinstance(result.get("test"), dict):
        return None
    test = result["test"]
    if not any(test.get(k) for k in ("roc", "precision_recall", "calibration")):
        return None
    ctx.check("train", result, _CURVES)
    names = (result.get("data") or {}).get("class_names") or []
    roc, curve, calibration = test.get("roc"), test.get("precision_recall"), test.get("calibration")
    parts = [_tiles(roc, curve, calibration)]
    if roc:
        parts.append(_roc_words(roc, names))
    if curve:
        parts.append(_precision_recall_words(curve))
    figures = ctx.figure("roc_curve", "ROC curve on the test split") + ctx.figure(
        "precision_recall_curve", "precision-recall curve on the test split"
    )
    if figures:
        parts.append(f'<div style="display:flex;flex-wrap:wrap;gap:12px">{figures}</div>')
    if calibration:
        parts.append("<h3>Calibration</h3>" + _calibration_words(calibration))
        diagram = ctx.figure("reliability", "reliability diagram: observed frequency against predicted probability")
        parts.append(diagram or _bin_table(calibration))
    return "".join(parts)


def _tiles(roc: Any, curve: Any, calibration: Any) -> str:
    tiles = []
    if roc:
        tiles.append(("ROC AUC", roc["auc"]))
    if curve:
        tiles.append(("average precision", curve["average_precision"]))
    if calibration:
        tiles.append(("ECE", calibration["ece"]))
    return (
        '<div class="metrics">'
        + "".join(f'<div class="metric">{esc(k)}<b>{num(v, ".3f")}</b></div>' for k, v in tiles)
        + "</div>"
    )


def _roc_words(roc: dict[str, Any], names: list[Any]) -> str:
    positive = roc["positive_class"]
    others = [n for n in names if n != positive]
    negative = others[0] if len(names) == 2 and others else "the other class"
    return (
        f"<p><b>ROC AUC {num(roc['auc'], '.3f')}</b>: given one test example of {esc(positive)} and one of "
        f"{esc(negative)} drawn at random, the model gives the {esc(positive)} example the higher probability of "
        f"{esc(positive)} {num(roc['auc'], '.0%')} of the time (0.5 is chance, 1 is a perfect ranking). The curve "
        f"shows, for every threshold on that probability, the share of {esc(positive)} examples caught (true "
        "positive rate) against the share of the others wrongly flagged (false positive rate).</p>"
    )


def _precision_recall_words(curve: dict[str, Any]) -> str:
    positive = curve["positive_class"]
    return (
        f"<p><b>Average precision {num(curve['average_precision'], '.3f')}</b>: the precision (share of flagged "
        f"examples that are {esc(positive)}) averaged over every recall level as the threshold falls. A model "
        f"that knows nothing scores the share of {esc(positive)} examples in the test split, "
        f"{num(curve['positive_rate'], '.3f')} (the dashed line).</p>"
    )


def _calibration_words(calibration: dict[str, Any]) -> str:
    bins, score, event = calibration["bins"], calibration["score"], calibration["event"]
    text = (
        f"<p><b>Expected calibration error (ECE) {num(calibration['ece'], '.3f')}</b>, over {num(bins, 'g')} "
        f"equal-width bins of the {esc(score)}: the gap between the {esc(score)} the model gives and how often "
        f"the examples given it were {esc(event)}, averaged over the bins weighted by their examples (0 is "
        "perfectly calibrated).</p>"
    )
    described = _described_bins(calibration)
    if described:
        text += "<p>" + " ".join(_bin_sentence(calibration, i) for i in described) + "</p>"
    return text


def _filled(calibration: dict[str, Any]) -> list[int]:
    """Indices of the bins with examples and both means."""
    rows = zip(calibration["count"], calibration["mean_predicted"], calibration["observed"])
    return [i for i, (n, p, o) in enumerate(rows) if n and p is not None and o is not None]


def _described_bins(calibration: dict[str, Any]) -> list[int]:
    """The fullest bin, and the fullest bin away from 0 and 1 when it holds enough examples."""
    filled = _filled(calibration)
    if not filled:
        return []
    count = calibration["count"]
    chosen = [max(filled, key=lambda i: count[i])]
    bins = len(count)
    middle = [i for i in filled if 0 < i < bins - 1 and count[i] >= _MIDDLE_EXAMPLES and i not in chosen]
    if middle:
        chosen.append(max(middle, key=lambda i: count[i]))
    return chosen


def _bin_sentence(calibration: dict[str, Any], i: int) -> str:
    bins = len(calibration["count"])
    n, p, o = calibration["count"][i], calibration["mean_predicted"][i], calibration["observed"][i]
    return (
        f"Of the {num(n, ',')} test examples given a {esc(calibration['score'])} between {i / bins:.1f} and "
        f"{(i + 1) / bins:.1f} (on average {num(p, '.2f')}), {num(o, '.2f')} were {esc(calibration['event'])}."
    )


def _bin_table(calibration: dict[str, Any]) -> str:
    """The reliability diagram's numbers, when its figure is absent (multi-class runs draw none)."""
    bins = len(calibration["count"])
    rows = [
        [
            f"{i / bins:.1f}-{(i + 1) / bins:.1f}",
            num(calibration["mean_predicted"][i], ".3f"),
            num(calibration["observed"][i], ".3f"),
            num(calibration["count"][i], ","),
        ]
        for i in _filled(calibration)
    ]
    if not rows:
        return ""
    header = [str(calibration["score"]), f"mean {calibration['score']}", f"share {calibration['event']}", "examples"]
    return "<details><summary>Reliability per bin</summary>" + table(header, rows) + "</details>"
