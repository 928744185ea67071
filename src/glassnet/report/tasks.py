"""Report sections of the training tasks: per-label results of multi-label runs, the LR range test."""

from __future__ import annotations

from glassnet.report.card import ReportContext, esc, fmt, num, section, table
from glassnet.report.validate import ANY, NUMBER, Each

_PER_LABEL = {"test": {"per_label?": Each({"precision": ANY, "recall": ANY, "f1": ANY, "support": ANY})}}
_LR_FINDER = {"suggestion?": NUMBER, "lrs?": [ANY], "stopped?": ANY}


@section("Per-label results", order=52)
def per_label(ctx: ReportContext) -> str | None:
    """Precision, recall, F1 and support of each label of a multi-label run, on the test split."""
    result = ctx.result("train")
    if not result or result.get("task") != "multilabel":
        return None
    if not ctx.check("train", result, _PER_LABEL)["test"].get("per_label"):
        return None
    rows = [
        [name, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), fmt(v["support"])]
        for name, v in result["test"]["per_label"].items()
    ]
    note = (
        '<p class="note">Each label is predicted present when its probability reaches 0.5; support counts '
        "the test examples that carry the label.</p>"
    )
    return note + table(["label", "precision", "recall", "F1", "support"], rows)


@section("Learning-rate range test", order=85)
def lr_finder(ctx: ReportContext) -> str | None:
    """The curve of ``glassnet train --find-lr`` and its suggestion, when the run has one."""
    result = ctx.result("lr_finder", _LR_FINDER)
    if not result:
        return None
    suggestion = result.get("suggestion")
    said = (
        f"suggested learning rate <b>{num(suggestion, '.3g')}</b>"
        if suggestion
        else "no suggestion (the loss never fell)"
    )
    note = (
        f'<p class="note">{len(result.get("lrs") or [])} training batches with the learning rate growing '
        f"exponentially ({esc(result.get('stopped', ''))}): {said}.</p>"
    )
    return note + ctx.figure("lr_finder", "training loss against learning rate")
