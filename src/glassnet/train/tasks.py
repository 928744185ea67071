"""Tasks: the loss, the metrics and the decoding of outputs for each kind of target."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from glassnet.errors import UnknownNameError


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
    """Single-label classification with cross-entropy on logits."""

    name = "classify"
    monitor_modes = {"loss": "min", "accuracy": "max", "macro_f1": "max"}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # class indices, or per-class probabilities from mixing augmentations (mixup, cutmix)
        return F.cross_entropy(outputs, targets)

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


_TASKS: dict[str, type[Task]] = {"classify": Classification, "regress": Regression, "forecast": Forecasting}


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
