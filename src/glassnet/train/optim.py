"""Optimisers and learning-rate schedules by name."""

from __future__ import annotations

import math

import torch
from torch import nn

from glassnet.errors import UnknownNameError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "none")


def build_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum); biases and norm weights get no weight decay."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    raise UnknownNameError("optimizer", name, OPTIMIZERS)


def build_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_fraction: float = 0.1
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over ``total_steps``.

    ``onecycle``: linear warm-up from lr/25 to lr over ``warmup_fraction`` of the steps (at least
    one), then cosine decay to lr/1e4. ``cosine``: cosine decay from lr to 0. ``none``: constant.
    All are multiplicative factors of each group's lr, defined for any number of steps (torch's
    ``OneCycleLR`` divides by zero when a short run has less than one warm-up step).
    """
    total_steps = max(total_steps, 1)
    if name == "onecycle":
        warmup = max(1, round(warmup_fraction * total_steps))
        decay_steps = max(total_steps - warmup, 1)

        def one_cycle(step: int) -> float:
            if step < warmup:
                return 1 / 25 + (1 - 1 / 25) * step / warmup
            progress = min(step - warmup, decay_steps) / decay_steps
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)
    if name == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise UnknownNameError("schedule", name, SCHEDULES)
