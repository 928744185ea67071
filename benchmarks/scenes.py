"""Segmentation and detection on composed scenes: U-Net / CenterNet against Otsu + connected components.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/scenes.py \
        [--data fashion-scenes | fashion-detection | fashion-instances | digits-scenes | digits-detection
         | digits-instances] [--epochs 12] \
        [--seeds 0] [--extra "lr=3e-3 data.train_scenes=20000"]

The model follows the data's task: ``unet`` for segmentation (compared on mean IoU), ``centernet`` for
detection (compared on COCO mAP@.5 and mAP@[.5:.95]), ``instance_unet`` for instance segmentation
(compared on COCO mask mAP@.5). Each seed is a fresh `glassnet train` process
(import, scene composition, training, test evaluation and the classical baseline's fit all in its wall
time). The classical baseline is the one every such run fits on the same training scenes
(results/train.json ``baseline``): Otsu's threshold per image, 8-connected components, each component
classified by a logistic regression on its pixels and shape. Printed: per seed and as medians, the
test metrics of both, the training time, the baseline's fit time, and the network's weakest classes.
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

TASKS = {  # per task: the model, the metrics printed (first: the compared one), the per-class record
    "segment": ("unet", ("miou", "accuracy", "dice"), "per_class_iou", "iou"),
    "detect": ("centernet", ("map_50", "map", "map_75"), "per_class_ap", None),
    "instances": ("instance_unet", ("map_50", "map", "map_75", "miou"), "per_class_ap", None),
}


def once(args: argparse.Namespace, seed: int) -> dict:
    model, metrics, per_class_key, field = TASKS[args.task]
    out = Path(tempfile.mkdtemp()) / "run"
    command = [sys.executable, "-m", "glassnet", "train", "--data", args.data, "--model", model]
    command += ["--epochs", str(args.epochs), "--out", str(out), "--quiet", f"seed={seed}", *shlex.split(args.extra)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    result = json.loads((out / "results" / "train.json").read_text())
    baseline = result["baseline"]
    per_class = {
        name: (value[field] if field else value)
        for name, value in result["test"][per_class_key].items()
        if (value[field] if field else value) is not None
    }
    weakest = sorted(per_class, key=per_class.get)[:3]
    return {
        "wall": wall,
        "train_time": result["training"]["train_time_s"],
        "network": {k: result["test"][k] for k in metrics},
        "baseline": {k: baseline["test"].get(k) for k in metrics},  # a baseline may lack one (instances: miou)
        "baseline_name": baseline["name"],
        "baseline_fit": baseline["fit_time_s"],
        "weakest": {name: round(per_class[name], 3) for name in weakest},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-scenes")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--extra", default="lr=3e-3", help="settings added to every run (key=value ...)")
    args = parser.parse_args()
    import glassnet as gn

    args.task = next(d.task for d in gn.list_datasets() if d.name == args.data)
    if args.task not in TASKS:
        parser.error(f"{args.data} is a {args.task} dataset; this script compares segment and detect datasets")
    model, metrics, _, _ = TASKS[args.task]
    runs = []
    for seed in args.seeds:
        runs.append(once(args, seed))
        r = runs[-1]
        print(
            f"  seed {seed}: {model} {metrics[0]} {r['network'][metrics[0]]:.4f} in {r['wall']:.0f} s wall "
            f"(training {r['train_time']:.0f} s); {r['baseline_name']} {r['baseline'][metrics[0]]:.4f}",
            flush=True,
        )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{args.data}, {model}, {args.epochs} epochs, {args.extra or 'defaults'}, seeds {args.seeds}")
    print(f"| predictor | {' | '.join(f'test {m}' for m in metrics)} | time s |")
    print("| --- |" + " --- |" * (len(metrics) + 1))
    for name, key, time_key in (
        (model, "network", "train_time"),
        (runs[0]["baseline_name"], "baseline", "baseline_fit"),
    ):
        values = " | ".join(
            "-" if runs[0][key][m] is None else f"{statistics.median(r[key][m] for r in runs):.4f}" for m in metrics
        )
        print(f"| {name} | {values} | {statistics.median(r[time_key] for r in runs):.0f} |")
    print(f"median wall time of a whole run: {statistics.median(r['wall'] for r in runs):.0f} s")
    for seed, r in zip(args.seeds, runs, strict=True):
        print(f"seed {seed} weakest classes: {r['weakest']}")


if __name__ == "__main__":
    main()
