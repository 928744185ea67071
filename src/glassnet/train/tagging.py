"""The ``tag`` task (sequence labelling): per-step cross-entropy, token accuracy and macro-F1 over tags.

Inputs are sequences ``N x T`` (token ids) or ``N x T x C``; targets are tag ids ``N x T`` with
``ignore_index`` (-100, PyTorch's default) at padding; models return logits ``N x T x K``, one
prediction per step. Padding never counts: not in the loss, not in any metric.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from glassnet.errors import DataError
from glassnet.train.tasks import Task, register_task

IGNORE_INDEX = -100


@register_task
class Tagging(Task):
    """One class per time step, scored over the steps that are not padding.

    Metrics:
        ``loss``: mean cross-entropy per tagged step (nats).
        ``accuracy``: share of tagged steps whose tag is right (token accuracy).
        ``macro_f1``: F1 of each tag (one against the rest), averaged over the tags that occur in
            the targets or the predictions (as scikit-learn's ``f1_score(average="macro")``).
        ``sequence_accuracy``: share of sequences with every tagged step right.

    Args:
        ignore_index: the target id of padding steps.
    """

    name = "tag"
    monitor_modes = {"loss": "min", "accuracy": "max", "macro_f1": "max", "sequence_accuracy": "max"}

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the steps whose target is not ``ignore_index``."""
        self._check(outputs, targets)
        return F.cross_entropy(outputs.transpose(1, 2), targets.long(), ignore_index=self.ignore_index)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``, ``accuracy``, ``macro_f1`` and ``sequence_accuracy`` (see the class docstring).

        Raises:
            DataError: the shapes do not match, or every target is padding.
        """
        self._check(outputs, targets)
        scores = tag_metrics(outputs.argmax(dim=2), targets, outputs.shape[2], self.ignore_index)
        return {"loss": self.loss(outputs.float(), targets).item(), **scores}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The most likely tag of each step ``N x T``, its probability, and all probabilities ``N x T x K``."""
        probabilities = outputs.float().softmax(dim=2)
        confidence, prediction = probabilities.max(dim=2)
        return {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}

    def confusion_matrix(self, outputs: torch.Tensor, targets: torch.Tensor) -> list[list[int]]:
        """Counts over the tagged steps, true tags as rows and predicted tags as columns."""
        self._check(outputs, targets)
        return tag_confusion(outputs.argmax(dim=2), targets, outputs.shape[2], self.ignore_index).tolist()

    def _check(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        if outputs.ndim != 3 or targets.shape != outputs.shape[:2]:
            raise DataError(
                f"tag needs N x T x K logits and N x T tag ids (padding {self.ignore_index}). Received: outputs "
                f"{tuple(outputs.shape)}, targets {tuple(targets.shape)}"
            )
        tagged = targets[targets != self.ignore_index]
        if len(tagged) and (tagged.min() < 0 or tagged.max() >= outputs.shape[2]):
            raise DataError(
                f"tag ids must be in 0..{outputs.shape[2] - 1} (or {self.ignore_index} for padding). "
                f"Received ids from {int(tagged.min())} to {int(tagged.max())}"
            )


def tag_confusion(
    predicted: torch.Tensor, targets: torch.Tensor, num_tags: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """int64 counts ``num_tags x num_tags`` over the tagged steps (true rows, predicted columns)."""
    valid = targets != ignore_index
    pairs = targets[valid].long() * num_tags + predicted[valid].long()
    return torch.bincount(pairs, minlength=num_tags * num_tags).reshape(num_tags, num_tags)


def tag_metrics(
    predicted: torch.Tensor, targets: torch.Tensor, num_tags: int, ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """``accuracy``, ``macro_f1`` and ``sequence_accuracy`` of predicted tag ids ``N x T`` (see ``Tagging``).

    Also scores predictions that do not come from a model (e.g. a rule), so baselines and models
    are measured alike.

    Raises:
        DataError: the shapes differ or every target is padding.
    """
    if predicted.shape != targets.shape:
        raise DataError(f"predicted tags {tuple(predicted.shape)} and targets {tuple(targets.shape)} differ in shape")
    valid = targets != ignore_index
    if not valid.any():
        raise DataError(f"every target is padding ({ignore_index}); there is nothing to score")
    matrix = tag_confusion(predicted, targets, num_tags, ignore_index).double()
    right = (predicted == targets) | ~valid
    return {
        "accuracy": (matrix.diagonal().sum() / matrix.sum()).item(),
        "macro_f1": float(per_tag_scores(matrix)["f1"][_present(matrix)].mean()),
        "sequence_accuracy": right.all(dim=1).double().mean().item(),
    }


def per_tag_scores(matrix: Any) -> dict[str, torch.Tensor]:
    """Precision, recall, F1 and support of each tag from a confusion matrix (true rows, predicted columns).

    A score whose denominator is zero is 0, as in scikit-learn with ``zero_division=0``.
    """
    counts = torch.as_tensor(matrix, dtype=torch.float64)
    hits = counts.diagonal()
    predicted, actual = counts.sum(dim=0), counts.sum(dim=1)
    precision = hits / predicted.clamp_min(1)
    recall = hits / actual.clamp_min(1)
    f1 = 2 * hits / (predicted + actual).clamp_min(1)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def _present(matrix: torch.Tensor) -> torch.Tensor:
    """Tags that occur among the targets or the predictions."""
    return (matrix.sum(dim=0) + matrix.sum(dim=1)) > 0
