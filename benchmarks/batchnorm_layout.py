"""Batch norm's forward + backward by channel count, memory layout and precision on this CPU.

    .venv/bin/python benchmarks/batchnorm_layout.py [--channels 16 24 32 48 64] [--side 64] [--batch 64]

A convolutional network's batch norm runs on every feature map twice a step (forward, backward).
On the 2-core Intel Xeon with AMX of issue 23, a channels-last map of 24 channels took several
times as long as one of 32 (more elements) in bf16; the profile names aten's ``native_batch_norm``
and its backward, and why that width is slow was not established. This script times
``BatchNorm2d`` forward + backward on a ``batch x C x side x side`` map for each channel count, in
NCHW and NHWC, fp32 and bf16 (CPU autocast, as a run with ``precision=bf16`` does), median of
``--repeats`` timings of ``--steps`` calls, and prints each time with its ratio to the NCHW bf16
one and per million elements, so a width can be chosen before a long run (e.g. a U-Net's
``model.channels``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def time_batchnorm(shape: tuple[int, ...], precision: str, channels_last: bool, steps: int, repeats: int) -> float:
    """Median milliseconds of one forward + backward of ``BatchNorm2d`` on a random map of ``shape``."""
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(shape[1])
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x = x.to(dtype).requires_grad_()
    grad = torch.randn_like(x)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = norm(x)
        y.backward(grad)

    for _ in range(3):
        step()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        timings.append((time.perf_counter() - start) / steps * 1e3)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 24, 32, 48, 64])
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"BatchNorm2d forward + backward, batch {args.batch}, {args.side}x{args.side}, torch threads "
          f"{torch.get_num_threads()}; ms (x the NCHW bf16 time; ms per million elements)")  # fmt: skip
    print(f"{'channels':>8}  {'NCHW fp32':>22}  {'NCHW bf16':>22}  {'NHWC fp32':>22}  {'NHWC bf16':>22}")
    for channels in args.channels:
        shape = (args.batch, channels, args.side, args.side)
        millions = args.batch * channels * args.side**2 / 1e6
        cells = {}
        for layout in ("NCHW", "NHWC"):
            for precision in ("fp32", "bf16"):
                cells[layout, precision] = time_batchnorm(shape, precision, layout == "NHWC", args.steps, args.repeats)
        reference = cells["NCHW", "bf16"]
        row = "  ".join(f"{ms:7.2f} ({ms / reference:4.1f}x; {ms / millions:5.2f})" for ms in cells.values())
        print(f"{channels:>8}  {row}")


if __name__ == "__main__":
    main()
