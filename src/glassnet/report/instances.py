"""Report section of an instance-segmentation (``instances``) run: instances over test images, mask AP per class."""

from __future__ import annotations

from glassnet.report.card import ReportContext, fmt, section, table
from glassnet.report.validate import ANY, Each

_INSTANCES = {"test": {"per_class_ap?": Each(ANY), "map?": ANY, "map_50?": ANY, "map_75?": ANY, "miou?": ANY}}


@section("Instances", order=51)
def instances(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or result.get("task") != "instances":
        return None
    test = ctx.check("train", result, _INSTANCES)["test"]
    parts = []
    figure = ctx.figure("instances", "test images with their true and predicted instances")
    if figure:
        parts.append(
            '<h3>Instances</h3><p class="note">The first test images, their true instances and the predicted ones '
            f"scoring at least 0.3, each instance in its own colour and named by its class.</p>{figure}"
        )
    curves = ctx.figure("instance_pr", "precision against recall at mask IoU 0.5, one line per class")
    if curves:
        parts.append(f"<h3>Precision and recall</h3>{curves}")
    per_class = test.get("per_class_ap") or {}
    if per_class:
        rows = [[name, fmt(ap) if ap is not None else "no test instances"] for name, ap in per_class.items()]
        parts.append(
            '<h3>Mask average precision per class</h3><p class="note">COCO mask AP averaged over IoU thresholds '
            f"0.50 to 0.95 (pycocotools). All classes: mAP {fmt(test.get('map'))}, AP at IoU 0.5 "
            f"{fmt(test.get('map_50'))}, at 0.75 {fmt(test.get('map_75'))}; mean IoU of the per-pixel classes "
            f"{fmt(test.get('miou'))}.</p>" + table(["class", "mask AP"], rows)
        )
    return "".join(parts) or None
