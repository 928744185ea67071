"""Plain supervised learning: the task's loss on the model's outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from glassnet.train.steps.base import Step
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.train.tasks import Task


class SupervisedStep(Step):
    """``task.loss(model(inputs), targets)`` on batches of ``(inputs, targets)``.

    Args:
        augment: optional ``(inputs, targets) -> (inputs, targets)`` applied to each training
            batch on its device (never to validation or test batches). Mixing augmentations may
            return per-class probabilities as targets.
    """

    name = "supervised"

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> torch.Tensor:
        """Return the loss of one batch (the trainer calls ``backward`` and the optimiser)."""
        inputs, targets = batch
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        return task.loss(model(inputs), targets)


@register_step("supervised", description="the task's loss on the model's outputs (the default)")
def supervised_step(spec: Any = None, augment: Any = None) -> SupervisedStep:
    return SupervisedStep(augment=augment)
