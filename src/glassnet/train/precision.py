"""Numeric precision of training: fp32, bf16 autocast, fp16 autocast with a gradient scaler."""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path
from typing import Any

import torch

from glassnet.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``ConfigError`` unless ``precision`` is known and sensible on ``device``.

    fp16 runs on CUDA only: CPUs have no fast fp16 matrix units (on this kind of machine fp16 matmul
    is many times slower than fp32), while bf16 keeps fp32's range and is fast on recent CPUs.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "precision=fp16 needs a CUDA device: on a CPU fp16 matrix products are emulated and far slower than "
            "fp32, and fp16's narrow range needs a gradient scaler that only CUDA provides. "
            "Use precision=bf16 (fast on CPUs with AVX-512 BF16 / AMX, no scaler needed) or fp32"
        )
    if precision == "bf16" and device.type == "cpu" and not bf16_units(device):
        warnings.warn(
            "precision=bf16 on this CPU, which has no bf16 units (AVX-512 BF16 or AMX): bf16 is emulated and runs "
            "several times slower than fp32 (8.9x for the Fashion-MNIST cnn on an AVX2 CPU). Use precision=fp32, "
            "or --fast, which picks the precision for the hardware",
            stacklevel=2,
        )


def bf16_units(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA with bf16 support, a CPU with AVX-512 BF16 or AMX
    (x86) or the BF16 extension (Arm). Elsewhere bf16 autocast is emulated, slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def _cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (``flags`` on x86, ``Features`` on Arm); None where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 on CUDA; None otherwise (bf16 and fp32 need none)."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
