"""Training steps: what one batch does (the loop itself lives in ``Trainer``).

A new learning scheme (adversarial training, distillation, semi-supervised, GANs) is a new step
class, never a branch in the loop.
"""

from __future__ import annotations

import torch
from torch import nn

from glassnet.train.tasks import Task


class SupervisedStep:
    """Plain supervised learning: the task's loss on the model's outputs for clean inputs."""

    def training_step(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, task: Task) -> torch.Tensor:
        """Return the loss of one batch (the trainer calls ``backward`` and the optimiser)."""
        return task.loss(model(inputs), targets)
