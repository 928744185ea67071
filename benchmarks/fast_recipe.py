"""The fast recipe as a user meets it: `glassnet train --fast` against the same command without it.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/fast_recipe.py \
        [--data fashion-mnist] [--model cnn] [--epochs 6] [--seeds 0 1 2] [--target 0.94] [--budget 180] \
        [--skip default] [--extra "precision=bf16 channels_last=true"] [--fast-extra "model.convs=2"]

Each contender is a fresh `glassnet train` process (import, data loading, training, test evaluation
included in its wall time): ``fast`` (``--fast``, plus the settings of ``--fast-extra``),
``default`` (the defaults) and, with ``--extra``, the defaults plus those settings. Seeds alternate
between contenders, so both see the same load over time. Printed per contender: median wall and CPU
seconds (of the child process), median test accuracy, whether it reached ``--target`` within
``--budget`` seconds, the best validation accuracy per epoch (the curve), and the ratio of the
medians to the default's. The recipe's chosen settings are printed from the first run's
``results/train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def once(args: argparse.Namespace, settings: list[str], seed: int) -> dict:
    """One `glassnet train` in a fresh process: wall and CPU seconds, test accuracy, validation curve."""
    out = Path(tempfile.mkdtemp()) / "run"
    command = [sys.executable, "-m", "glassnet", "train", "--data", args.data, "--model", args.model]
    command += ["--epochs", str(args.epochs), "--out", str(out), "--quiet", f"seed={seed}", "baseline=false"]
    command += settings
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads((out / "results" / "train.json").read_text())
    curve = []
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "val/accuracy" in record:
            curve.append(round(record["val/accuracy"], 4))
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "accuracy": result["test"]["accuracy"],
        "curve": curve,
        "recipe": result["training"].get("recipe", {}),
        "train_time": result["training"]["train_time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--budget", type=float, default=180.0, help="seconds of wall time for the target")
    parser.add_argument("--skip", nargs="*", default=[], choices=["fast", "default"])
    parser.add_argument("--extra", default="", help="settings of a third contender: the defaults plus these")
    parser.add_argument("--fast-extra", default="", help="settings added to the --fast contender's command")
    args = parser.parse_args()
    fast = "fast" + (f" + {args.fast_extra}" if args.fast_extra else "")
    contenders: dict[str, list[str]] = {}
    if "fast" not in args.skip:
        contenders[fast] = ["--fast", *shlex.split(args.fast_extra)]
    if "default" not in args.skip:
        contenders["default"] = []
    if args.extra:
        contenders[f"default + {args.extra}"] = shlex.split(args.extra)
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for seed in args.seeds:
        for name, settings in contenders.items():
            runs[name].append(once(args, settings, seed))
            last = runs[name][-1]
            print(f"  {name} seed {seed}: {last['wall']:.1f} s wall, test accuracy {last['accuracy']:.4f}", flush=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.data} {args.model}")
    print(f"{args.epochs} epochs, seeds {args.seeds}; target {args.target} within {args.budget:.0f} s of wall time")
    first = next(iter(runs.values()))
    if fast in runs:
        recipe = runs[fast][0]["recipe"]
        print("recipe chose:", ", ".join(f"{k}={v}" for k, v in recipe.get("settings", {}).items()))
        for note in recipe.get("notes", []):
            print("recipe note:", note)
    reference = runs.get("default", first)
    ref_wall = statistics.median(r["wall"] for r in reference)
    ref_cpu = statistics.median(r["cpu"] for r in reference)
    print("| contender | wall s | CPU s | test accuracy | target met | wall / default | CPU / default |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        accuracy = statistics.median(r["accuracy"] for r in results)
        met = sum(r["accuracy"] >= args.target and r["wall"] <= args.budget for r in results)
        print(
            f"| {name} | {wall:.1f} | {cpu:.1f} | {accuracy:.4f} | {met}/{len(results)} | "
            f"{wall / ref_wall:.2f} | {cpu / ref_cpu:.2f} |"
        )
    for name, results in runs.items():
        for seed, r in zip(args.seeds, results, strict=True):
            print(f"{name} seed {seed} val/accuracy per epoch: {r['curve']} (training {r['train_time']:.1f} s)")


if __name__ == "__main__":
    main()
