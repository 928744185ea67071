"""The ``seq2seq`` task (token cross-entropy, token accuracy, exact match) and its teacher-forcing step.

Outputs are logits ``N x T_out x V`` and targets ``N x T`` token ids that end with ``<eos>`` and
are padded with ``pad_index`` (0). Padding never counts in the loss or the metrics. During training
``TeacherForcingStep`` calls ``model(inputs, targets)`` so the decoder reads the true previous
token; ``Trainer.evaluate`` and ``predict`` call ``model(inputs)``, which decodes greedily, so the
validation and test figures measure real generation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.errors import DataError
from glassnet.train.steps import SupervisedStep, register_step
from glassnet.train.tasks import Task, TokenTask, register_task


@register_task
class SequenceToSequence(TokenTask):
    """Sequence-to-sequence generation scored per token and per whole sequence.

    Args:
        pad_index: the target padding id, ignored by the loss and the metrics.
    """

    name = "seq2seq"
    monitor_modes = {"loss": "min", "token_accuracy": "max", "exact_match": "max"}
    default_step = "teacher_forcing"
    headline_metrics = ("token_accuracy", "exact_match")

    def __init__(self, pad_index: int = 0) -> None:
        super().__init__(ignore_index=pad_index)
        self.pad_index = pad_index

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``, ``token_accuracy`` (non-padding tokens) and ``exact_match``.

        A sequence matches exactly when every non-padding target token, ``<eos>`` included, is
        predicted at its position; what the model emits after its ``<eos>`` does not count.
        """
        targets = self.align(outputs, targets)
        real = targets != self.pad_index
        correct = outputs.argmax(dim=2) == targets
        return {
            "loss": self.loss(outputs.float(), targets).item(),
            "token_accuracy": (correct & real).sum().item() / max(real.sum().item(), 1),
            "exact_match": (correct | ~real).all(dim=1).float().mean().item(),
        }

    def align(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Targets padded to the outputs' length (greedy decoding may run longer than a batch's targets)."""
        if outputs.ndim != 3 or targets.ndim != 2 or len(outputs) != len(targets):
            raise DataError(
                f"seq2seq needs N x T x V logits and N x T target ids. Received: outputs {tuple(outputs.shape)}, "
                f"targets {tuple(targets.shape)}"
            )
        extra = targets.shape[1] - outputs.shape[1]
        if extra > 0:
            if (targets[:, outputs.shape[1] :] != self.pad_index).any():
                raise DataError(
                    f"targets hold {targets.shape[1]} tokens but the model decodes only {outputs.shape[1]}; "
                    "raise spec.extra['max_target_length']"
                )
            return targets[:, : outputs.shape[1]]
        return F.pad(targets.long(), (0, -extra), value=self.pad_index)


class TeacherForcingStep(SupervisedStep):
    """One batch with teacher forcing: ``task.loss(model(inputs, targets), targets)``.

    Args:
        augment: optional ``(inputs, targets) -> (inputs, targets)`` applied to training batches.
    """

    name = "teacher_forcing"

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> torch.Tensor:
        """Return the token cross-entropy of the model decoding with the true previous tokens."""
        inputs, targets = batch
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        return task.loss(model(inputs, targets), targets)


@register_step("teacher_forcing", description="sequence-to-sequence decoding from the true previous tokens")
def teacher_forcing_step(spec: Any = None, augment: Any = None) -> TeacherForcingStep:
    return TeacherForcingStep(augment=augment)
