"""Measurement of model variants in one process: size, parameters, test metrics, batch-1 latency
(p50, p95) and batch-64 throughput, timed in interleaved rounds so machine noise hits all alike."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from glassnet.progress import Progress, note, progress_bar
from glassnet.train.tasks import Task

Forward = Callable[[torch.Tensor], torch.Tensor]
PRIMARY_METRIC = {
    "classify": "accuracy", "multilabel": "micro_f1", "regress": "rmse", "forecast": "rmse", "segment": "miou",
    "detect": "map", "instances": "map", "transcribe": "wer", "synthesize": "mel_l1",
}  # fmt: skip
LOWER_IS_BETTER = ("rmse", "mae", "loss", "wer", "cer", "mel_l1")


@dataclass
class Variant:
    """One model to measure.

    Attributes:
        name: short label, e.g. ``fp32``, ``int8-ort-static``, ``pruned-structured``.
        method: what produced it, in words.
        runtime: ``pytorch`` or ``onnxruntime``.
        forward: ``inputs -> outputs`` on the CPU (no gradients).
        parameters: parameter count (quantised variants count their source model's parameters).
        nonzero_parameters: parameters that are not exactly zero.
        size_bytes: bytes of the file that stores it (see ``notes`` when it is not written).
        file: where it was written (None when it is not).
        notes: anything a reader must know to interpret the figures.
        extra: method-specific facts (sparsity, exporter, ...).
    """

    name: str
    method: str
    runtime: str
    forward: Forward
    parameters: int
    nonzero_parameters: int
    size_bytes: int
    file: str | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measurement:
    """Figures of one variant (see ``measure``)."""

    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float
    throughput: float


def torch_forward(model: nn.Module) -> Forward:
    """A no-gradient CPU forward function of ``model`` in eval mode."""
    model = model.cpu().eval()

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(inputs)

    return forward


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(parameters, nonzero parameters)`` of a PyTorch model."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return total, nonzero


def serialized_size(model: nn.Module) -> int:
    """Bytes of the model's weights as a safetensors file (computed in memory)."""
    from safetensors.torch import save

    return len(save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))


def pickled_state_size(model: nn.Module) -> int:
    """Bytes of ``torch.save(state_dict)`` in memory: the size of a PyTorch-quantised model, whose
    packed int8 weights safetensors cannot hold. Nothing is written to disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def evaluate(forward: Forward, inputs: torch.Tensor, targets: torch.Tensor, task: Task, batch_size: int = 512):
    """The task's metrics of ``forward`` on ``inputs``."""
    outputs = torch.cat([forward(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])
    return {k: float(v) for k, v in task.metrics(outputs.float(), targets).items()}


def measure(
    variants: Sequence[Variant],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    repeats: int = 100,
    batch_size: int = 64,
    progress: Progress = None,
) -> list[Measurement]:
    """Measure every variant on the same inputs.

    Latency is the wall time of one forward pass of one example (``repeats`` of them, p50 and
    p95); throughput is examples per second through batches of ``batch_size`` (median batch).
    Rounds alternate between the variants, so a busy moment on the machine slows all of them.
    ``progress`` draws a bar over the test-set passes and the timing rounds (True on stderr, or a text
    stream; None or False draws nothing).
    """
    rounds = max(5, repeats // 5)
    with progress_bar(len(variants) + repeats + rounds, f"measure {len(variants)} variants", progress) as bar:
        return _measure(variants, inputs, targets, task, repeats, rounds, batch_size, bar)


def _measure(
    variants: Sequence[Variant],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    task: Task,
    repeats: int,
    rounds: int,
    batch_size: int,
    bar: Any,
) -> list[Measurement]:
    note(bar, f"metrics on {len(inputs):,} test examples")
    metrics = []
    for v in variants:
        metrics.append(evaluate(v.forward, inputs, targets, task))
        bar.update(1)
    n = len(inputs)
    batch = (
        inputs[:batch_size]
        if n >= batch_size
        else inputs.repeat((batch_size + n - 1) // n, *[1] * (inputs.dim() - 1))[:batch_size]
    )
    for v in variants:  # warm-up: first calls allocate and pick kernels
        for _ in range(3):
            v.forward(inputs[:1])
            v.forward(batch)
    single: list[list[float]] = [[] for _ in variants]
    batched: list[list[float]] = [[] for _ in variants]
    note(bar, "batch-1 latency")
    for r in range(repeats):
        example = inputs[r % n : r % n + 1]
        for k, v in enumerate(variants):
            start = time.perf_counter()
            v.forward(example)
            single[k].append(time.perf_counter() - start)
        bar.update(1)
    note(bar, f"batch-{len(batch)} throughput")
    for _ in range(rounds):
        for k, v in enumerate(variants):
            start = time.perf_counter()
            v.forward(batch)
            batched[k].append(time.perf_counter() - start)
        bar.update(1)
    note(bar, "")
    results = []
    for k in range(len(variants)):
        times = np.asarray(single[k]) * 1000
        results.append(
            Measurement(
                metrics=metrics[k],
                latency_ms_p50=float(np.percentile(times, 50)),
                latency_ms_p95=float(np.percentile(times, 95)),
                throughput=float(len(batch) / np.median(batched[k])),
            )
        )
    return results


def is_number(value: Any) -> bool:
    """A real number (not a bool): what a results table can format."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell(value: Any, spec: str, unit: str = "") -> str:
    """``value`` formatted with ``spec`` and ``unit`` for a results table; "n/a" for a missing value (NaN is
    stored as null) or anything that is not a number."""
    return format(value, spec) + unit if is_number(value) else "n/a"
