"""The ``instances`` task (instance segmentation): each object's own mask and class, scored by COCO mask AP.

Inputs are images ``N x C x H x W``. Targets are int64 ``N x 2 x H x W``: the semantic mask (class
ids, 0 the background, ``IGNORE_INDEX`` where a pixel is not labelled), then the instance map (0 for
no instance, the same positive id on every pixel of one object). Models (``instance_unet``) return
``N x (K + 3) x H x W``: the K class logits, a heatmap logit of instance centres, and at every pixel
the offset (``dy``, ``dx``, in ``OFFSET_UNIT`` of the image's longer side) from the pixel to the
centre of its instance.

Grouping follows Panoptic-DeepLab (Cheng et al., 2020): the centres are the peaks of the heatmap (the
maxima of their 3x3 neighbourhood scoring at least ``CENTRE_SCORE``, at most ``TOP_K`` per image, none
within ``CENTRE_RADIUS`` pixels of a stronger one);
each pixel the class logits call foreground joins the centre nearest to where its offset points; an
instance's class is the majority class of its pixels. Two instances of one class whose pixels point,
on average, to places closer than ``MERGE`` times the square root of their summed areas are pieces of
one object (an open shape can hold several heatmap peaks) and are joined, strongest first. An
instance's score is its centre's score times the mean probability of its class over its pixels.

Losses: the cross-entropy of the classes over the labelled pixels; CenterNet's penalty-reduced focal
loss of the centre heatmap against a Gaussian around each instance's centroid (its spread a sixth of
the square root of the instance's area, at least one pixel), averaged over the pixels and weighted by
``CENTRE_WEIGHT``; the L1 loss of the offsets over the instance pixels, weighted by ``OFFSET_WEIGHT``.

Metrics are COCO's for masks, from ``pycocotools`` (``iouType="segm"``): ``map`` (AP averaged over
IoU 0.50:0.05:0.95), ``map_50``, ``map_75``; and ``miou``, the mean IoU of the class logits alone
(as the ``segment`` task scores them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glassnet.data.bundle import split_tensors
from glassnet.data.spec import DataSpec
from glassnet.errors import DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.detection import _pycocotools, coco_evaluate
from glassnet.train.segmentation import (
    IGNORE_INDEX,
    Segmentation,
    background_first,
    components,
    largest_class,
    mask_metrics,
    pixel_share_evidence,
)
from glassnet.train.tasks import Task, TaskContext, register_task

TOP_K = 20  # instances kept per image
CENTRE_SCORE = 0.1  # a heatmap peak scoring less is not a centre
CENTRE_RADIUS = 3.0  # pixels: a peak this close to a stronger one is the same centre
# two instances of one class whose pixels vote (pixel + offset) for centres closer than MERGE x sqrt(their summed
# areas) are one object; chosen on the validation scenes of digits- and fashion-instances (0.3 to 0.8 tried)
MERGE = 0.5
OFFSET_UNIT = 0.1  # offsets are predicted in tenths of the image's longer side
# weights of the centre and offset losses beside the class cross-entropy; the class logits share the decoder with
# the centre head, and heavier weights starved them (digits-instances, 10 epochs: offsets at 0.2 left the test
# mask mAP@.5 at 0.12 and the mean IoU at 0.19; at 0.02, 0.77 and 0.68)
CENTRE_WEIGHT = 10.0
OFFSET_WEIGHT = 0.02
SHOWN_SCORE = 0.3  # instances at least this confident are drawn and printed by predict
SHOWN_IMAGES = 8

Found = list[tuple[np.ndarray, int, float]]  # one image's instances: (pixel mask, class, score)


@register_task
class InstanceSegmentation(Task):
    """Each object's mask and class (see the module docstring).

    Metrics:
        ``loss``: class cross-entropy + centre focal loss + offset L1.
        ``map``: COCO mask AP averaged over IoU 0.50:0.05:0.95 and the object classes.
        ``map_50``, ``map_75``: mask AP at IoU 0.5 and 0.75.
        ``miou``: mean IoU of the per-pixel classes (instances aside).
    """

    name = "instances"
    monitor_modes = {"loss": "min", "map": "max", "map_50": "max", "map_75": "max", "miou": "max"}
    headline_metrics = ("map_50", "map", "miou")
    default_monitor = "val/map"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        classes = self.check(outputs, targets)
        outputs = outputs.float()
        semantic, instance = targets[:, 0].long(), targets[:, 1].long()
        class_loss = F.cross_entropy(outputs[:, :classes], semantic, ignore_index=IGNORE_INDEX)
        heatmap, offsets, inside, _ = encode(instance, outputs.shape[-2:])
        heat = outputs[:, classes]
        positive = heatmap.eq(1).float()
        p = heat.sigmoid()
        focal = -(
            positive * (1 - p) ** 2 * F.logsigmoid(heat)
            + (1 - positive) * (1 - heatmap) ** 4 * p**2 * F.logsigmoid(-heat)
        ).mean()
        error = (outputs[:, classes + 1 :] - offsets).abs().sum(dim=1)
        offset_loss = (error * inside).sum() / inside.sum().clamp_min(1)
        return class_loss + CENTRE_WEIGHT * focal + OFFSET_WEIGHT * offset_loss

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        classes = self.check(outputs, targets)
        scores = coco_mask_metrics(instances_of(self.decode(outputs)), truth_of(targets), classes)
        semantic = mask_metrics(outputs[:, :classes].argmax(dim=1), targets[:, 0], classes, IGNORE_INDEX)
        return {
            "loss": self.loss(outputs, targets).item(),
            **{k: scores[k] for k in ("map", "map_50", "map_75")},
            "miou": semantic["miou"],
        }

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``prediction``: int64 ``N x 2 x H x W``, each instance's class on its pixels, then the instance
        ids (1 to ``TOP_K``, 0 for none); ``confidence``: ``N x TOP_K``, the score of instance id ``k`` at
        ``k - 1`` (0 where there is none)."""
        prediction, scores = group(outputs.float())
        return {"prediction": prediction, "confidence": scores}

    def check(self, outputs: torch.Tensor, targets: torch.Tensor) -> int:
        """The number of classes, after checking shapes and class ids.

        Raises:
            DataError: outputs are not ``N x (K + 3) x H x W``, targets not ``N x 2 x H x W`` of the same
                N, H, W, or a class id is out of range.
        """
        if (
            outputs.ndim != 4
            or outputs.shape[1] < 4
            or targets.ndim != 4
            or targets.shape[1] != 2
            or targets.shape[0] != outputs.shape[0]
            or targets.shape[2:] != outputs.shape[2:]
        ):
            raise DataError(
                "instances needs N x (classes + 3) x H x W outputs and N x 2 x H x W targets (the semantic mask, "
                f"then the instance map) of the same N, H and W. Received: outputs {tuple(outputs.shape)}, "
                f"targets {tuple(targets.shape)}"
            )
        classes = outputs.shape[1] - 3
        labelled = targets[:, 0][targets[:, 0] != IGNORE_INDEX]
        if len(labelled) and (int(labelled.min()) < 0 or int(labelled.max()) >= classes):
            raise DataError(
                f"mask class ids must be in 0..{classes - 1} (or {IGNORE_INDEX} for unlabelled pixels). "
                f"Received ids from {int(labelled.min())} to {int(labelled.max())}"
            )
        return classes

    def details(self, context: TaskContext) -> None:
        """Per-class mask AP and a figure of test images with their true and predicted instances."""
        instance_details(context)

    evidence = Segmentation.evidence

    def class_evidence(self, outputs: torch.Tensor) -> torch.Tensor:
        """The class logits' ``log mean_pixels p_k`` (the centre heatmap and offsets left aside)."""
        return pixel_share_evidence(outputs[:, : outputs.shape[1] - 3])

    def main_class(self, targets: torch.Tensor, spec: DataSpec) -> torch.Tensor:
        """The object class covering most labelled pixels of each semantic mask (the targets' first channel)."""
        return largest_class(targets[:, 0], spec.num_outputs, self.background_classes(spec))

    def background_classes(self, spec: DataSpec) -> int:
        """1 when the first class is named ``background``, else 0."""
        return background_first(spec)

    def comparison_metric(self, bundle: Any) -> str:
        return "map_50"

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """One record per image: its instances scoring at least ``SHOWN_SCORE`` (class, score, box in
        pixels, pixel count), and the true instances with ``truth``."""
        found = instances_of({"prediction": predictions.prediction, "confidence": predictions.confidence})
        true = truth_of(truth) if truth is not None else None
        records = []
        for i in range(len(inputs)):
            record: dict[str, Any] = {
                "prediction": [_record(spec, m, c, s) for m, c, s in found[i] if s >= SHOWN_SCORE]
            }
            if true is not None:
                record["true"] = [_record(spec, m, c) for m, c, _ in true[i]]
            records.append(record)
        return records


def _record(spec: DataSpec, mask: np.ndarray, cls: int, score: float | None = None) -> dict[str, Any]:
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    ys, xs = np.nonzero(mask)
    record: dict[str, Any] = {"class": names[cls] if 0 <= cls < len(names) else cls}
    if score is not None:
        record["score"] = round(float(score), 4)
    record["box"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    record["pixels"] = int(mask.sum())
    return record


def _grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(height, device=device, dtype=torch.float32)[:, None].expand(height, width)
    xs = torch.arange(width, device=device, dtype=torch.float32)[None, :].expand(height, width)
    return ys, xs


def encode(instance: torch.Tensor, size: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The centre and offset targets of instance maps ``N x H x W``.

    Returns:
        ``(heatmap, offsets, inside, count)``: the Gaussian centre heatmaps ``N x H x W`` (exactly 1 at
        the pixel nearest each centroid), the offsets ``N x 2 x H x W`` from each pixel to its
        instance's centroid (in ``OFFSET_UNIT`` of the longer side), which pixels belong to an
        instance (float ``N x H x W``) and the number of instances.
    """
    n, height, width = instance.shape
    ids = instance.clamp_min(0)
    most = int(ids.max()) + 1 if ids.numel() else 1
    ys, xs = _grid(height, width, instance.device)
    flat = (torch.arange(n, device=instance.device)[:, None, None] * most + ids).reshape(-1)
    area = torch.bincount(flat, minlength=n * most).float().reshape(n, most)
    sum_y = torch.bincount(flat, weights=ys.expand(n, -1, -1).reshape(-1), minlength=n * most).reshape(n, most)
    sum_x = torch.bincount(flat, weights=xs.expand(n, -1, -1).reshape(-1), minlength=n * most).reshape(n, most)
    cy, cx = sum_y / area.clamp_min(1), sum_x / area.clamp_min(1)
    present = area > 0
    present[:, 0] = False  # id 0: no instance
    unit = OFFSET_UNIT * max(height, width)
    picked_y, picked_x = cy.gather(1, ids.reshape(n, -1)), cx.gather(1, ids.reshape(n, -1))
    offsets = torch.stack(
        [(picked_y.reshape(n, height, width) - ys) / unit, (picked_x.reshape(n, height, width) - xs) / unit], dim=1
    )
    inside = (instance > 0).float()
    # the Gaussian of each instance, its peak moved to the pixel nearest the centroid
    py, px = cy.round(), cx.round()
    sigma = (area.sqrt() / 6).clamp_min(1.0)
    gy = torch.exp(-((ys[None, None] - py[..., None, None]) ** 2) / (2 * sigma[..., None, None] ** 2))
    gx = torch.exp(-((xs[None, None] - px[..., None, None]) ** 2) / (2 * sigma[..., None, None] ** 2))
    gauss = gy * gx * present[..., None, None]
    heatmap = gauss.amax(dim=1) if most > 1 else torch.zeros(n, height, width, device=instance.device)
    return heatmap, offsets * inside[:, None], inside, present.sum().float()


def group(outputs: torch.Tensor, top_k: int = TOP_K) -> tuple[torch.Tensor, torch.Tensor]:
    """Instances from raw outputs ``N x (K + 3) x H x W`` (see the module docstring).

    Returns:
        ``(prediction, scores)``: int64 ``N x 2 x H x W`` (instance class on its pixels, instance id
        1..top_k or 0) and ``N x top_k`` scores of the ids (0 where there is none).
    """
    n, channels, height, width = outputs.shape
    classes = channels - 3
    probabilities = outputs[:, :classes].softmax(dim=1)
    semantic = probabilities.argmax(dim=1)
    heat = outputs[:, classes].sigmoid()
    peaks = heat * (F.max_pool2d(heat[:, None], 3, stride=1, padding=1)[:, 0] == heat)
    k = min(top_k, height * width)
    centre_scores, cells = peaks.flatten(1).topk(k, dim=1)
    centre_y, centre_x = (cells // width).float(), (cells % width).float()
    # a peak within CENTRE_RADIUS of a stronger one (or of an equal one found first: a flat top, common once the
    # outputs are quantised to 8 bits) is the same centre
    close = (centre_y[:, :, None] - centre_y[:, None, :]) ** 2 + (centre_x[:, :, None] - centre_x[:, None, :]) ** 2
    close = close <= CENTRE_RADIUS**2
    valid = centre_scores >= CENTRE_SCORE
    for j in range(1, k):  # greedy, strongest first: a suppressed peak suppresses nothing
        valid[:, j] &= ~(close[:, j, :j] & valid[:, :j]).any(dim=1)
    ys, xs = _grid(height, width, outputs.device)
    unit = OFFSET_UNIT * max(height, width)
    point_y = (ys + outputs[:, classes + 1] * unit).reshape(n, 1, -1)
    point_x = (xs + outputs[:, classes + 2] * unit).reshape(n, 1, -1)
    distance = (point_y - centre_y[..., None]) ** 2 + (point_x - centre_x[..., None]) ** 2  # N x k x HW
    distance = distance.masked_fill(~valid[..., None], float("inf"))
    nearest = distance.argmin(dim=1)  # N x HW
    foreground = (semantic.reshape(n, -1) != 0) & valid.any(dim=1, keepdim=True)
    slot = torch.arange(n, device=outputs.device)[:, None] * k + nearest
    instance_class, pixels = _classes(slot, semantic.reshape(n, -1), foreground, n, k, classes)
    # two pieces of one object: their pixels point (pixel + offset) to centres close together
    voted = torch.zeros(2, n * k, device=outputs.device)
    voted[0].index_add_(0, slot[foreground], point_y[:, 0][foreground])
    voted[1].index_add_(0, slot[foreground], point_x[:, 0][foreground])
    voted = voted.reshape(2, n, k) / pixels.clamp_min(1)
    owner = _merge(voted, pixels, instance_class, valid & (pixels > 0))
    nearest = owner.gather(1, nearest)
    slot = torch.arange(n, device=outputs.device)[:, None] * k + nearest
    instance_class, pixels = _classes(slot, semantic.reshape(n, -1), foreground, n, k, classes)
    pixel_class = instance_class.gather(1, nearest)  # N x HW
    agreement = probabilities.reshape(n, classes, -1).gather(1, pixel_class[:, None])[:, 0]
    mean_probability = torch.zeros(n * k, device=outputs.device)
    mean_probability.index_add_(0, slot[foreground], agreement[foreground])
    mean_probability = mean_probability.reshape(n, k) / pixels.clamp_min(1)
    alive = valid & (pixels > 0)
    scores = torch.where(alive, centre_scores * mean_probability, torch.zeros_like(centre_scores))
    member = foreground & alive.gather(1, nearest)
    ids = torch.where(member, nearest + 1, torch.zeros_like(nearest))
    labels = torch.where(member, pixel_class, torch.zeros_like(pixel_class))
    prediction = torch.stack([labels, ids], dim=1).reshape(n, 2, height, width)
    return prediction, scores


def _classes(
    slot: torch.Tensor, semantic: torch.Tensor, foreground: torch.Tensor, n: int, k: int, classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each instance's class (the majority of its foreground pixels' classes) and its pixel count, ``N x k``."""
    votes = torch.zeros(n * k * classes, device=slot.device)
    index = (slot * classes + semantic)[foreground]
    votes.index_add_(0, index, torch.ones_like(index, dtype=votes.dtype))
    votes = votes.reshape(n, k, classes)
    return votes.argmax(dim=2), votes.sum(dim=2)


def _merge(voted: torch.Tensor, pixels: torch.Tensor, classes: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """``N x k``: the instance each one joins (itself, or a stronger one of its class whose pixels' voted centre
    lies within ``MERGE`` times the square root of their summed areas), strongest first."""
    n, k = pixels.shape
    owner = torch.arange(k, device=pixels.device).repeat(n, 1)
    centre_y, centre_x, area, alive = voted[0].clone(), voted[1].clone(), pixels.clone(), alive.clone()
    rows = torch.arange(n, device=pixels.device)
    for j in range(1, k):
        distance = (centre_y[:, :j] - centre_y[:, j : j + 1]) ** 2 + (centre_x[:, :j] - centre_x[:, j : j + 1]) ** 2
        joins = alive[:, :j] & alive[:, j : j + 1] & (classes[:, :j] == classes[:, j : j + 1])
        joins &= distance <= MERGE**2 * (area[:, :j] + area[:, j : j + 1])
        found = joins.any(dim=1)
        if not bool(found.any()):
            continue
        picked, i = rows[found], joins[found].float().argmax(dim=1)  # the strongest that qualifies
        total = area[picked, i] + area[picked, j]
        for centre in (centre_y, centre_x):
            centre[picked, i] = (centre[picked, i] * area[picked, i] + centre[picked, j] * area[picked, j]) / total
        area[picked, i] = total
        owner[picked, j] = i
        alive[picked, j] = False
    return owner


def instances_of(decoded: dict[str, torch.Tensor]) -> list[Found]:
    """Per image, ``(pixel mask, class, score)`` of each decoded instance."""
    prediction = decoded["prediction"].cpu().numpy()
    scores = decoded["confidence"].float().cpu().numpy()
    found: list[Found] = []
    for labels, ids, row in zip(prediction[:, 0], prediction[:, 1], scores):
        image = []
        for k in np.unique(ids[ids > 0]):
            mask = ids == k
            image.append((mask, int(labels[mask][0]), float(row[k - 1])))
        found.append(image)
    return found


def truth_of(targets: torch.Tensor) -> list[Found]:
    """Per image, ``(pixel mask, class, 1.0)`` of each true instance; its class is the majority of its labelled
    pixels (an instance without labelled pixels is left out)."""
    array = targets.cpu().numpy()
    found: list[Found] = []
    for semantic, ids in zip(array[:, 0], array[:, 1]):
        image = []
        for k in np.unique(ids[ids > 0]):
            mask = ids == k
            labels = semantic[mask]
            labels = labels[labels >= 0]
            if len(labels):
                image.append((mask, int(np.bincount(labels).argmax()), 1.0))
        found.append(image)
    return found


def coco_mask_metrics(found: list[Found], truth: list[Found], classes: int) -> dict[str, Any]:
    """COCO mask ``map``, ``map_50``, ``map_75``, ``per_class`` AP (None for a class without test instances) and
    ``pr_50``, each class's precision at COCO's 101 recall points at IoU 0.5 (None without test instances).

    Args:
        found: per image, the predicted ``(mask, class, score)``.
        truth: per image, the true ``(mask, class, _)``.
        classes: the number of classes (class 0, the background, has no instances).

    Raises:
        DataError: the lists differ in length, or no image has a true instance.
    """
    _pycocotools()  # the one-line advice when it is missing, before the import below
    from pycocotools import mask as rle

    if len(found) != len(truth):
        raise DataError(f"{len(found)} predicted images for {len(truth)} true ones")

    def encoded(mask: np.ndarray) -> dict[str, Any]:
        return rle.encode(np.asfortranarray(mask.astype(np.uint8)))

    annotations = []
    for i, image in enumerate(truth):
        for mask, cls, _ in image:
            code = encoded(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cls, "segmentation": code,
                                "area": float(mask.sum()), "bbox": list(rle.toBbox(code)), "iscrowd": 0})  # fmt: skip
    if not annotations:
        raise DataError("no true instances to score predicted instances against")
    results = [
        {"image_id": i, "category_id": cls, "segmentation": encoded(mask), "score": score}
        for i, image in enumerate(found)
        for mask, cls, score in image
        if score > 0
    ]
    per_class_none = [None] * classes
    if not results:
        return {"map": 0.0, "map_50": 0.0, "map_75": 0.0, "per_class": per_class_none, "pr_50": per_class_none}
    shape = next(mask for image in truth for mask, _, _ in image).shape
    images = [{"id": i, "height": shape[0], "width": shape[1]} for i in range(len(truth))]
    return coco_evaluate(images, annotations, results, classes, "segm")


def instance_details(context: TaskContext) -> None:
    """``results["test"]["per_class_ap"]`` (COCO mask AP of each class), ``figures/instances.png`` (test
    images, their true instances and the predicted ones scoring >= ``SHOWN_SCORE``) and
    ``figures/instance_pr.png`` (each class's precision-recall curve at mask IoU 0.5)."""
    from glassnet.figures import segmentation as drawing

    bundle, results = context.bundle, context.results
    spec = bundle.spec
    inputs, targets = split_tensors(bundle.test)
    if len(targets) == 0:
        return
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    predictions = context.predictions
    found = instances_of({"prediction": predictions.prediction, "confidence": predictions.confidence})
    truth = truth_of(targets)
    scores = coco_mask_metrics(found, truth, spec.num_outputs)
    results["test"]["per_class_ap"] = {
        name: None if ap is None else round(ap, 6) for name, ap in zip(names, scores["per_class"]) if name != names[0]
    }
    curves = {name: curve for name, curve in zip(names, scores["pr_50"]) if curve is not None}
    if curves:
        drawing.precision_recall(curves, context.run.figure("instance_pr"))
    shown = list(range(min(SHOWN_IMAGES, len(inputs))))
    drawing.instance_grid(
        inputs[shown].numpy(),
        [truth[i] for i in shown],
        [[f for f in found[i] if f[2] >= SHOWN_SCORE] for i in shown],
        names,
        context.run.figure("instances"),
    )


@register_baselines("instances")
def _instance_baselines(spec: DataSpec, bundle: Any) -> list[Baseline]:
    """Otsu's threshold + connected components as instances, each classified by a logistic regression."""
    if spec.modality != "image":
        return []

    def otsu(x: torch.Tensor, y: torch.Tensor) -> Any:
        from sklearn.linear_model import LogisticRegression

        truth = truth_of(y)
        features, labels = [], []
        for image, objects in zip(x.numpy(), truth):
            for pixels, feature in components(image):
                overlaps = [(m & pixels).sum() / (m | pixels).sum() for m, _, _ in objects]
                best = int(np.argmax(overlaps)) if overlaps else -1
                features.append(feature)
                labels.append(objects[best][1] if best >= 0 and overlaps[best] >= 0.5 else 0)  # 0: not an object
        if len(set(labels)) < 2:
            known, proba = [labels[0] if labels else 0], lambda f: np.ones((len(f), 1))
        else:
            classifier = LogisticRegression(max_iter=300).fit(np.array(features), np.array(labels))
            known, proba = list(classifier.classes_), classifier.predict_proba

        def predict(inputs: torch.Tensor) -> list[Found]:
            out: list[Found] = []
            for image in inputs.numpy():
                found = components(image)
                image_found: Found = []
                if found:
                    for (pixels, _), p in zip(found, proba(np.stack([f for _, f in found]))):
                        # every class hypothesis of a component, scored, as detectors do
                        image_found += [(pixels, int(c), float(p[j])) for j, c in enumerate(known) if c != 0]
                out.append(sorted(image_found, key=lambda f: -f[2])[: TOP_K * 3])
            return out

        return predict

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        scores = coco_mask_metrics(predict(x), truth_of(y), spec.num_outputs)
        return {k: scores[k] for k in ("map", "map_50", "map_75")}

    return [
        Baseline(
            "otsu_components",
            "Otsu's threshold, each connected component an instance, classified by a logistic regression on its pixels",
            otsu,
            score=score,
        )
    ]
