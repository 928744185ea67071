"""Memory budget: how many model rows one forward and backward pass may hold.

Captum's methods expand each example into many model rows (integrated gradients: one per step;
GradientSHAP and SmoothGrad: one per sample; occlusion: one per window) and, by default, push
them through the model all at once. The number of rows that fit a budget is measured once per
model with a probe: forward hooks add up the activations that one example produces, and a pass
with input gradients is budgeted at twice that (activations, then the gradients of the backward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

DEFAULT_MEMORY_MB = 512.0
# a pass with input gradients holds the forward activations plus about as much again for the backward
# pass; measured on the 28 x 28 CNN of benchmarks/explain_vs_captum.py it holds about one times them
BACKWARD_FACTOR = 2


@dataclass(frozen=True)
class Budget:
    """How an explanation is split into passes.

    Attributes:
        memory_mb: the budget for one pass.
        bytes_per_row: measured activation memory of one model row, forward and backward.
        rows_per_pass: model rows one pass may hold (at least 1).
    """

    memory_mb: float
    bytes_per_row: int
    rows_per_pass: int

    def chunk(self, n: int, expansion: int = 1) -> int:
        """Examples per chunk when each example becomes ``expansion`` model rows (at least 1, at most ``n``)."""
        return max(1, min(n, self.rows_per_pass // max(1, expansion)))

    def to_dict(self) -> dict[str, float | int]:
        return {"memory_mb": self.memory_mb, "bytes_per_row": self.bytes_per_row, "rows_per_pass": self.rows_per_pass}


def activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the tensors that every leaf module outputs for one example (the forward activations)."""
    total = [example.numel() * example.element_size()]

    def hook(module: nn.Module, args: object, output: object) -> None:
        for tensor in _tensors(output):
            total[0] += tensor.numel() * tensor.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    data = getattr(value, "data", None)  # PackedSequence
    return [data] if isinstance(data, torch.Tensor) else []


def plan(model: nn.Module, example: torch.Tensor, memory_mb: float = DEFAULT_MEMORY_MB) -> Budget:
    """Measure one example's memory and size the passes to ``memory_mb``.

    Raises:
        ValueError: ``memory_mb`` is not positive (callers turn this into a ConfigError).
    """
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be positive. Received: memory_mb={memory_mb!r}")
    per_row = max(1, BACKWARD_FACTOR * activation_bytes(model, example))
    rows = max(1, int(memory_mb * 2**20 // per_row))
    return Budget(memory_mb=float(memory_mb), bytes_per_row=per_row, rows_per_pass=rows)
