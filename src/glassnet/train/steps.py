"""Training steps: what one batch does (the loop itself lives in ``Trainer``).

A new learning scheme (adversarial training, distillation, semi-supervised, GANs) is a new step
class, never a branch in the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from glassnet.train.tasks import Task

Augmentation = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SupervisedStep:
    """Plain supervised learning: the task's loss on the model's outputs.

    Args:
        augment: optional ``(inputs, targets) -> (inputs, targets)`` applied to each training
            batch on its device (never to validation or test batches). Mixing augmentations may
            return per-class probabilities as targets.
    """

    def __init__(self, augment: Augmentation | None = None) -> None:
        self.augment = augment

    def training_step(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, task: Task) -> torch.Tensor:
        """Return the loss of one batch (the trainer calls ``backward`` and the optimiser)."""
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        return task.loss(model(inputs), targets)
