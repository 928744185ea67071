"""The moving average of a network's weights that generative steps keep for sampling.

``ema = d * ema + (1 - d) * weights`` after every update, with the decay warming up as
``min(decay, (1 + n) / (10 + n))`` so that early averages are not dominated by the random start;
buffers (batch-norm statistics) are copied. The count ``n`` is part of the step's checkpoint
state, so a resumed run averages exactly as an uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Keeps ``averaged`` (a copy of ``live`` that is never trained) as the moving average of ``live``."""

    def __init__(self, decay: float) -> None:
        self.decay, self.updates = float(decay), 0
        self._pairs: tuple[list[torch.Tensor], ...] | None = None
        self._modules: tuple[int, int] | None = None

    @torch.no_grad()
    def update(self, live: nn.Module, averaged: nn.Module) -> None:
        """One averaging step of ``averaged`` towards ``live``."""
        if self._pairs is None or self._modules != (id(live), id(averaged)):
            params, targets = dict(live.named_parameters()), dict(averaged.named_parameters())
            buffers, target_buffers = dict(live.named_buffers()), dict(averaged.named_buffers())
            self._pairs = (
                [targets[k] for k in params],
                [params[k].detach() for k in params],
                [target_buffers[k] for k in buffers],
                [buffers[k] for k in buffers],
            )
            self._modules = (id(live), id(averaged))
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged_params, live_params, averaged_buffers, live_buffers = self._pairs
        torch._foreach_lerp_(averaged_params, live_params, 1 - decay)
        for target, source in zip(averaged_buffers, live_buffers):
            target.copy_(source)

    def reset(self) -> None:
        """Forget the tensors (new optimisers, a moved model); the update count stays."""
        self._pairs, self._modules = None, None
