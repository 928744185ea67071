"""Shared part of the compression benchmarks: train (or reuse) a run, compress it, print the table
and each target of issue 8 as a ratio against the fp32 original measured in the same process."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from glassnet.compress import compress_run
from glassnet.config import RunConfig
from glassnet.pipeline import train
from glassnet.stages.compress import print_variants as print_table


def arguments(description: str, epochs: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run", default=None, help="reuse this trained run instead of training one")
    parser.add_argument("--out", default=None, help="where to train the run (default: a new runs/ folder)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs of the fp32 model ({epochs})")
    parser.add_argument("--fine-tune", type=int, default=2, help="fine-tuning epochs after pruning (2)")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate after pruning (1e-3)")
    parser.add_argument("--distill-epochs", type=int, default=epochs, help="student epochs (as --epochs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, training included (1: steadier)")
    parser.add_argument("--train-size", type=int, default=None, help="training examples used (default: all)")
    parser.add_argument("--repeats", type=int, default=200, help="batch-1 latency samples per variant (200)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # two threads spin against each other on a busy 2-core machine
    return args


def trained_run(args: argparse.Namespace, config: RunConfig) -> Path:
    if args.run:
        return Path(args.run)
    start = time.perf_counter()
    run = train(config, out=args.out, progress=sys.stderr)
    print(f"trained {config.model} on {config.data} in {time.perf_counter() - start:.0f} s -> {run.path}", flush=True)
    return run.path


def compress_and_report(run: Path, targets: dict[str, Any], **options: Any) -> dict[str, Any]:
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads available",
        flush=True,
    )
    start = time.perf_counter()
    result = compress_run(run, progress=sys.stderr, **options).to_dict()
    print(f"compress took {time.perf_counter() - start:.0f} s\n")
    print_table(result)
    print()
    check_targets(result, targets)
    return result


def check_targets(result: dict[str, Any], targets: dict[str, Any]) -> None:
    """One line per target (each int8 path on its own): the measured ratios, the bar, PASS or MISS."""
    variants = {v["name"]: v for v in result["variants"]}
    base = variants["fp32"]
    metric = result["metric"]
    for name in targets.get("int8", []):
        if name not in variants:
            continue
        v = variants[name]
        drop = base[metric] - v[metric]
        ok = max(v["latency_speedup"], v["throughput_speedup"]) >= 2 and v["size_ratio"] >= 4 and drop <= 0.01
        print(
            f"int8 ({name}): {v['latency_speedup']:.2f}x batch-1, {v['throughput_speedup']:.2f}x batch-64, "
            f"{v['size_ratio']:.2f}x smaller, {metric} drop {drop * 100:.2f} points "
            f"[bar: >= 2x speed, >= 4x smaller, <= 1 point] {'PASS' if ok else 'MISS'}"
        )
    for name in targets.get("stacked", []):
        if name not in variants:
            continue
        v = variants[name]
        drop = base[metric] - v[metric]
        print(
            f"stacked ({name}): {v['latency_speedup']:.2f}x batch-1, {v['throughput_speedup']:.2f}x batch-64, "
            f"{v['size_ratio']:.2f}x smaller, {v['parameter_ratio']:.2f}x fewer parameters, {metric} drop "
            f"{drop * 100:.2f} points"
        )
    pruned = variants.get(targets.get("pruned", ""))
    if pruned:
        speed = max(pruned["latency_speedup"], pruned["throughput_speedup"])
        drop = base[metric] - pruned[metric]
        ok = speed >= 1.5 and drop <= 0.015
        print(
            f"pruned ({pruned['name']}): {pruned['latency_speedup']:.2f}x batch-1, "
            f"{pruned['throughput_speedup']:.2f}x batch-64, {pruned['parameter_ratio']:.2f}x fewer parameters, "
            f"{metric} drop {drop * 100:.2f} points [bar: >= 1.5x, <= 1.5 points] {'PASS' if ok else 'MISS'}"
        )
    student = variants.get(targets.get("student", ""))
    if student:
        drop = base[metric] - student[metric]
        ok = student["parameter_ratio"] >= 4 and drop <= 0.02
        print(
            f"student ({student['name']}): {student['parameter_ratio']:.2f}x fewer parameters, {metric} drop "
            f"{drop * 100:.2f} points [bar: >= 4x fewer, <= 2 points] {'PASS' if ok else 'MISS'}"
        )
    if result.get("onnx"):
        onnx = result["onnx"]
        print(
            f"onnx: max |onnx - torch| {onnx['max_abs_diff']:.2e} [bar: <= 1e-4] {'PASS' if onnx['passed'] else 'MISS'}"
        )
    for skipped in result.get("skipped", []):
        print(f"not applicable: {skipped['variant']}: {skipped['reason']}")
