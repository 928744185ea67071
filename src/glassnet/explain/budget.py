"""Memory budget: how many model rows one forward and backward pass may hold.

Captum's methods expand each example into many model rows (integrated gradients: one per step;
GradientSHAP and SmoothGrad: one per sample; occlusion: one per window) and, by default, push
them through the model all at once. The number of rows that fit a budget is measured once per
model with a probe: forward hooks add up the activations that one example produces, and a pass
with input gradients is budgeted at one and a half times that (the activations the forward pass
saves, then the gradients of the backward pass, which are freed layer by layer).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from glassnet.explain.names import DEFAULT_MEMORY_MB

# a pass with input gradients holds the forward activations and the gradients of the backward pass, which
# are freed layer by layer: on the 28 x 28 CNN of benchmarks/explain_vs_captum.py the peak of a pass of
# 256 or 1,024 rows measured 1.15 to 1.3 times the summed leaf outputs (with or without frozen parameters)
BACKWARD_FACTOR = 1.5
# a pass without gradients frees each activation once the next layer has it: twice the rows fit
NO_GRAD_FACTOR = 2
# Perturbation methods (occlusion, feature ablation and permutation, LIME, KernelSHAP) only run forward
# passes. On a CPU a pass of more rows than this is no faster per row: occluding 64 Fashion-MNIST-sized
# inputs (169 window positions) took 1.25 s with 64 rows per pass, 1.22 s with 256 and 1.82 s with 1,024
# (2 threads; 1.96 / 1.90 / 2.82 s on 1 thread), so filling the budget there only costs memory. On GPUs
# the budget alone decides: large passes are what keep them busy.
CPU_PERTURBATION_ROWS = 64
# Gradient passes on a CPU (integrated gradients, GradientSHAP, SmoothGrad): rows whose summed activations
# stay near the cache run about twice as fast per row as one pass of every row. GradientSHAP of 64
# Fashion-MNIST-sized inputs, 20 samples (1,280 rows, 252 KB of activations each; 32 MB of L3 cache, 1 thread,
# CPU time on a busy machine): 0.38-0.58 s in one pass (Captum's default); 0.18 / 0.17 / 0.17 / 0.18 s with
# passes of 16 / 32 / 48 / 64 MB of activations, 0.33 s with 105 MB. 32 MB sits in the middle of the flat part,
# with room for a cache shared with other processes. A ResNet (3.6 MB per row) slows down below 16 rows per pass.
CPU_GRADIENT_PASS_BYTES = 32 * 2**20
CPU_GRADIENT_MIN_ROWS = 16


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

    @property
    def rows_without_gradients(self) -> int:
        """Rows of a pass without gradients (predictions, deletion curves): nothing is kept for a backward pass."""
        return self.rows_per_pass * NO_GRAD_FACTOR

    def perturbations_per_pass(self, examples: int, device: torch.device | str, limit: int | None = None) -> int:
        """Perturbations (window positions, feature groups, samples) evaluated per forward pass of ``examples``.

        Fills the budget, except on a CPU, where a pass holds at most ``max(examples, CPU_PERTURBATION_ROWS)``
        rows: one perturbation per pass once the examples alone fill that many rows (Captum's own default).
        """
        rows = self.rows_per_pass
        if torch.device(device).type == "cpu":
            rows = min(rows, max(examples, CPU_PERTURBATION_ROWS))
        per_pass = max(1, rows // max(1, examples))
        return per_pass if limit is None else max(1, min(limit, per_pass))

    def gradient_rows(self, device: torch.device | str) -> int:
        """Model rows per forward and backward pass of integrated gradients, GradientSHAP and SmoothGrad.

        On a CPU: the rows whose activations make up ``CPU_GRADIENT_PASS_BYTES``, at least
        ``CPU_GRADIENT_MIN_ROWS``, never more than the budget; elsewhere the budget alone.
        """
        if torch.device(device).type != "cpu":
            return self.rows_per_pass
        activation = max(1.0, self.bytes_per_row / BACKWARD_FACTOR)
        return max(1, min(self.rows_per_pass, max(CPU_GRADIENT_MIN_ROWS, int(CPU_GRADIENT_PASS_BYTES // activation))))

    def to_dict(self) -> dict[str, float | int]:
        return {"memory_mb": self.memory_mb, "bytes_per_row": self.bytes_per_row, "rows_per_pass": self.rows_per_pass}


def activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the tensors that every leaf module outputs for one example (the forward activations)."""
    return probe(model, example)[0]


def probe(model: nn.Module, example: torch.Tensor) -> tuple[int, torch.Tensor]:
    """One forward pass of the first example without gradients: its activation bytes and the model's output
    (reused as that example's prediction, so the probe costs no extra pass)."""
    total = [example[:1].numel() * example.element_size()]

    def hook(module: nn.Module, args: object, output: object) -> None:
        for tensor in _tensors(output):
            total[0] += tensor.numel() * tensor.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            output = model(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total[0], output


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    data = getattr(value, "data", None)  # PackedSequence
    return [data] if isinstance(data, torch.Tensor) else []


# probes per model: architecture and input shape -> (activation bytes, output shape of one example)
_PROBES: weakref.WeakKeyDictionary[nn.Module, dict[Any, tuple[int, tuple[int, ...]]]] = weakref.WeakKeyDictionary()


def cached_probe(model: nn.Module, example: torch.Tensor) -> tuple[int, tuple[int, ...], torch.Tensor | None]:
    """``probe``, measured once per model architecture, input shape, dtype and device.

    Activation sizes do not depend on the weights, so repeated calls on one model (``explain_run``
    makes one per check) skip the probe's forward pass. Returns the activation bytes, the shape of
    one example's output, and the first example's output when the probe ran now (else None).
    """
    key = (
        tuple((name, type(m).__name__) for name, m in model.named_modules()),
        tuple(tuple(p.shape) for p in model.parameters()),
        tuple(example.shape[1:]),
        example.dtype,
        example.device.type,
        model.training,
    )
    known = _PROBES.get(model, {}).get(key)
    if known is not None:
        return known[0], known[1], None
    measured, output = probe(model, example)
    shape = tuple(output.shape[1:])
    _PROBES.setdefault(model, {})[key] = (measured, shape)
    return measured, shape, output


def plan(
    model: nn.Module, example: torch.Tensor, memory_mb: float = DEFAULT_MEMORY_MB, activation: int | None = None
) -> Budget:
    """Measure one example's memory and size the passes to ``memory_mb``.

    ``activation``: the example's activation bytes when ``probe`` already measured them.

    Raises:
        ValueError: ``memory_mb`` is not positive (callers turn this into a ConfigError).
    """
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be positive. Received: memory_mb={memory_mb!r}")
    measured = activation_bytes(model, example) if activation is None else activation
    per_row = max(1, int(BACKWARD_FACTOR * measured))
    rows = max(1, int(memory_mb * 2**20 // per_row))
    return Budget(memory_mb=float(memory_mb), bytes_per_row=per_row, rows_per_pass=rows)
