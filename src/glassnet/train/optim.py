"""Optimisers and learning-rate schedules by name."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from glassnet.errors import ConfigError, UnknownNameError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "plateau", "none")


def build_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9, lr_decay: float = 1.0
) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum); biases and norm weights get no weight decay.

    ``lr_decay < 1`` gives each layer group of the model its own lr, ``lr_decay`` times that of the
    group above it (discriminative fine-tuning, ``glassnet.train.finetune.discriminative_groups``).
    """
    if lr_decay != 1:
        from glassnet.train.finetune import discriminative_groups

        groups = discriminative_groups(model, lr, weight_decay, lr_decay)
    else:
        decay, no_decay = [], []
        for param in model.parameters():
            if param.requires_grad:
                (decay if param.ndim > 1 else no_decay).append(param)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return adam(groups, lr=lr, decoupled=True)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    raise UnknownNameError("optimizer", name, OPTIMIZERS)


FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def adam(parameters: Any, lr: float, decoupled: bool = False, **options: Any) -> torch.optim.Optimizer:
    """Adam (AdamW when ``decoupled``), fused into one kernel per step where every parameter allows it.

    The same update as the per-tensor loop, about 4x faster on a CPU (the ``ddpm`` U-Net's 115 tensors:
    2.1 ms against 8.3 ms a step; the default CNN's: 0.22 against 0.63 ms).

    Args:
        parameters: tensors, or parameter groups (dicts with ``params``).
        lr: the learning rate.
        decoupled: decoupled weight decay (AdamW).
        **options: more arguments of the optimiser (``betas``, ``eps``, ``weight_decay``).
    """
    parameters = list(parameters)
    tensors = [p for group in parameters for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype in FUSED_DTYPES for p in tensors)
    kind = torch.optim.AdamW if decoupled else torch.optim.Adam
    return kind(parameters, lr=lr, fused=fused or None, **options)


def warmup_steps(warmup: float | int | None, total_steps: int, default: float) -> int:
    """Warm-up length in steps: an int counts steps, a float in [0, 1) is a fraction of ``total_steps``.

    Raises:
        ConfigError: ``warmup`` is negative, or a float of 1 or more.
    """
    if warmup is None:
        warmup = default
    if isinstance(warmup, bool) or warmup < 0 or (isinstance(warmup, float) and warmup >= 1):
        raise ConfigError(
            "warmup must be a number of steps (an integer >= 0) or a fraction of the run in [0, 1). "
            f"Received: warmup={warmup!r}"
        )
    steps = warmup if isinstance(warmup, int) else round(warmup * total_steps)
    return min(steps, total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    total_steps: int,
    warmup_fraction: float = 0.1,
    warmup: float | int | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over ``total_steps`` (multiplicative factors of each group's lr).

    ``onecycle``: linear warm-up from lr/25 to lr (over ``warmup``, by default ``warmup_fraction``
    of the steps, at least one), then cosine decay to lr/1e4. ``cosine``: linear warm-up from 0
    over ``warmup`` steps (none by default), then cosine decay from lr to 0. ``none`` and
    ``plateau``: constant per step (``plateau`` lowers the lr per epoch, see ``build_plateau``).
    Defined for any number of steps (torch's ``OneCycleLR`` divides by zero when a short run has
    less than one warm-up step).
    """
    total_steps = max(total_steps, 1)
    if name == "onecycle":
        warm = max(1, warmup_steps(warmup, total_steps, warmup_fraction))
        decay_steps = max(total_steps - warm, 1)

        def one_cycle(step: int) -> float:
            if step < warm:
                return 1 / 25 + (1 - 1 / 25) * step / warm
            progress = min(step - warm, decay_steps) / decay_steps
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)
    if name == "cosine":
        warm = warmup_steps(warmup, total_steps, 0.0)
        decay_steps = max(total_steps - warm, 1)

        def cosine(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            return 0.5 * (1 + math.cos(math.pi * min(step - warm, decay_steps) / decay_steps))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    if name == "plateau":  # leaves the lr alone between epochs, so the plateau scheduler's cuts stay
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise UnknownNameError("schedule", name, SCHEDULES)


def build_plateau(
    optimizer: torch.optim.Optimizer, mode: str, factor: float = 0.5, patience: int = 2
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """Multiply the lr by ``factor`` after ``patience`` epochs without improvement of the monitored metric."""
    if not 0 < factor < 1 or patience < 0:
        raise ConfigError(
            f"plateau_factor must be in (0, 1) and plateau_patience >= 0. "
            f"Received: plateau_factor={factor}, plateau_patience={patience}"
        )
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
