"""Tasks: everything that depends on the kind of target, in one class per kind.

A task says how to learn (loss, default training step), how to score (metrics, monitor
directions), how to read outputs (decoding, prediction records for ``glassnet predict``), what a
finished run adds to its results and figures (``details``) and which figures headline it. The
pipeline, the CLI and the report ask the task; none of them branches on the task's name. A new
task is a ``Task`` subclass registered with ``@register_task`` (see the reconstruction, tagging,
sequence-to-sequence and language-model tasks in their own modules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.bundle import DataBundle, split_targets
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError, UnknownNameError
from glassnet.runs import RunDir

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer

GRID_SIZE = 24  # test images shown in the prediction grid


@dataclass
class TaskContext:
    """What a task's ``details`` reads and writes after training: the run, its data, model and results.

    Attributes:
        run: the run directory (figures go to ``run.figure(name)``).
        bundle: the data the model trained on.
        model: the trained model.
        trainer: the trainer (its device, precision and ``predict``).
        results: the dict that becomes ``results/train.json``; ``results["test"]`` holds the test metrics.
        seed: the run's seed, for anything drawn at random (samples).
        history: the fit's per-epoch records (the lines of ``metrics.jsonl``).
    """

    run: RunDir
    bundle: DataBundle
    model: nn.Module
    trainer: Trainer
    results: dict[str, Any]
    seed: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    _predictions: Any = field(default=None, repr=False)

    @property
    def predictions(self) -> Any:
        """``trainer.predict`` on the test split, computed once."""
        if self._predictions is None:
            self._predictions = self.trainer.predict(self.model, self.bundle.test)
        return self._predictions


class Task:
    """One kind of target: loss, metrics, decoding, and what a run of it reports.

    Attributes:
        name: the ``DataSpec.task`` it serves.
        monitor_modes: for each metric, ``"min"`` or ``"max"`` (which direction is better).
        default_step: the registered training step this task learns with unless the run names
            another (``supervised``; ``teacher_forcing`` for sequence-to-sequence).
        headline_metrics: the test metrics the command line's closing line shows, in order.
        data_options: dataset options (``data.X=...``) the task takes for itself when it turns a
            dataset of another task into its own (``prepare_data``), rather than the dataset loader.
    """

    name = ""
    monitor_modes: dict[str, str] = {"loss": "min"}
    default_step = "supervised"
    headline_metrics: tuple[str, ...] = ("loss",)
    data_options: tuple[str, ...] = ()

    def not_predicted(self, run_path: Any) -> str | None:
        """Why ``glassnet predict`` does not apply to a run of this task and what to use instead; None: it applies."""
        return None

    def prepare_data(self, bundle: DataBundle, options: dict[str, Any]) -> DataBundle:
        """The data a model of only this task trains on, from a dataset's bundle and the ``data_options`` given.

        The default is the bundle itself; ``synthesize`` turns speech with transcripts into text ->
        spectrogram pairs with durations.
        """
        return bundle

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Turn raw outputs into predictions (``{"prediction": ..., ...}``)."""
        raise NotImplementedError

    def mode(self, metric: str) -> str:
        """``"min"`` or ``"max"`` for a metric name such as ``val/accuracy``."""
        prefix, _, key = metric.rpartition("/")
        if key not in self.monitor_modes:
            known = [f"{prefix}/{k}" if prefix else k for k in self.monitor_modes]
            raise UnknownNameError(f"metric for {self.name}", metric, known)
        return self.monitor_modes[key]

    def evaluate(self, trainer: Trainer, model: nn.Module, bundle: DataBundle, split: str) -> dict[str, float]:
        """Metrics of ``model`` on a split of ``bundle`` (by default the task's metrics over its outputs)."""
        return trainer.evaluate(model, bundle.split(split))

    def details(self, context: TaskContext) -> None:
        """After training: add test details to ``context.results`` and draw their figures (none by default)."""

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """One record per example for ``glassnet predict``: ``prediction`` (and ``true`` with ``truth``)."""
        records = []
        for i in range(len(inputs)):
            record = self.record(spec, predictions, i)
            if truth is not None:
                record["true"] = self.shown(spec, truth[i])
            records.append(record)
        return records

    def record(self, spec: DataSpec, predictions: Any, i: int) -> dict[str, Any]:
        """The record of example ``i``: its prediction as ``shown``."""
        return {"prediction": self.shown(spec, predictions.prediction[i])}

    def shown(self, spec: DataSpec, value: torch.Tensor) -> Any:
        """A prediction or a target as a user reads it: one number or a list of numbers by default."""
        return _values(value)

    def class_evidence(self, outputs: torch.Tensor) -> torch.Tensor:
        """For a task whose model answers with a map (masks, boxes): one score per class for each image,
        ``N x K``, which ``glassnet explain`` explains as a classifier's logits (``evidence`` says what the
        score means). Tasks answered with one prediction per example have none.

        Raises:
            NotImplementedError: the task's outputs are not read as class evidence.
        """
        raise NotImplementedError(f"the {self.name} task has no per-class evidence of a map")

    def main_class(self, targets: torch.Tensor, spec: DataSpec) -> torch.Tensor:
        """For a task with ``class_evidence``: each image's true main object class, ``N`` int64 class ids
        (``background_classes`` never chosen), ``-1`` for an image that holds no object."""
        raise NotImplementedError(f"the {self.name} task has no per-image main class")

    def background_classes(self, spec: DataSpec) -> int:
        """How many leading classes are not objects (left out of ``class_evidence`` and ``main_class``)."""
        return 0

    evidence = ""  # what one ``class_evidence`` score means, in a phrase a report can print

    def headline(self, metrics: dict[str, Any]) -> str:
        """``accuracy 0.9926, macro_f1 0.9925``: the ``headline_metrics`` present in ``metrics``."""
        return ", ".join(f"{k} {metrics[k]:.4f}" for k in self.headline_metrics if metrics.get(k) is not None)


def _values(row: torch.Tensor) -> float | list[float]:
    values = [round(float(v), 4) for v in row.reshape(-1)]
    return values[0] if len(values) == 1 else values


def _class_names(spec: DataSpec) -> list[str]:
    return list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]


class Classification(Task):
    """Single-label classification with cross-entropy on logits.

    Args:
        class_weights: one weight per class for the loss (rare classes weigh more), or None for
            equal weights; ``class_weights_from`` computes ``balanced`` weights from the targets.
        label_smoothing: share of each target's probability spread evenly over all classes
            (0 disables), as in ``torch.nn.functional.cross_entropy``.

    Raises:
        ConfigError: a weight is negative or not finite, or ``label_smoothing`` is outside [0, 1).
    """

    name = "classify"
    monitor_modes = {"loss": "min", "accuracy": "max", "macro_f1": "max"}
    headline_metrics = ("accuracy", "macro_f1")

    def __init__(self, class_weights: Sequence[float] | torch.Tensor | None = None, label_smoothing: float = 0.0):
        self.class_weights = _check_weights("class_weights", class_weights)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # class indices, or per-class probabilities from mixing augmentations (mixup, cutmix)
        weight = None
        if self.class_weights is not None:
            if len(self.class_weights) != outputs.shape[1]:
                raise ConfigError(
                    f"class_weights has {len(self.class_weights)} values for {outputs.shape[1]} classes; "
                    "give one weight per class or class_weights=balanced"
                )
            weight = self.class_weights.to(outputs.device, outputs.dtype)
        return F.cross_entropy(outputs, targets, weight=weight, label_smoothing=self.label_smoothing)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        from torchmetrics.functional import accuracy, f1_score

        num_classes = outputs.shape[1]
        preds = outputs.argmax(dim=1)
        return {
            "loss": self.loss(outputs.float(), targets).item(),
            "accuracy": accuracy(preds, targets, task="multiclass", num_classes=num_classes).item(),
            "macro_f1": f1_score(preds, targets, task="multiclass", num_classes=num_classes, average="macro").item(),
        }

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        probabilities = outputs.float().softmax(dim=1)
        confidence, prediction = probabilities.max(dim=1)
        return {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}

    def confusion_matrix(self, outputs: torch.Tensor, targets: torch.Tensor) -> list[list[int]]:
        """Counts with true classes as rows and predicted classes as columns."""
        from torchmetrics.functional import confusion_matrix

        num_classes = outputs.shape[1]
        matrix = confusion_matrix(outputs.argmax(dim=1), targets, task="multiclass", num_classes=num_classes)
        return matrix.tolist()

    def per_class(self, outputs: torch.Tensor, targets: torch.Tensor) -> list[dict[str, float]]:
        """Precision, recall, F1 and support (test examples of the class) of each class, in class order.

        A class that is never predicted has precision 0 (and one never present recall 0), as in
        scikit-learn's ``zero_division=0``.
        """
        from torchmetrics.functional.classification import (
            multiclass_f1_score,
            multiclass_precision,
            multiclass_recall,
        )

        n = outputs.shape[1]
        predicted, targets = outputs.argmax(dim=1), targets.long()
        columns = {
            "precision": multiclass_precision(predicted, targets, num_classes=n, average="none"),
            "recall": multiclass_recall(predicted, targets, num_classes=n, average="none"),
            "f1": multiclass_f1_score(predicted, targets, num_classes=n, average="none"),
        }
        support = torch.bincount(targets, minlength=n)
        return [
            {**{k: round(float(v[i]), 6) for k, v in columns.items()}, "support": int(support[i])} for i in range(n)
        ]

    def details(self, context: TaskContext) -> None:
        """The confusion matrix, per-class scores, example predictions and (images) a grid of them, and
        how far the probabilities can be trusted: ROC and precision-recall curves of binary tasks, and
        calibration (``scores``), with their figures."""
        from glassnet.figures import training as figures

        spec, predictions, test = context.bundle.spec, context.predictions, context.results["test"]
        targets = split_targets(context.bundle.test)
        matrix = self.confusion_matrix(predictions.outputs, targets)
        test["confusion_matrix"] = matrix
        names = _class_names(spec)
        figures.confusion_matrix(matrix, names, context.run.figure("confusion_matrix"))
        test["per_class"] = dict(zip(names, self.per_class(predictions.outputs, targets)))
        self.scores(context, predictions.outputs, targets, names)
        chosen = _grid_indices(targets, predictions.prediction)
        test["examples"] = [
            {
                "index": int(i),
                "true": int(targets[i]),
                "predicted": int(predictions.prediction[i]),
                "confidence": round(float(predictions.confidence[i]), 4),
            }
            for i in chosen
        ]
        if spec.modality == "image":
            figures.prediction_grid(
                torch.stack([torch.as_tensor(context.bundle.test[i][0]) for i in chosen]).numpy(),
                [int(targets[i]) for i in chosen],
                [int(predictions.prediction[i]) for i in chosen],
                [float(predictions.confidence[i]) for i in chosen],
                names,
                context.run.figure("predictions"),
            )

    def scores(self, context: TaskContext, outputs: torch.Tensor, targets: torch.Tensor, names: list[str]) -> None:
        """Add ``roc``, ``precision_recall`` (binary tasks) and ``calibration`` to the test results, with
        their figures.

        Binary tasks judge the probability of class 1 (the positive class) and draw the ROC,
        precision-recall and reliability figures; others judge the confidence in the predicted class
        (no figure: the report shows its bins). Nothing is added when an output is not finite.

        Args:
            context: the run whose ``results["test"]`` gains the records and whose figures are drawn.
            outputs: the model's logits on the test split, ``N x classes``.
            targets: the test split's class indices.
            names: the class names, in class order.
        """
        from glassnet.figures import classification as figures

        probabilities = outputs.float().softmax(dim=1)
        if not bool(torch.isfinite(probabilities).all()) or len(targets) == 0:
            return
        test, run, targets = context.results["test"], context.run, targets.long()
        if outputs.shape[1] == 2:
            positive = names[1]
            score, hit = probabilities[:, 1], (targets == 1).float()
            if 0 < int(targets.sum()) < len(targets):  # ranking needs examples of both classes
                test["roc"] = roc_curve(score, targets, positive)
                test["precision_recall"] = precision_recall_curve(score, targets, positive)
                figures.roc_curve(test["roc"], run.figure("roc_curve"))
                figures.precision_recall_curve(test["precision_recall"], run.figure("precision_recall_curve"))
            test["calibration"] = calibration(score, hit, f"probability of {positive}", positive)
            figures.reliability_diagram(test["calibration"], run.figure("reliability"))
        else:
            confidence, predicted = probabilities.max(dim=1)
            test["calibration"] = calibration(confidence, (predicted == targets).float(), "confidence", "right")

    def record(self, spec: DataSpec, predictions: Any, i: int) -> dict[str, Any]:
        """The predicted class and its probability."""
        shown = self.shown(spec, predictions.prediction[i])
        return {"prediction": shown, "confidence": round(float(predictions.confidence[i]), 4)}

    def shown(self, spec: DataSpec, value: torch.Tensor) -> Any:
        """A class by its name (its index when the data names none)."""
        return spec.class_names[int(value)] if spec.class_names else int(value)


CURVE_POINTS = 200  # most points of a stored curve: enough to draw it, small in train.json
CALIBRATION_BINS = 10


def roc_curve(score: torch.Tensor, targets: torch.Tensor, positive: str) -> dict[str, Any]:
    """The ROC curve of a binary score and its area (``auc``), the curve thinned to ``CURVE_POINTS``.

    Args:
        score: the probability of the positive class, one per example.
        targets: 1 for the positive class, 0 for the other; both must occur.
        positive: the positive class's name, kept with the curve.
    """
    from torchmetrics.functional.classification import binary_auroc, binary_roc

    fpr, tpr, _ = binary_roc(score, targets)
    keep = _thinned(len(fpr))
    return {
        "positive_class": positive,
        "auc": round(float(binary_auroc(score, targets)), 6),
        "fpr": [round(float(v), 4) for v in fpr[keep]],
        "tpr": [round(float(v), 4) for v in tpr[keep]],
    }


def precision_recall_curve(score: torch.Tensor, targets: torch.Tensor, positive: str) -> dict[str, Any]:
    """The precision-recall curve of a binary score, its ``average_precision`` and the ``positive_rate``
    (the precision of a score that knows nothing), the curve thinned to ``CURVE_POINTS``."""
    from torchmetrics.functional.classification import binary_average_precision, binary_precision_recall_curve

    precision, recall, _ = binary_precision_recall_curve(score, targets)
    keep = _thinned(len(precision))
    return {
        "positive_class": positive,
        "average_precision": round(float(binary_average_precision(score, targets)), 6),
        "positive_rate": round(float(targets.float().mean()), 6),
        "recall": [round(float(v), 4) for v in recall[keep]],
        "precision": [round(float(v), 4) for v in precision[keep]],
    }


def calibration(
    score: torch.Tensor, hit: torch.Tensor, judged: str, event: str, bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """The reliability diagram of a probability and its expected calibration error (ECE).

    The scores fall into ``bins`` equal-width bins of [0, 1] (1.0 in the last); each bin keeps its
    examples' ``mean_predicted`` score, the ``observed`` frequency of ``hit`` among them and their
    ``count`` (the two means are null in an empty bin). ``ece`` is the mean of
    ``|observed - mean_predicted|`` over the bins, weighted by their counts (torchmetrics'
    ``calibration_error`` with ``norm="l1"``).

    Args:
        score: the probability judged, one per example, in [0, 1].
        hit: 1 where the event the score predicts happened (the example is positive, the
            prediction right), else 0.
        judged: what ``score`` is, in words (``probability of malignant``, ``confidence``).
        event: what ``hit`` counts, in a word that follows "were" (``malignant``, ``right``).
        bins: the number of bins.
    """
    score, hit = score.double().clamp(0, 1), hit.double()
    index = (score * bins).long().clamp(max=bins - 1)
    count = torch.bincount(index, minlength=bins)
    predicted = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, score)
    observed = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, hit)
    ece = float((observed - predicted).abs().sum() / len(score))
    filled = count.clamp(min=1)
    return {
        "score": judged,
        "event": event,
        "bins": bins,
        "ece": round(ece, 6),
        "mean_predicted": [round(float(p), 4) if n else None for p, n in zip(predicted / filled, count)],
        "observed": [round(float(o), 4) if n else None for o, n in zip(observed / filled, count)],
        "count": [int(n) for n in count],
    }


def _thinned(n: int, most: int = CURVE_POINTS) -> torch.Tensor:
    """At most ``most`` evenly spaced indices of ``n`` points, the first and the last always among them."""
    if n <= most:
        return torch.arange(n)
    return torch.unique(torch.linspace(0, n - 1, most).round().long())


def _grid_indices(targets: torch.Tensor, predicted: torch.Tensor) -> list[int]:
    """Up to a third of the grid for mistakes, the rest for correct predictions, in test order."""
    wrong = np.flatnonzero((targets != predicted).numpy())[: GRID_SIZE // 3]
    right = np.flatnonzero((targets == predicted).numpy())[: GRID_SIZE - len(wrong)]
    return sorted(int(i) for i in np.concatenate([wrong, right]))


class MultiLabel(Task):
    """Multi-label classification: any number of labels per example, one sigmoid output each.

    The loss is binary cross-entropy on logits; a label is predicted when its probability reaches
    its threshold. Targets are ``N x L`` tensors of 0/1 (floats or integers).

    Args:
        threshold: probability at which a label is predicted: one value for all labels or one per label.
        pos_weights: per-label weight of the positive examples in the loss (``pos_weight`` of
            ``binary_cross_entropy_with_logits``), or None; ``class_weights_from`` computes
            ``balanced`` ones (negatives / positives of each label).
        label_smoothing: targets move from 0/1 to ``s/2`` and ``1 - s/2`` (0 disables).

    Raises:
        ConfigError: a threshold is outside (0, 1), a weight is negative or not finite, or
            ``label_smoothing`` is outside [0, 1).
    """

    name = "multilabel"
    headline_metrics = ("subset_accuracy", "micro_f1", "macro_f1")
    monitor_modes = {
        "loss": "min",
        "subset_accuracy": "max",
        "label_accuracy": "max",
        "micro_f1": "max",
        "macro_f1": "max",
        "map": "max",
        "auroc": "max",
    }

    def __init__(
        self,
        threshold: float | Sequence[float] = 0.5,
        pos_weights: Sequence[float] | torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        values = torch.as_tensor(threshold, dtype=torch.float32).reshape(-1)
        if values.numel() == 0 or not bool(((values > 0) & (values < 1)).all()):
            raise ConfigError(
                f"threshold must be in (0, 1), one value or one per label. Received: threshold={threshold!r}"
            )
        self.threshold = values
        self.pos_weights = _check_weights("class_weights", pos_weights)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self._targets(outputs, targets).to(outputs.dtype)
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        pos_weight = None
        if self.pos_weights is not None:
            self._check_length("class_weights", self.pos_weights, outputs.shape[1])
            pos_weight = self.pos_weights.to(outputs.device, outputs.dtype)
        return F.binary_cross_entropy_with_logits(outputs, targets, pos_weight=pos_weight)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        from torchmetrics.functional.classification import (
            multilabel_accuracy,
            multilabel_auroc,
            multilabel_average_precision,
            multilabel_exact_match,
            multilabel_f1_score,
        )

        outputs = outputs.float()
        labels = self._targets(outputs, targets).long()
        num_labels = outputs.shape[1]
        predicted = self._predict(outputs.sigmoid())
        scores = outputs.sigmoid()
        result = {
            "loss": self.loss(outputs, labels).item(),
            "subset_accuracy": multilabel_exact_match(predicted, labels, num_labels=num_labels).item(),
            "label_accuracy": multilabel_accuracy(predicted, labels, num_labels=num_labels, average="micro").item(),
            "micro_f1": multilabel_f1_score(predicted, labels, num_labels=num_labels, average="micro").item(),
            "macro_f1": multilabel_f1_score(predicted, labels, num_labels=num_labels, average="macro").item(),
        }
        # ranking metrics need both kinds of example for every label; skip them where a label is constant
        positives = labels.sum(dim=0)
        if bool(((positives > 0) & (positives < len(labels))).all()):
            result["map"] = multilabel_average_precision(scores, labels, num_labels=num_labels).item()
            result["auroc"] = multilabel_auroc(scores, labels, num_labels=num_labels).item()
        return result

    def per_label(self, outputs: torch.Tensor, targets: torch.Tensor) -> list[dict[str, float]]:
        """Precision, recall, F1 and support (positive examples) of each label."""
        from torchmetrics.functional.classification import (
            multilabel_f1_score,
            multilabel_precision,
            multilabel_recall,
        )

        labels = self._targets(outputs, targets).long()
        predicted = self._predict(outputs.float().sigmoid())
        n = outputs.shape[1]
        columns = {
            "precision": multilabel_precision(predicted, labels, num_labels=n, average="none"),
            "recall": multilabel_recall(predicted, labels, num_labels=n, average="none"),
            "f1": multilabel_f1_score(predicted, labels, num_labels=n, average="none"),
        }
        support = labels.sum(dim=0)
        return [
            {**{k: round(float(v[i]), 6) for k, v in columns.items()}, "support": int(support[i])} for i in range(n)
        ]

    def details(self, context: TaskContext) -> None:
        """Precision, recall, F1 and support of each label on the test split."""
        names = _class_names(context.bundle.spec)
        scores = self.per_label(context.predictions.outputs, split_targets(context.bundle.test))
        context.results["test"]["per_label"] = dict(zip(names, scores))

    def shown(self, spec: DataSpec, value: torch.Tensor) -> str:
        """The names of the labels set in a 0/1 row (``-`` for none)."""
        return _label_names(value, list(spec.class_names))

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``prediction``: ``N x L`` of 0/1; ``probabilities``; ``confidence``: probability of each decision."""
        probabilities = outputs.float().sigmoid()
        prediction = self._predict(probabilities)
        confidence = torch.where(prediction.bool(), probabilities, 1 - probabilities)
        return {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}

    def _predict(self, probabilities: torch.Tensor) -> torch.Tensor:
        self._check_length("threshold", self.threshold, probabilities.shape[1], allow_one=True)
        return (probabilities >= self.threshold.to(probabilities.device)).long()

    @staticmethod
    def _targets(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.shape != outputs.shape:
            raise DataError(
                f"multilabel targets must be N x labels (0/1), shaped like the outputs {tuple(outputs.shape)}. "
                f"Received: targets of shape {tuple(targets.shape)}"
            )
        return targets

    @staticmethod
    def _check_length(name: str, values: torch.Tensor, num_labels: int, allow_one: bool = False) -> None:
        if len(values) != num_labels and not (allow_one and len(values) == 1):
            raise ConfigError(f"{name} has {len(values)} values for {num_labels} labels; give one per label")


def _label_names(row: Any, names: list[str]) -> str:
    """``"3 7"``: the labels set in a 0/1 row, by name (index when unnamed); ``-`` for none."""
    present = [names[j] if names else str(j) for j in range(len(row)) if float(row[j]) >= 0.5]
    return " ".join(present) or "-"


class Regression(Task):
    """Regression with mean squared error in the target's natural units."""

    name = "regress"
    monitor_modes = {"loss": "min", "mae": "min", "rmse": "min", "r2": "max"}
    headline_metrics = ("mae", "rmse")

    def details(self, context: TaskContext) -> None:
        """The test predictions against the targets, as a scatter plot."""
        from glassnet.figures import training as figures

        targets = split_targets(context.bundle.test)
        predicted = context.predictions.prediction
        figures.predicted_vs_true(targets.numpy(), predicted.numpy(), context.run.figure("predicted_vs_true"))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets.reshape(outputs.shape))

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

        outputs, targets = outputs.float(), targets.reshape(outputs.shape).float()
        mse = mean_squared_error(outputs, targets)
        flat_out, flat_target = outputs.reshape(len(outputs), -1), targets.reshape(len(targets), -1)
        r2 = r2_score(flat_out, flat_target) if len(outputs) > 1 else torch.tensor(float("nan"))
        return {
            "loss": mse.item(),
            "mae": mean_absolute_error(outputs, targets).item(),
            "rmse": mse.sqrt().item(),
            "r2": r2.item(),
        }

    def decode(self, outputs: torch.Tensor) -> dict[str, Any]:
        return {"prediction": outputs.float()}


class TokenTask(Task):
    """Base of the tasks scored per token: logits ``N x T x V`` against ids ``N x T``, padding ignored.

    Sequence labelling, sequence-to-sequence and language modelling share the loss (mean
    cross-entropy over the targets that are not ``ignore_index``), the shape checks and the decoding
    (the most likely id per position and its probability); each adds its metrics.

    Args:
        ignore_index: the target id of padding, which counts in no loss and no metric.
    """

    ignore_index = -100

    def __init__(self, ignore_index: int | None = None) -> None:
        if ignore_index is not None:
            self.ignore_index = ignore_index

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) over the target tokens that are not padding."""
        targets = self.align(outputs, targets)
        return F.cross_entropy(outputs.transpose(1, 2), targets.long(), ignore_index=self.ignore_index)

    def align(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets checked against the outputs' shape (tasks with variable lengths pad them here).

        Raises:
            DataError: outputs are not ``N x T x V`` or targets not ``N x T`` of the same ``N`` and ``T``.
        """
        if outputs.ndim != 3 or targets.shape != outputs.shape[:2]:
            raise DataError(
                f"{self.name} needs N x T x V logits and N x T target ids (padding {self.ignore_index}). Received: "
                f"outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        return targets

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The most likely id at each position ``N x T`` and its probability."""
        confidence, prediction = outputs.float().softmax(dim=2).max(dim=2)
        return {"prediction": prediction, "confidence": confidence}


class Forecasting(Regression):
    """Forecasting: regression of the next ``horizon`` steps (outputs flattened per example)."""

    name = "forecast"


_TASKS: dict[str, type[Task]] = {
    "classify": Classification,
    "multilabel": MultiLabel,
    "regress": Regression,
    "forecast": Forecasting,
}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a ``Task`` subclass available to ``get_task`` under its ``name``.

    Tasks that live in their own modules (reconstruction, sequence-to-sequence, language
    modelling) register themselves; ``glassnet.train`` imports those modules.
    """
    if not cls.name or cls.name in _TASKS:
        raise ValueError(f"task name {cls.name!r} is empty or registered twice")
    _TASKS[cls.name] = cls
    return cls


def get_task(task: str | Task) -> Task:
    """A ``Task`` instance from its name (``classify``, ``regress``, ...) or the instance itself."""
    if isinstance(task, Task):
        return task
    if task not in _TASKS:
        raise UnknownNameError("task", task, _TASKS)
    return _TASKS[task]()


WEIGHTED_TASKS = ("classify", "multilabel")


def make_task(
    name: str,
    class_weights: str | Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    train_targets: torch.Tensor | None = None,
    num_outputs: int | None = None,
) -> Task:
    """A task with its loss options, resolving ``class_weights="balanced"`` from the training targets.

    Args:
        name: the task name (``classify``, ``multilabel``, ``regress`` ...).
        class_weights: ``"balanced"``, one weight per class (per label for ``multilabel``, where it
            weighs the positive examples), or None.
        label_smoothing: see ``Classification`` and ``MultiLabel``.
        train_targets: the training split's targets (needed for ``balanced``).
        num_outputs: classes or labels (to check a list of weights early); optional.

    Raises:
        ConfigError: the options do not apply to the task or have bad values.
    """
    if name not in WEIGHTED_TASKS:
        if class_weights not in (None, [], ()) or label_smoothing:
            raise ConfigError(
                f"class_weights and label_smoothing apply to {' and '.join(WEIGHTED_TASKS)} tasks only; "
                f"this dataset's task is {name!r}. Remove them"
            )
        return get_task(name)
    weights = class_weights_from(class_weights, name, train_targets, num_outputs)
    if name == "classify":
        return Classification(class_weights=weights, label_smoothing=label_smoothing)
    return MultiLabel(pos_weights=weights, label_smoothing=label_smoothing)


def class_weights_from(
    spec: str | Sequence[float] | None,
    task: str,
    train_targets: torch.Tensor | None = None,
    num_outputs: int | None = None,
) -> torch.Tensor | None:
    """Loss weights from ``balanced``, a list of numbers, or None.

    ``balanced`` gives class ``c`` the weight ``n / (k * n_c)`` (scikit-learn's rule) for
    ``classify``, and label ``l`` the positive weight ``negatives_l / positives_l`` for
    ``multilabel``, both counted on the training targets.

    Raises:
        ConfigError: ``spec`` is another string, a list of the wrong length or with negative values,
            or ``balanced`` without training targets.
    """
    if spec is None or (isinstance(spec, (list, tuple)) and not spec):
        return None
    if isinstance(spec, str):
        if spec != "balanced":
            raise ConfigError(
                f"class_weights must be 'balanced' or a list of numbers. Received: class_weights={spec!r}"
            )
        if train_targets is None:
            raise ConfigError("class_weights=balanced needs the training targets to count the classes")
        targets = torch.as_tensor(train_targets)
        if task == "classify":
            k = num_outputs or int(targets.max()) + 1
            counts = torch.bincount(targets.long().reshape(-1), minlength=k).double()
            return (len(targets) / (k * counts.clamp_min(1))).float()
        positives = targets.double().sum(dim=0)
        return ((len(targets) - positives) / positives.clamp_min(1)).float()
    weights = _check_weights("class_weights", spec)
    if num_outputs is not None and weights is not None and len(weights) != num_outputs:
        kind = "classes" if task == "classify" else "labels"
        raise ConfigError(
            f"class_weights has {len(weights)} values for {num_outputs} {kind}; give one per class or use balanced. "
            f"Received: class_weights={list(spec)!r}"
        )
    return weights


def _check_weights(name: str, values: Sequence[float] | torch.Tensor | None) -> torch.Tensor | None:
    if values is None:
        return None
    try:
        weights = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a list of numbers >= 0. Received: {name}={values!r}") from exc
    if weights.numel() == 0 or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ConfigError(f"{name} must be a non-empty list of finite numbers >= 0. Received: {name}={values!r}")
    return weights


def _check_smoothing(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < 1) or math.isnan(value):
        raise ConfigError(f"label_smoothing must be a number in [0, 1). Received: label_smoothing={value!r}")
    return float(value)
