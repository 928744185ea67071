"""Report section of an object-detection (``detect``) run: boxes over test images, AP of each class."""

from __future__ import annotations

from glassnet.report.card import ReportContext, fmt, section, table
from glassnet.report.validate import ANY, Each

_DETECTION = {"test": {"per_class_ap?": Each(ANY), "map?": ANY, "map_50?": ANY, "map_75?": ANY}}


@section("Detection", order=51)
def detection(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "detect":
        return None
    test = ctx.check("train", result, _DETECTION)["test"]
    parts = []
    boxes = ctx.figure("detections", "test images with their true boxes dashed and the predicted boxes coloured")
    if boxes:
        parts.append(
            '<h3>Boxes</h3><p class="note">The first test images: true boxes dashed, predictions scoring at least '
            f"0.3 coloured by class with their score.</p>{boxes}"
        )
    curves = ctx.figure("detection_pr", "precision against recall at IoU 0.5, one line per class")
    if curves:
        parts.append(f"<h3>Precision and recall</h3>{curves}")
    per_class = test.get("per_class_ap") or {}
    if per_class:
        rows = [[name, fmt(ap) if ap is not None else "no test boxes"] for name, ap in per_class.items()]
        parts.append(
            '<h3>Average precision per class</h3><p class="note">COCO AP averaged over IoU thresholds 0.50 to 0.95 '
            f"(pycocotools). All classes: mAP {fmt(test.get('map'))}, AP at IoU 0.5 {fmt(test.get('map_50'))}, "
            f"at 0.75 {fmt(test.get('map_75'))}.</p>" + table(["class", "AP"], rows)
        )
    return "".join(parts) or None
