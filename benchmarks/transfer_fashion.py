"""Transfer learning on Fashion-MNIST with few labels: ImageNet MobileNetV2 fine-tuned, against the same
network from scratch and against the default ``cnn``, on the same labelled examples, in one run.

Issue 16: "ImageNet MobileNetV2 fine-tuned on small labelled subsets of Fashion-MNIST (100 and 1,000
labels per class) against the same network from scratch and against the default cnn: accuracy and
time, in one table".

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/transfer_fashion.py \
        [--labels-per-class 100 1000] [--epochs 8] [--input-size 64] [--json out.json]

Every contender is an ordinary ``glassnet.train`` run (the same code path as
``glassnet train ... pretrained=imagenet``) on ``data.labels_per_class=N`` (seeded, stratified
labels; the rest of the training split is not used), with the project's defaults (AdamW, one-cycle,
batch 64, the best epoch on a validation split of 2% of the training images kept: 1,200 labelled
images, the same for every contender) and the same number of epochs. The
fine-tuned network uses the default recipe (batch-norm statistics re-estimated on the new data,
one epoch of linear probe, then one more layer group per epoch at half the lr of the group above).
MobileNetV2 sees the 28-pixel images resized to ``--input-size`` inside the model, from scratch as
fine-tuned. Scored once on the official 10,000-image test split. Prints accuracy, training seconds
(wall, and the CPU seconds of this process) and the gain of fine-tuning over each alternative.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import glassnet as gn


def contenders(input_size: int) -> dict[str, dict]:
    mobilenet = {"model": "mobilenet_v2", "model_args": {"input_size": input_size}}
    return {
        "cnn (scratch)": {"model": "cnn"},
        "mobilenet_v2 (scratch)": mobilenet,
        "mobilenet_v2 (ImageNet, fine-tuned)": {**mobilenet, "pretrained": "imagenet"},
    }


def run_one(settings: dict, labels: int, args: argparse.Namespace, out: Path) -> dict:
    config = gn.RunConfig(
        data="fashion-mnist",
        data_args={"labels_per_class": labels, "val_fraction": args.val_fraction},
        epochs=args.epochs,
        seed=args.seed,
        baseline=False,
        threads=args.threads,
        **settings,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    run = gn.train(config, out=out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    results = json.loads((Path(run.path) / "results" / "train.json").read_text())
    return {
        "test_accuracy": results["test"]["accuracy"],
        "train_time_s": results["training"]["train_time_s"],
        "run_wall_s": round(wall, 1),
        "run_cpu_s": round(cpu, 1),
        "best_epoch": results["training"]["best_epoch"],
        "parameters": results["model"].get("parameters"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--val-fraction", type=float, default=0.02, help="of the training split (picks the epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="contender names to run (default: all)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    table: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for labels in args.labels_per_class:
            for index, (name, settings) in enumerate(contenders(args.input_size).items()):
                if args.only and name not in args.only:
                    continue
                row = {"labels_per_class": labels, "contender": name}
                row.update(run_one(settings, labels, args, Path(tmp) / f"{labels}-{index}"))
                table.append(row)
                print(
                    f"{labels:>5}/class  {name:<38} test {row['test_accuracy']:.4f}  "
                    f"train {row['train_time_s']:.0f} s  (run {row['run_wall_s']:.0f} s wall, "
                    f"{row['run_cpu_s']:.0f} s CPU)",
                    flush=True,
                )

    print(f"\n{'labels':>7}  {'contender':<38} {'test acc':>8} {'train s':>8}  fine-tuned minus this")
    for labels in args.labels_per_class:
        rows = [r for r in table if r["labels_per_class"] == labels]
        tuned = next((r for r in rows if "fine-tuned" in r["contender"]), None)
        for row in rows:
            gain = (
                ""
                if tuned is None or row is tuned
                else f"{100 * (tuned['test_accuracy'] - row['test_accuracy']):+.1f} points"
            )
            print(
                f"{labels:>7}  {row['contender']:<38} {row['test_accuracy']:>8.4f} {row['train_time_s']:>8.0f}  {gain}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": table}, indent=1))


if __name__ == "__main__":
    main()
