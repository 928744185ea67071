"""Semantic segmentation on composed scenes: the U-Net against Otsu's threshold + connected components.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/segmentation.py \
        [--data fashion-scenes] [--epochs 12] [--seeds 0] [--extra "lr=3e-3 model.channels=[16,32,64,128]"]

Each seed is a fresh `glassnet train --model unet` process (import, scene composition, training, test
evaluation and the classical baseline's fit all in its wall time). The classical baseline is the one
every segmentation run fits on the same training scenes (results/train.json ``baseline``): Otsu's
threshold per image, 8-connected components, each component classified by a logistic regression on
its pixels and shape. Printed: per seed and as medians, the test mean IoU, pixel accuracy and Dice of
both, the training time, the baseline's fit time, and the U-Net's weakest classes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def once(args: argparse.Namespace, seed: int) -> dict:
    out = Path(tempfile.mkdtemp()) / "run"
    command = [sys.executable, "-m", "glassnet", "train", "--data", args.data, "--model", "unet"]
    command += ["--epochs", str(args.epochs), "--out", str(out), "--quiet", f"seed={seed}", *shlex.split(args.extra)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    result = json.loads((out / "results" / "train.json").read_text())
    baseline = result["baseline"]
    per_class = result["test"]["per_class_iou"]
    weakest = sorted(per_class, key=lambda name: per_class[name]["iou"])[:3]
    return {
        "wall": wall,
        "train_time": result["training"]["train_time_s"],
        "unet": {k: result["test"][k] for k in ("miou", "accuracy", "dice")},
        "baseline": {k: baseline["test"][k] for k in ("miou", "accuracy", "dice")},
        "baseline_name": baseline["name"],
        "baseline_fit": baseline["fit_time_s"],
        "weakest": {name: round(per_class[name]["iou"], 3) for name in weakest},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-scenes")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--extra", default="lr=3e-3", help="settings added to every run (key=value ...)")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        runs.append(once(args, seed))
        r = runs[-1]
        print(
            f"  seed {seed}: U-Net mIoU {r['unet']['miou']:.4f} in {r['wall']:.0f} s wall "
            f"(training {r['train_time']:.0f} s); {r['baseline_name']} {r['baseline']['miou']:.4f}",
            flush=True,
        )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{args.data}, unet, {args.epochs} epochs, {args.extra or 'defaults'}, seeds {args.seeds}")
    print("| predictor | test mIoU | pixel accuracy | Dice | time s |")
    print("| --- | --- | --- | --- | --- |")
    for name, key, time_key in (
        ("U-Net", "unet", "train_time"),
        (runs[0]["baseline_name"], "baseline", "baseline_fit"),
    ):
        row = [statistics.median(r[key][m] for r in runs) for m in ("miou", "accuracy", "dice")]
        seconds = statistics.median(r[time_key] for r in runs)
        print(f"| {name} | {row[0]:.4f} | {row[1]:.4f} | {row[2]:.4f} | {seconds:.0f} |")
    print(f"median wall time of a whole run: {statistics.median(r['wall'] for r in runs):.0f} s")
    for seed, r in zip(args.seeds, runs, strict=True):
        print(f"seed {seed} weakest classes (IoU): {r['weakest']}")


if __name__ == "__main__":
    main()
