"""Tasks: the loss, the metrics and the decoding of outputs for each kind of target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from glassnet.errors import ConfigError, DataError, UnknownNameError


class Task:
    """Loss and metrics for one kind of target; subclasses define them.

    Attributes:
        name: the ``DataSpec.task`` it serves.
        monitor_modes: for each metric, ``"min"`` or ``"max"`` (which direction is better).
    """

    name = ""
    monitor_modes: dict[str, str] = {"loss": "min"}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Turn raw outputs into predictions (``{"prediction": ..., ...}``)."""
        raise NotImplementedError

    def make_step(self, augment: Any = None) -> Any:
        """The training step this task learns with (plain supervised learning by default).

        A task whose batches need another scheme (e.g. teacher forcing for sequence-to-sequence)
        returns its own step object here; the ``Trainer`` loop stays the same.
        """
        from glassnet.train.steps import SupervisedStep

        return SupervisedStep(augment=augment)

    def mode(self, metric: str) -> str:
        """``"min"`` or ``"max"`` for a metric name such as ``val/accuracy``."""
        prefix, _, key = metric.rpartition("/")
        if key not in self.monitor_modes:
            known = [f"{prefix}/{k}" if prefix else k for k in self.monitor_modes]
            raise UnknownNameError(f"metric for {self.name}", metric, known)
        return self.monitor_modes[key]


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


class Regression(Task):
    """Regression with mean squared error in the target's natural units."""

    name = "regress"
    monitor_modes = {"loss": "min", "mae": "min", "rmse": "min", "r2": "max"}

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
