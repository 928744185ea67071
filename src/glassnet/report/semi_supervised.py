"""Report section of a run with an unlabelled pool (``data.labels_per_class``): labelled vs unlabelled use,
pseudo-label accuracy and coverage over training, and the confidence threshold's effect."""

from __future__ import annotations

from glassnet.report.card import ReportContext, key_values, num, section, table
from glassnet.report.validate import ANY, FLAG, NUMBER, TEXT

_ROW = {"threshold": NUMBER, "coverage": NUMBER, "pseudo_accuracy": ANY, "accuracy": ANY}
_SEMI = {
    "semi_supervised?": {
        "labels_per_class": ANY, "labelled": NUMBER, "unlabelled": NUMBER, "step": TEXT, "threshold": NUMBER,
        "uses_unlabelled": FLAG, "measured_on": NUMBER,
        "history": [{"epoch": ANY, "step": ANY, **_ROW}], "threshold_sweep": [_ROW],
    }
}  # fmt: skip


def _share(value: object) -> str:
    return num(value, ".1%")


@section("Semi-supervised learning", order=45)
def semi_supervised(ctx: ReportContext) -> str | None:
    result = ctx.result("train", _SEMI)
    semi = (result or {}).get("semi_supervised")
    if not semi:
        return None
    labelled, unlabelled = semi["labelled"], semi["unlabelled"]
    use = (
        f"trained with step {semi['step']!r} on both"
        if semi["uses_unlabelled"]
        else f"trained with step {semi['step']!r} on the labelled examples only (a supervised-only baseline); "
        "the pool was only measured"
    )
    per_class = f" ({semi['labels_per_class']} per class)" if semi.get("labels_per_class") else ""
    measured = semi.get("with_held_back_labels", semi["measured_on"])
    source = semi.get("unlabelled_source")
    pool = (
        f"{num(unlabelled, ',')} (their labels held back, used only to measure)"
        if not source
        else f"{num(unlabelled, ',')}, with the files of {source} (no labels: pseudo-label accuracy is measured "
        f"on the {num(measured, ',')} measured examples whose labels were held back, if any)"
    )
    facts = key_values(
        [
            ["labelled training examples", f"{num(labelled, ',')}{per_class}"],
            ["unlabelled pool", pool],
            ["labelled share", _share(labelled / max(1, labelled + unlabelled))],
            ["use", use],
            ["confidence threshold", num(semi["threshold"], ".2f")],
        ]
    )
    rows = [
        [row["epoch"], row["step"], _share(row["coverage"]), _share(row["pseudo_accuracy"]), _share(row["accuracy"])]
        for row in semi["history"]
    ]
    history = (
        f'<h3>Pseudo-labels over training</h3><p class="note">At each epoch end, on {num(semi["measured_on"], ",")} '
        "examples of the pool: coverage is the share whose confidence reaches the threshold, pseudo-label "
        "accuracy the share of those that match the held-back label, accuracy that of every prediction.</p>"
        + table(["epoch", "step", "coverage", "pseudo-label accuracy", "accuracy (all)"], rows)
    )
    sweep = ""
    if semi["threshold_sweep"]:
        rows = [
            [num(r["threshold"], ".2f"), _share(r["coverage"]), _share(r["pseudo_accuracy"])]
            for r in semi["threshold_sweep"]
        ]
        sweep = (
            '<h3>The threshold\'s effect</h3><p class="note">The final model on the same examples: a higher '
            "threshold keeps fewer pseudo-labels, usually more accurate ones.</p>"
            + table(["threshold", "coverage", "pseudo-label accuracy"], rows)
        )
    return facts + history + sweep
