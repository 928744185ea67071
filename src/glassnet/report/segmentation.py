"""Report section of a semantic-segmentation (``segment``) run: per-class IoU, worst images, masks."""

from __future__ import annotations

from glassnet.report.card import ReportContext, fmt, section, table
from glassnet.report.validate import ANY, Each

_SCORES = {"iou": ANY, "dice": ANY, "precision": ANY, "recall": ANY, "pixels": ANY}
_SEGMENTATION = {
    "test": {
        "per_class_iou?": Each(_SCORES),
        "worst?": [{"index": ANY, "miou": ANY, "accuracy": ANY}],
        "image_miou_median?": ANY,
    },
}


@section("Segmentation", order=51)
def segmentation(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "segment":
        return None
    test = ctx.check("train", result, _SEGMENTATION)["test"]
    parts = []
    masks = ctx.figure("segmentation", "test images with their true and predicted masks, the worst first")
    if masks:
        median = test.get("image_miou_median")
        typical = f" The median test image scores a mean IoU of {fmt(median)}." if median is not None else ""
        parts.append(
            '<h3>Masks</h3><p class="note">Test images, their true mask and the predicted one: first those with '
            f"the lowest mean IoU, then typical ones.{typical}</p>{masks}"
        )
    per_class = test.get("per_class_iou") or {}
    if per_class:
        rows = [
            [name, fmt(s["iou"]), fmt(s["dice"]), fmt(s["precision"]), fmt(s["recall"]), fmt(s["pixels"])]
            for name, s in per_class.items()
        ]
        parts.append(
            '<h3>Per class</h3><p class="note">Over the labelled pixels of the test split; mean IoU averages the '
            "classes present in the truth or the prediction.</p>"
            + table(["class", "IoU", "Dice", "precision", "recall", "pixels"], rows)
        )
    worst = test.get("worst") or []
    if worst:
        rows = [[w["index"], fmt(w["miou"]), fmt(w["accuracy"])] for w in worst]
        parts.append("<h3>Worst test images</h3>" + table(["test image", "mean IoU", "pixel accuracy"], rows))
    return "".join(parts) or None
