"""Report section of a sequence-labelling (``tag``) run: per-tag scores, baselines and tagged examples."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, fmt, section, table
from glassnet.report.validate import ANY, Each

_SCORES = {"precision": ANY, "recall": ANY, "f1": ANY, "support": ANY}
_TAGGING = {
    "test": {"per_tag?": Each(_SCORES)},
    "baselines?": Each({"accuracy": ANY, "macro_f1": ANY, "sequence_accuracy": ANY}),
    "examples?": [{"index": ANY, "true": ANY, "predicted": ANY, "errors": ANY}],
}


@section("Sequence labelling", order=51)
def sequence_labelling(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "tag":
        return None
    test = ctx.check("train", result, _TAGGING)["test"]
    parts = []
    per_tag = test.get("per_tag") or {}
    if per_tag:
        rows = [
            [name, fmt(s["precision"]), fmt(s["recall"]), fmt(s["f1"]), fmt(s["support"])]
            for name, s in per_tag.items()
        ]
        parts.append(
            '<h3>Per tag</h3><p class="note">Over the tagged (non-padding) steps of the test split.</p>'
            + table(["tag", "precision", "recall", "F1", "steps"], rows)
        )
    baselines: dict[str, Any] = result.get("baselines") or {}
    if baselines:
        rows = [
            ["this model", fmt(test.get("accuracy")), fmt(test.get("macro_f1")), fmt(test.get("sequence_accuracy"))]
        ]
        for name, scores in baselines.items():
            what = (
                f"majority tag ({scores.get('tag')}) everywhere"
                if name == "majority"
                else scores.get("description", name)
            )
            rows.append([what, fmt(scores["accuracy"]), fmt(scores["macro_f1"]), fmt(scores["sequence_accuracy"])])
        parts.append(
            '<h3>Against baselines</h3><p class="note">Rules that need no learning, scored on the same steps.</p>'
            + table(["predictor", "token accuracy", "macro-F1", "sequences all right"], rows)
        )
    examples = result.get("examples") or []
    if examples:
        rows = [[e["index"], e["true"], e["predicted"], e["errors"]] for e in examples]
        parts.append(
            '<h3>Examples</h3><p class="note">Test rows with their true and predicted tags; half of them hold '
            "mistakes where there are any.</p>" + table(["test row", "true", "predicted", "wrong steps"], rows, 3)
        )
    return "".join(parts) or None
