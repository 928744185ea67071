"""The ``detect`` task (object detection): CenterNet's losses, COCO mAP, boxes in and out.

Targets are ``N x M x 5`` rows ``class, x1, y1, x2, y2`` with coordinates as shares of the image's
width and height (0 to 1) and class -1 on unused rows. Models (``centernet``) return
``N x (K + 4) x h x w``: one heatmap logit per class and cell, then the box's ``log w``, ``log h``
(as shares of the image) and the centre's offset ``dx``, ``dy`` within its cell.

Losses (Zhou et al., 2019): the penalty-reduced focal loss on the heatmaps against a Gaussian
around each centre (its spread a sixth of the box's side, at least half a cell), and L1 losses of
the sizes and offsets at the centre cells, each normalised by the number of objects.

Metrics are COCO's, from ``pycocotools`` (the reference implementation; torchmetrics' wrapper of it
needs torchvision, which does not install beside this torch): ``map`` (AP averaged over IoU
thresholds 0.50 to 0.95), ``map_50`` and ``map_75``, on the ``TOP_K`` highest-scoring peaks of each
image. Peaks are the cells that are the maximum of their 3x3 neighbourhood, CenterNet's replacement
of non-maximum suppression.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glassnet.data.bundle import split_tensors
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.tasks import Task, TaskContext, register_task

TOP_K = 20  # detections kept per image for scoring (COCO's limit is 100)
SHOWN_SCORE = 0.3  # detections at least this confident are drawn and printed by predict
SCALE = 1000.0  # coordinates handed to pycocotools: shares of the image times this
SHOWN_IMAGES = 8


@register_task
class Detection(Task):
    """Boxes with a class, scored by COCO mean average precision.

    Metrics:
        ``loss``: the focal heatmap loss plus the size and offset L1 losses.
        ``map``: COCO AP averaged over IoU 0.50:0.05:0.95 and the classes.
        ``map_50``, ``map_75``: AP at IoU 0.5 and 0.75.
    """

    name = "detect"
    monitor_modes = {"loss": "min", "map": "max", "map_50": "max", "map_75": "max"}
    headline_metrics = ("map_50", "map")
    # the kept weights: the heatmap loss on validation rises while mAP still improves (seen on fashion-detection)
    default_monitor = "val/map"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        classes = self.check(outputs, targets)
        heat, box = outputs[:, :classes].float(), outputs[:, classes:].float()
        h, w = heat.shape[-2:]
        target, cells, size, offset, valid = encode(targets.float(), classes, h, w)
        positive = target.eq(1).float()
        log_p, log_not_p = F.logsigmoid(heat), F.logsigmoid(-heat)
        p = heat.sigmoid()
        focal = -(positive * (1 - p) ** 2 * log_p + (1 - positive) * (1 - target) ** 4 * p**2 * log_not_p).sum()
        count = valid.sum().clamp_min(1)
        n, m = valid.shape
        flat = box.flatten(2)  # N x 4 x (h w)
        picked = flat.gather(2, cells.reshape(n, 1, m).expand(n, 4, m)).transpose(1, 2)  # N x M x 4
        regression = (picked[..., :2] - size).abs().sum(-1) + (picked[..., 2:] - offset).abs().sum(-1)
        return focal / positive.sum().clamp_min(1) + (regression * valid).sum() / count

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        self.check(outputs, targets)
        scores = coco_metrics(self.decode(outputs)["prediction"], targets, outputs.shape[1] - 4)
        return {"loss": self.loss(outputs, targets).item(), **{k: scores[k] for k in ("map", "map_50", "map_75")}}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``prediction``: ``N x TOP_K x 6`` rows ``x1, y1, x2, y2, score, class`` (shares of the image);
        ``confidence``: each image's best score."""
        detections = decode(outputs.float(), outputs.shape[1] - 4)
        return {"prediction": detections, "confidence": detections[:, 0, 4]}

    def check(self, outputs: torch.Tensor, targets: torch.Tensor) -> int:
        """The number of classes, after checking the shapes and the target classes.

        Raises:
            DataError: outputs are not ``N x (K + 4) x h x w``, targets not ``N x M x 5``, or a class is out of range.
        """
        if outputs.ndim != 4 or outputs.shape[1] < 5 or targets.ndim != 3 or targets.shape[-1] != 5:
            raise DataError(
                "detect needs N x (classes + 4) x h x w outputs and N x M x 5 targets (class, x1, y1, x2, y2). "
                f"Received: outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        if len(outputs) != len(targets):
            raise DataError(f"{len(outputs)} outputs for {len(targets)} targets")
        classes = outputs.shape[1] - 4
        labels = targets[..., 0]
        if bool(((labels >= classes) | ((labels < 0) & (labels != -1))).any()):
            raise DataError(f"box classes must be in 0..{classes - 1}, or -1 for unused rows")
        return classes

    def details(self, context: TaskContext) -> None:
        """Per-class AP, test images with their true and predicted boxes, and the figure."""
        detection_details(context)

    def comparison_metric(self, bundle: Any) -> str:
        return "map_50"

    evidence = "the class the model detects most surely (its strongest heatmap logit)"

    def class_evidence(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each class's strongest heatmap logit over the image (its most confident detection)."""
        return outputs[:, : outputs.shape[1] - 4].float().flatten(2).amax(dim=2)

    def main_class(self, targets: torch.Tensor, spec: DataSpec) -> torch.Tensor:
        """The class of each image's largest true box (-1 for an image without boxes)."""
        if targets.shape[1] == 0:
            return torch.full((len(targets),), -1, dtype=torch.long)
        area = (targets[..., 3] - targets[..., 1]) * (targets[..., 4] - targets[..., 2])
        area = torch.where(targets[..., 0] >= 0, area, torch.full_like(area, -1.0))
        largest = targets[torch.arange(len(targets)), area.argmax(dim=1), 0].long()
        return torch.where(area.amax(dim=1) > 0, largest, torch.full_like(largest, -1))

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """One record per image: its detections scoring at least ``SHOWN_SCORE``, boxes in pixels."""
        records = []
        for i in range(len(inputs)):
            record: dict[str, Any] = {"prediction": shown_boxes(spec, predictions.prediction[i])}
            if truth is not None:
                rows = truth[i][truth[i][:, 0] >= 0]
                record["true"] = [_box_record(spec, row[1:5], int(row[0])) for row in rows]
            records.append(record)
        return records


def _box_record(spec: DataSpec, box: torch.Tensor, cls: int, score: float | None = None) -> dict[str, Any]:
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    height, width = spec.input_shape[-2:]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    record: dict[str, Any] = {"class": names[cls] if 0 <= cls < len(names) else cls}
    if score is not None:
        record["score"] = round(score, 4)
    record["box"] = [round(float(v), 1) for v in box.float() * scale]
    return record


def shown_boxes(spec: DataSpec, detections: torch.Tensor) -> list[dict[str, Any]]:
    """Detections of one image scoring at least ``SHOWN_SCORE``: class, score, box ``[x1, y1, x2, y2]`` in pixels."""
    kept = detections[detections[:, 4] >= SHOWN_SCORE]
    return [_box_record(spec, row[:4], int(row[5]), float(row[4])) for row in kept]


def encode(
    targets: torch.Tensor, classes: int, h: int, w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CenterNet's training targets on an ``h x w`` grid.

    Returns:
        ``(heatmap, cells, size, offset, valid)``: the Gaussian heatmaps ``N x K x h x w`` (exactly 1
        at each centre cell), the flat index of each box's centre cell ``N x M``, the ``log w, log h``
        targets ``N x M x 2``, the offsets of the centres in their cells ``N x M x 2``, and which rows
        are boxes (float ``N x M``).
    """
    labels, x1, y1, x2, y2 = targets.unbind(-1)
    valid = labels >= 0
    cx, cy = (x1 + x2) / 2 * w, (y1 + y2) / 2 * h
    bw, bh = (x2 - x1).clamp_min(1e-4), (y2 - y1).clamp_min(1e-4)
    ix, iy = cx.floor().clamp(0, w - 1), cy.floor().clamp(0, h - 1)
    sigma_x, sigma_y = (bw * w / 6).clamp_min(0.5), (bh * h / 6).clamp_min(0.5)
    xs = torch.arange(w, device=targets.device, dtype=targets.dtype)
    ys = torch.arange(h, device=targets.device, dtype=targets.dtype)
    gx = torch.exp(-((xs - ix[..., None]) ** 2) / (2 * sigma_x[..., None] ** 2))  # N x M x w
    gy = torch.exp(-((ys - iy[..., None]) ** 2) / (2 * sigma_y[..., None] ** 2))  # N x M x h
    gauss = gy[..., :, None] * gx[..., None, :] * valid[..., None, None]  # N x M x h x w
    onehot = F.one_hot(labels.clamp_min(0).long(), classes).to(targets.dtype) * valid[..., None]  # N x M x K
    heatmap = (onehot[..., None, None] * gauss[:, :, None]).amax(dim=1)  # N x K x h x w
    cells = (iy * w + ix).long()
    size = torch.stack([bw.log(), bh.log()], dim=-1)
    offset = torch.stack([cx - ix, cy - iy], dim=-1)
    return heatmap, cells, size, offset, valid.to(targets.dtype)


def decode(outputs: torch.Tensor, classes: int, top_k: int = TOP_K) -> torch.Tensor:
    """The ``top_k`` strongest heatmap peaks of each image as boxes: ``N x top_k x 6``
    (``x1, y1, x2, y2, score, class``; coordinates as shares of the image, clipped to it). A peak in a cell
    next to a stronger peak of its class scores 0 (it is not a detection)."""
    heat = outputs[:, :classes].sigmoid()
    n, _, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    k = min(top_k, classes * h * w)
    scores, index = peaks.flatten(1).topk(k, dim=1)
    cls, cell = index // (h * w), index % (h * w)
    # a peak of a class next to a stronger one of that class is the same object: 8-bit outputs have flat tops,
    # every cell of which passes the 3x3 test (kept strongest first; a dropped peak drops nothing)
    row, column = cell // w, cell % w
    close = (row[:, :, None] - row[:, None, :]).abs() <= 1
    close &= (column[:, :, None] - column[:, None, :]).abs() <= 1
    close &= cls[:, :, None] == cls[:, None, :]
    kept = torch.ones_like(scores, dtype=torch.bool)
    for j in range(1, k):
        kept[:, j] &= ~(close[:, j, :j] & kept[:, :j]).any(dim=1)
    scores = scores * kept
    box = outputs[:, classes:].flatten(2).gather(2, cell[:, None, :].expand(n, 4, k))  # N x 4 x k
    cx = ((cell % w).to(box.dtype) + box[:, 2]) / w
    cy = ((cell // w).to(box.dtype) + box[:, 3]) / h
    bw, bh = box[:, 0].clamp(max=2.0).exp(), box[:, 1].clamp(max=2.0).exp()
    corners = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1).clamp(0, 1)
    return torch.cat([corners, scores[..., None], cls[..., None].to(corners.dtype)], dim=-1)


def _pycocotools() -> Any:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise ConfigError(
            "detection metrics need pycocotools: pip install 'glassnet[detection]' (or pip install pycocotools)"
        ) from exc
    return COCO, COCOeval


def coco_metrics(detections: torch.Tensor, targets: torch.Tensor, classes: int) -> dict[str, Any]:
    """COCO ``map``, ``map_50``, ``map_75`` and ``per_class`` AP (None for a class without test boxes).

    Args:
        detections: ``N x k x 6`` rows ``x1, y1, x2, y2, score, class`` (shares of the image); rows
            with class -1 or score 0 are not detections.
        targets: ``N x M x 5`` rows ``class, x1, y1, x2, y2``, class -1 for unused rows.
        classes: the number of classes.
    """
    _pycocotools()  # the one-line advice when it is missing, before any work
    truth = targets.detach().float().cpu().numpy()
    found = detections.detach().float().cpu().numpy()
    annotations = []
    for i, rows in enumerate(truth):
        for label, x1, y1, x2, y2 in rows[rows[:, 0] >= 0]:
            w, h = (x2 - x1) * SCALE, (y2 - y1) * SCALE
            box = [x1 * SCALE, y1 * SCALE, w, h]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i, "category_id": int(label), "bbox": box, "area": w * h,
                 "iscrowd": 0}
            )  # fmt: skip
    results = [
        {"image_id": i, "category_id": int(c), "bbox": [x1 * SCALE, y1 * SCALE, (x2 - x1) * SCALE, (y2 - y1) * SCALE],
         "score": float(s)}
        for i, rows in enumerate(found)
        for x1, y1, x2, y2, s, c in rows
        if s > 0 and c >= 0
    ]  # fmt: skip
    empty = {"map": 0.0, "map_50": 0.0, "map_75": 0.0, "per_class": [None] * classes, "pr_50": [None] * classes}
    if not annotations:
        raise DataError("no target boxes to score detections against")
    if not results:
        return empty
    return coco_evaluate([{"id": i} for i in range(len(truth))], annotations, results, classes, "bbox")


def coco_evaluate(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], results: list[dict[str, Any]], classes: int,
    iou_type: str,
) -> dict[str, Any]:  # fmt: skip
    """pycocotools' evaluation (``iou_type`` ``bbox`` or ``segm``, category ids ``0..classes-1``, up to 100
    detections per image): ``map``, ``map_50``, ``map_75``, ``per_class`` AP (None for a class without true
    objects) and ``pr_50``, each class's precision at COCO's 101 recall points at IoU 0.5 (None likewise)."""
    coco_class, coco_eval = _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = coco_class()
        ground.dataset = {
            "images": images,
            "categories": [{"id": c} for c in range(classes)],
            "annotations": annotations,
        }
        ground.createIndex()
        evaluation = coco_eval(ground, ground.loadRes(results), iou_type)
        evaluation.params.maxDets = [1, 10, 100]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # IoU x recall x class, all areas, 100 detections
    per_class: list[float | None] = []
    curves: list[list[float] | None] = []
    for c in range(classes):
        values = precision[:, :, c]
        values = values[values > -1]
        per_class.append(float(values.mean()) if values.size else None)
        at_50 = precision[0, :, c]  # COCO's 101 recall points at IoU 0.5
        curves.append([round(float(v), 4) for v in at_50] if (at_50 > -1).all() else None)
    stats = evaluation.stats
    return {"map": max(float(stats[0]), 0.0), "map_50": max(float(stats[1]), 0.0),
            "map_75": max(float(stats[2]), 0.0), "per_class": per_class, "pr_50": curves}  # fmt: skip


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (``A x 4``) with every box in ``b`` (``B x 4``), ``x1, y1, x2, y2``."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def detection_details(context: TaskContext) -> None:
    """``results["test"]["per_class_ap"]`` (COCO AP of each class), ``figures/detections.png`` (test
    images with their true boxes dashed and the predicted ones scoring >= ``SHOWN_SCORE``) and
    ``figures/detection_pr.png`` (each class's precision-recall curve at IoU 0.5, COCO's 101 points)."""
    from glassnet.figures import segmentation as drawing

    bundle, results = context.bundle, context.results
    spec = bundle.spec
    inputs, targets = split_tensors(bundle.test)
    if len(targets) == 0:
        return
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    detections = context.predictions.prediction
    scores = coco_metrics(detections, targets, spec.num_outputs)
    results["test"]["per_class_ap"] = {
        name: None if ap is None else round(ap, 6) for name, ap in zip(names, scores["per_class"])
    }
    curves = {name: curve for name, curve in zip(names, scores["pr_50"]) if curve is not None}
    if curves:
        drawing.precision_recall(curves, context.run.figure("detection_pr"))
    shown = list(range(min(SHOWN_IMAGES, len(inputs))))
    drawing.box_grid(
        inputs[shown].numpy(),
        [t[t[:, 0] >= 0].numpy() for t in targets[shown]],
        [d[d[:, 4] >= SHOWN_SCORE].numpy() for d in detections[shown]],
        names,
        context.run.figure("detections"),
    )


@register_baselines("detect")
def _detect_baselines(spec: DataSpec, bundle: Any) -> list[Baseline]:
    """Otsu's threshold + connected components as proposals, each classified by a logistic regression."""
    if spec.modality != "image":
        return []
    from glassnet.train.segmentation import components

    def boxes_of(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[-2:]
        found = components(image)
        if not found:
            return np.zeros((0, 4)), np.zeros((0, 0))
        rows = []
        for pixels, _ in found:
            ys, xs = np.nonzero(pixels)
            rows.append([xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height])
        return np.array(rows), np.stack([f for _, f in found])

    def otsu(x: torch.Tensor, y: torch.Tensor) -> Any:
        from sklearn.linear_model import LogisticRegression

        features, labels = [], []
        for image, rows in zip(x.numpy(), y.numpy()):
            boxes, feats = boxes_of(image)
            truth = rows[rows[:, 0] >= 0]
            if not len(boxes):
                continue
            overlap = _iou(boxes, truth[:, 1:5]) if len(truth) else np.zeros((len(boxes), 0))
            for k in range(len(boxes)):
                best = int(overlap[k].argmax()) if overlap.shape[1] else -1
                matched = best >= 0 and overlap[k, best] >= 0.5
                features.append(feats[k])
                labels.append(int(truth[best, 0]) if matched else spec.num_outputs)  # K: not an object
        if len(set(labels)) >= 2:
            classifier = LogisticRegression(max_iter=300).fit(np.array(features), np.array(labels))
            known, proba = list(classifier.classes_), classifier.predict_proba
        else:  # every proposal had one label (or there were none): that label, with certainty
            known = [labels[0] if labels else spec.num_outputs]
            proba = lambda feats: np.ones((len(feats), 1))  # noqa: E731

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(len(inputs), TOP_K, 6)
            out[:, :, 5] = -1
            for i, image in enumerate(inputs.numpy()):
                boxes, feats = boxes_of(image)
                if not len(boxes):
                    continue
                probabilities = proba(feats)
                rows = []
                for k, p in enumerate(probabilities):
                    for j, cls in enumerate(known):
                        if cls < spec.num_outputs:  # every class hypothesis of a component, scored, as detectors do
                            rows.append([*boxes[k], p[j], cls])
                rows.sort(key=lambda r: -r[4])
                if rows:
                    kept = torch.tensor(rows[:TOP_K], dtype=torch.float32)
                    out[i, : len(kept)] = kept
            return out

        return predict

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        scores = coco_metrics(predict(x), y, spec.num_outputs)
        return {k: scores[k] for k in ("map", "map_50", "map_75")}

    return [
        Baseline(
            "otsu_components",
            "Otsu's threshold, connected components as boxes, each classified by a logistic regression on its pixels",
            otsu,
            score=score,
        ),
        Baseline(
            "sliding_window",
            "square windows at three sizes learnt from the training boxes, each classified by a logistic regression "
            "on its pixels (object class or background), overlapping detections suppressed",
            lambda x, y: SlidingWindow(spec.num_outputs).fit(x, y).predict,
            score=score,
        ),
    ]


class SlidingWindow:
    """The classical detector: a window slides over the image at a few sizes and a classifier names what it holds.

    The window heights are the quartiles of the training boxes' heights (as shares of the image),
    their width the median aspect ratio of the boxes, the stride a quarter of the window. Each
    window is resized to ``PATCH x PATCH`` pixels and classified by a logistic regression over the
    object classes and *background*. It is fitted on the true boxes (their class, each jittered by
    up to an eighth of its size) and on random windows that overlap no box much (IoU < 0.3:
    background), three per object; then once more with hard negatives added: the windows of
    ``MINED`` training images that it scored highest for an object although they overlap no box
    much (the bootstrapping of Sung and Poggio's face detector). Every window's object-class
    probabilities are its detections; greedy non-maximum suppression per class keeps the best of
    any group overlapping by more than ``NMS_IOU``.

    Args:
        classes: the object classes of the detection task.
        seed: seed of the jitter and of the background windows.
    """

    PATCH = 12
    NMS_IOU = 0.3
    NEGATIVES = 3  # background windows per object
    MINED = 300  # training images searched for hard negatives

    def __init__(self, classes: int, seed: int = 0) -> None:
        self.classes, self.rng = classes, np.random.default_rng(seed)
        self.sizes: list[float] = [0.5]  # window heights, as shares of the image
        self.aspect = 1.0  # window width over height

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> SlidingWindow:
        from sklearn.linear_model import LogisticRegression

        boxes = [rows[rows[:, 0] >= 0].numpy() for rows in y]
        truths = np.concatenate([*boxes, np.zeros((0, 5))])
        if len(truths):
            heights = truths[:, 4] - truths[:, 2]
            self.aspect = float(np.median((truths[:, 3] - truths[:, 1]) / np.maximum(heights, 1e-6)))
            self.sizes = sorted({round(float(q), 3) for q in np.quantile(heights, [0.25, 0.5, 0.75])})
        windows, labels = [], []
        for image, truth in zip(x, boxes):
            for row in truth:
                w, h = row[3] - row[1], row[4] - row[2]
                jitter = self.rng.uniform(-1 / 8, 1 / 8, size=2) * (w, h)
                cx, cy = (row[1] + row[3]) / 2 + jitter[0], (row[2] + row[4]) / 2 + jitter[1]
                windows.append((image, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
                labels.append(int(row[0]))
            for _ in range(self.NEGATIVES * max(len(truth), 1)):
                h = float(self.rng.choice(self.sizes))
                w = min(h * self.aspect, 1.0)
                x1, y1 = self.rng.uniform(0, max(1 - w, 1e-6)), self.rng.uniform(0, max(1 - h, 1e-6))
                box = np.array([[x1, y1, x1 + w, y1 + h]])
                if len(truth) and _iou(box, truth[:, 1:5]).max() >= 0.3:
                    continue
                windows.append((image, box[0].tolist()))
                labels.append(self.classes)  # background
        features = np.stack([self._patch(image, box) for image, box in windows])
        self.model = LogisticRegression(max_iter=500).fit(features, np.array(labels))
        hard = self._hard_negatives(x[: self.MINED], boxes[: self.MINED], budget=len(features) // 2)
        if len(hard):
            features = np.concatenate([features, hard])
            labels += [self.classes] * len(hard)
            self.model = LogisticRegression(max_iter=500).fit(features, np.array(labels))
        return self

    def _hard_negatives(self, x: torch.Tensor, boxes: list[np.ndarray], budget: int) -> np.ndarray:
        """Patches of the windows most confidently taken for an object that overlap no true box much."""
        windows = self.windows()
        grid = self._grid(windows)
        background = list(self.model.classes_).index(self.classes) if self.classes in self.model.classes_ else None
        found: list[tuple[float, np.ndarray]] = []
        for image, truth in zip(x, boxes):
            patches = F.grid_sample(image[None].float().expand(len(windows), -1, -1, -1), grid, align_corners=False)
            flat = patches.flatten(1).numpy()
            probabilities = self.model.predict_proba(flat)
            objectness = 1 - probabilities[:, background] if background is not None else probabilities.max(axis=1)
            far = _iou(windows.numpy(), truth[:, 1:5]).max(axis=1) < 0.3 if len(truth) else np.ones(len(flat), bool)
            for k in np.argsort(-objectness)[:8]:
                if far[k] and objectness[k] > 0.5:
                    found.append((float(objectness[k]), flat[k]))
        found.sort(key=lambda item: -item[0])
        return np.stack([f for _, f in found[:budget]]) if found else np.zeros((0, x.shape[1] * self.PATCH**2))

    def _patch(self, image: torch.Tensor, box: list[float]) -> np.ndarray:
        """The window's pixels resized to ``PATCH x PATCH`` (bilinear sampling, zeros outside the image)."""
        grid = self._grid(torch.tensor([box], dtype=torch.float32))
        return F.grid_sample(image[None].float(), grid, align_corners=False).flatten().numpy()

    def _grid(self, boxes: torch.Tensor) -> torch.Tensor:
        """``B x PATCH x PATCH x 2`` sampling positions (grid_sample's -1..1) of windows given as shares."""
        steps = (torch.arange(self.PATCH, dtype=torch.float32) + 0.5) / self.PATCH
        xs = boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])  # B x P
        ys = boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # B x P x P x 2
        return grid * 2 - 1

    def windows(self) -> torch.Tensor:
        """Every window of every size, as shares of the image: ``W x 4``."""
        found = []
        for h in self.sizes:
            w = min(h * self.aspect, 1.0)
            for y1 in np.arange(0, max(1 - h, 0) + 1e-9, max(h / 4, 1e-3)):
                for x1 in np.arange(0, max(1 - w, 0) + 1e-9, max(w / 4, 1e-3)):
                    found.append([x1, y1, x1 + w, y1 + h])
        return torch.tensor(found, dtype=torch.float32)

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """``N x TOP_K x 6`` detections (``x1, y1, x2, y2, score, class``), as the detection task decodes them."""
        boxes = self.windows()
        grid = self._grid(boxes)
        known = list(self.model.classes_)
        out = torch.zeros(len(inputs), TOP_K, 6)
        out[:, :, 5] = -1
        for i, image in enumerate(inputs):
            patches = F.grid_sample(image[None].float().expand(len(boxes), -1, -1, -1), grid, align_corners=False)
            probabilities = self.model.predict_proba(patches.flatten(1).numpy())
            rows = []
            for j, cls in enumerate(known):
                if cls >= self.classes:
                    continue
                for k in _suppress(boxes.numpy(), probabilities[:, j], self.NMS_IOU):
                    rows.append([*boxes[k].tolist(), float(probabilities[k, j]), cls])
            rows.sort(key=lambda r: -r[4])
            if rows:
                kept = torch.tensor(rows[:TOP_K], dtype=torch.float32)
                out[i, : len(kept)] = kept
        return out


def _suppress(boxes: np.ndarray, scores: np.ndarray, threshold: float, keep: int = TOP_K) -> list[int]:
    """Greedy non-maximum suppression: the indices of the best boxes, none overlapping a better one by more
    than ``threshold`` (IoU), at most ``keep``."""
    order = list(np.argsort(-scores))
    kept: list[int] = []
    while order and len(kept) < keep:
        best = order.pop(0)
        kept.append(int(best))
        if order:
            overlap = _iou(boxes[best : best + 1], boxes[order])[0]
            order = [k for k, o in zip(order, overlap) if o <= threshold]
    return kept
