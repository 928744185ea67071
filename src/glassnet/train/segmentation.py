"""The ``segment`` task (semantic segmentation): one class per pixel, scored by IoU and Dice.

Inputs are images ``N x C x H x W``; targets are class ids ``N x H x W`` (0 is usually the
background) with ``ignore_index`` (-100, PyTorch's default; 255 in mask files) where a pixel is not
labelled; models return logits ``N x K x H x W``. Unlabelled pixels count in no loss and no metric.

Metrics are computed from one confusion matrix over every labelled pixel of the split (as
torchmetrics' ``multiclass_jaccard_index`` does with ``average="macro"``): ``miou`` averages the
IoU of each class over the classes present in the targets or the predictions, so a class absent
from both neither helps nor hurts.

The classical baseline is Otsu's threshold with connected components: each component of the
bright foreground is one object, classified by a logistic regression on its shape and pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glassnet.data.bundle import split_tensors
from glassnet.data.spec import DataSpec
from glassnet.errors import DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.tagging import tag_confusion  # counts over the labelled positions, any shape
from glassnet.train.tasks import Task, TaskContext, register_task

IGNORE_INDEX = -100
WORST = 8  # test images shown in the report, those with the lowest IoU first
CROP = 12  # side of a connected component's crop for the baseline's classifier
MIN_AREA = 4  # components smaller than this (pixels) are left to the background


@register_task
class Segmentation(Task):
    """One class per pixel, scored over the labelled pixels.

    Metrics:
        ``loss``: mean cross-entropy per labelled pixel (nats).
        ``accuracy``: share of labelled pixels whose class is right (pixel accuracy).
        ``miou``: intersection over union of each class, averaged over the classes present in the
            targets or the predictions.
        ``dice``: Dice coefficient (F1 of the pixels) of each class, averaged likewise.

    Args:
        ignore_index: the target id of unlabelled pixels.
    """

    name = "segment"
    monitor_modes = {"loss": "min", "accuracy": "max", "miou": "max", "dice": "max"}
    headline_metrics = ("miou", "accuracy")
    default_monitor = "val/miou"  # the kept weights: the epoch users would pick, not the lowest pixel loss
    ignore_index = IGNORE_INDEX

    def __init__(self, ignore_index: int | None = None) -> None:
        if ignore_index is not None:
            self.ignore_index = ignore_index

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the labelled pixels."""
        self.align(outputs, targets)
        return F.cross_entropy(outputs, targets.long(), ignore_index=self.ignore_index)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``, ``accuracy``, ``miou`` and ``dice`` (see the class docstring)."""
        self.align(outputs, targets)
        scores = mask_metrics(outputs.argmax(dim=1), targets, outputs.shape[1], self.ignore_index)
        return {"loss": self.loss(outputs.float(), targets).item(), **scores}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The most likely class of each pixel ``N x H x W`` and its probability."""
        confidence, prediction = outputs.float().softmax(dim=1).max(dim=1)
        return {"prediction": prediction, "confidence": confidence}

    def align(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets, checked: ``N x H x W`` class ids in range (or ignored) for ``N x K x H x W`` logits.

        Raises:
            DataError: the shapes disagree or a class id is out of range.
        """
        if outputs.ndim != 4 or targets.shape != (outputs.shape[0], *outputs.shape[2:]):
            raise DataError(
                "segment needs N x K x H x W logits and N x H x W class ids of the same N, H and W. Received: "
                f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        labelled = targets[targets != self.ignore_index]
        if len(labelled) and (labelled.min() < 0 or labelled.max() >= outputs.shape[1]):
            raise DataError(
                f"mask class ids must be in 0..{outputs.shape[1] - 1} (or {self.ignore_index} for unlabelled "
                f"pixels). Received ids from {int(labelled.min())} to {int(labelled.max())}"
            )
        return targets

    def details(self, context: TaskContext) -> None:
        """Pixel confusion matrix, per-class IoU and Dice, the worst test images and their figure."""
        segmentation_details(context, self.ignore_index)

    def comparison_metric(self, bundle: Any) -> str:
        """The background dominates the pixels: compared on mean IoU, not pixel accuracy."""
        return "miou"

    evidence = "the class the model gives most of the image to (log of its soft pixel share)"

    def class_evidence(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each class's ``log mean_pixels p_k``: how much of the image the model gives to it."""
        return pixel_share_evidence(outputs)

    def main_class(self, targets: torch.Tensor, spec: DataSpec) -> torch.Tensor:
        """The object class covering most labelled pixels of each true mask."""
        return largest_class(targets, spec.num_outputs, self.background_classes(spec))

    def background_classes(self, spec: DataSpec) -> int:
        """1 when the first class is named ``background``, else 0."""
        return background_first(spec)

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """One record per image: the share of its pixels given to each class (and the true shares)."""
        records = []
        for i in range(len(inputs)):
            record: dict[str, Any] = {"prediction": class_shares(spec, predictions.prediction[i])}
            if truth is not None:
                record["true"] = class_shares(spec, truth[i])
            records.append(record)
        return records


def pixel_share_evidence(logits: torch.Tensor) -> torch.Tensor:
    """``N x K``: the log of each class's mean probability over the pixels of per-pixel logits ``N x K x H x W``."""
    log_p = logits.float().log_softmax(dim=1).flatten(2)
    return torch.logsumexp(log_p, dim=2) - math.log(log_p.shape[2])


def largest_class(masks: torch.Tensor, classes: int, skip: int) -> torch.Tensor:
    """Per mask ``N x H x W``, the class among ``skip .. classes - 1`` covering most pixels; -1 where none does."""
    valid = (masks >= skip) & (masks < classes)
    flat = torch.where(valid, masks, torch.full_like(masks, classes)).reshape(len(masks), -1).long()
    counts = torch.zeros(len(masks), classes + 1, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    counts = counts[:, :classes]
    return torch.where(counts.sum(dim=1) > 0, counts.argmax(dim=1), torch.full((len(masks),), -1))


def background_first(spec: DataSpec) -> int:
    """1 when a mask dataset's first class is named ``background`` (not an object), else 0."""
    return int(bool(spec.class_names) and spec.class_names[0].lower() == "background")


def class_shares(spec: DataSpec, mask: torch.Tensor) -> dict[str, float]:
    """``{class name: share of the pixels}`` of one mask, largest first, classes under 0.1% left out."""
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    labelled = mask[(mask >= 0) & (mask < len(names))].long()
    counts = torch.bincount(labelled.reshape(-1), minlength=len(names)).double()
    shares = counts / counts.sum().clamp_min(1)
    order = torch.argsort(shares, descending=True)
    return {names[int(i)]: round(float(shares[i]), 4) for i in order if shares[i] >= 0.001}


def per_class_scores(matrix: Any) -> dict[str, torch.Tensor]:
    """IoU, Dice, precision, recall and labelled pixels of each class from a confusion matrix.

    A score whose denominator is zero is 0 (a class neither present nor predicted).
    """
    counts = torch.as_tensor(matrix, dtype=torch.float64)
    hits = counts.diagonal()
    predicted, actual = counts.sum(dim=0), counts.sum(dim=1)
    union = predicted + actual - hits
    return {
        "iou": hits / union.clamp_min(1),
        "dice": 2 * hits / (predicted + actual).clamp_min(1),
        "precision": hits / predicted.clamp_min(1),
        "recall": hits / actual.clamp_min(1),
        "pixels": actual,
    }


def mask_metrics(
    predicted: torch.Tensor, targets: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """``accuracy``, ``miou`` and ``dice`` of predicted masks ``N x H x W`` against ``targets``.

    Scores predictions that do not come from a network (a threshold, a rule) the same way.

    Raises:
        DataError: the shapes differ, or no pixel is labelled.
    """
    if predicted.shape != targets.shape:
        raise DataError(f"predicted masks {tuple(predicted.shape)} and targets {tuple(targets.shape)} differ in shape")
    matrix = tag_confusion(predicted, targets, num_classes, ignore_index)
    total = matrix.sum()
    if total == 0:
        raise DataError(f"every target pixel is unlabelled ({ignore_index}); there is nothing to score")
    scores = per_class_scores(matrix)
    present = (matrix.sum(dim=0) + matrix.sum(dim=1)) > 0
    return {
        "accuracy": float(matrix.diagonal().sum() / total),
        "miou": float(scores["iou"][present].mean()),
        "dice": float(scores["dice"][present].mean()),
    }


def image_miou(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Mean IoU of each image on its own (over the classes present in it or predicted in it)."""
    n = len(targets)
    valid = targets != ignore_index
    index = torch.arange(n)[:, None, None].expand_as(targets)
    pairs = (index * num_classes + targets.clamp_min(0).long()) * num_classes + predicted.long()
    counts = torch.bincount(pairs[valid], minlength=n * num_classes * num_classes)
    matrix = counts.reshape(n, num_classes, num_classes).double()
    hits = matrix.diagonal(dim1=1, dim2=2)
    predicted_sum, actual = matrix.sum(dim=1), matrix.sum(dim=2)
    union = predicted_sum + actual - hits
    present = union > 0
    iou = torch.where(present, hits / union.clamp_min(1), torch.zeros_like(union))
    return iou.sum(dim=1) / present.sum(dim=1).clamp_min(1)


def segmentation_details(context: TaskContext, ignore_index: int = IGNORE_INDEX) -> None:
    """Add the test split's pixel confusion matrix, per-class scores and worst images to the results.

    ``results["test"]`` gains ``confusion_matrix`` (pixels; true classes as rows), ``per_class_iou``
    (IoU, Dice, precision, recall, pixels of each class) and ``worst`` (the test images with the
    lowest IoU: index, IoU, pixel accuracy). Writes ``figures/confusion_matrix.png`` and
    ``figures/segmentation.png`` (image, true mask, predicted mask of the worst and of typical images).
    """
    from glassnet.figures import segmentation as drawing
    from glassnet.figures import training as figures

    run, bundle, predictions, results = context.run, context.bundle, context.predictions, context.results
    spec = bundle.spec
    inputs, targets = split_tensors(bundle.test)
    if len(targets) == 0:
        return
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    predicted = predictions.prediction
    matrix = tag_confusion(predicted, targets, spec.num_outputs, ignore_index)
    results["test"]["confusion_matrix"] = matrix.tolist()
    figures.confusion_matrix(matrix.tolist(), names, run.figure("confusion_matrix"))
    scores = per_class_scores(matrix)
    results["test"]["per_class_iou"] = {
        name: {key: round(float(scores[key][i]), 6) for key in ("iou", "dice", "precision", "recall")}
        | {"pixels": int(scores["pixels"][i])}
        for i, name in enumerate(names)
    }
    per_image = image_miou(predicted, targets, spec.num_outputs, ignore_index)
    valid = targets != ignore_index
    right = ((predicted == targets) & valid).sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp_min(1)
    order = torch.argsort(per_image)
    worst = [int(i) for i in order[: WORST // 2]]
    typical = [int(i) for i in order[len(order) // 2 : len(order) // 2 + WORST - len(worst)]]
    results["test"]["worst"] = [
        {"index": i, "miou": round(float(per_image[i]), 4), "accuracy": round(float(right[i]), 4)} for i in worst
    ]
    results["test"]["image_miou_median"] = round(float(per_image.median()), 6)
    shown = worst + [i for i in typical if i not in worst]
    drawing.mask_grid(
        inputs[shown].numpy(),
        targets[shown].numpy(),
        predicted[shown].numpy(),
        [float(per_image[i]) for i in shown],
        names,
        run.figure("segmentation"),
    )


# ---------------------------------------------------------------- classical baseline


def otsu_threshold(image: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of one grey image in [0, 1]: the cut that maximises the between-class variance."""
    counts, edges = np.histogram(image, bins=bins, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts).astype(np.float64)
    total = weight[-1]
    if total == 0:
        return 0.5
    mass = np.cumsum(counts * centres)
    below = weight[:-1]
    above = total - below
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_below = mass[:-1] / below
        mean_above = (mass[-1] - mass[:-1]) / above
        between = below * above * (mean_below - mean_above) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return float(edges[1:-1][int(np.argmax(between))])


def components(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Otsu's foreground of a ``C x H x W`` image split into connected components (8-connected).

    Returns:
        Per component of at least ``MIN_AREA`` pixels, ``(pixel mask, feature vector)``: the pixels
        of its bounding box resized to ``CROP x CROP``, its area, height and width.
    """
    from scipy import ndimage

    grey = image.mean(axis=0)
    labels, _ = ndimage.label(grey > otsu_threshold(grey), structure=np.ones((3, 3)))
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        pixels = labels[box] == index
        if pixels.sum() < MIN_AREA:
            continue
        crop = np.where(pixels, grey[box], 0.0)
        rows = np.linspace(0, crop.shape[0] - 1, CROP).round().astype(int)
        cols = np.linspace(0, crop.shape[1] - 1, CROP).round().astype(int)
        shape = np.array([pixels.sum() / grey.size, crop.shape[0] / grey.shape[0], crop.shape[1] / grey.shape[1]])
        found.append((labels == index, np.concatenate([crop[np.ix_(rows, cols)].ravel(), shape])))
    return found


@register_baselines("segment")
def _segment_baselines(spec: DataSpec, bundle: Any) -> list[Baseline]:
    """Everything background, and Otsu's threshold + connected components + a component classifier."""
    ignore = int(spec.extra.get("ignore_index", IGNORE_INDEX))

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return mask_metrics(predict(x), y, spec.num_outputs, ignore)

    def majority(x: torch.Tensor, y: torch.Tensor) -> Any:
        labelled = y[y != ignore]
        cls = int(torch.bincount(labelled.reshape(-1), minlength=spec.num_outputs).argmax())
        return lambda inputs: torch.full((len(inputs), *inputs.shape[2:]), cls, dtype=torch.long)

    def otsu(x: torch.Tensor, y: torch.Tensor) -> Any:
        from sklearn.linear_model import LogisticRegression

        features, labels = [], []
        for image, mask in zip(x.numpy(), y.numpy()):
            for pixels, feature in components(image):
                inside = mask[pixels]
                inside = inside[inside != ignore]
                if len(inside):
                    features.append(feature)
                    labels.append(int(np.bincount(inside).argmax()))
        if len(set(labels)) < 2:
            guess = labels[0] if labels else 0
            classifier = None
        else:
            classifier = LogisticRegression(max_iter=300).fit(np.array(features), np.array(labels))

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            out = np.zeros((len(inputs), *inputs.shape[2:]), dtype=np.int64)
            for k, image in enumerate(inputs.numpy()):
                found = components(image)
                if not found:
                    continue
                if classifier is None:
                    classes = [guess] * len(found)
                else:
                    classes = classifier.predict(np.stack([f for _, f in found]))
                for (pixels, _), cls in zip(found, classes):
                    out[k][pixels] = int(cls)
            return torch.from_numpy(out)

        return predict

    candidates = [Baseline("majority", "the most frequent training class on every pixel", majority, True, score)]
    if spec.modality == "image":
        candidates.insert(
            0,
            Baseline(
                "otsu_components",
                "Otsu's threshold, connected components, each classified by a logistic regression on its pixels",
                otsu,
                score=score,
            ),
        )
    return candidates
