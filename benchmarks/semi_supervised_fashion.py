"""Semi-supervised learning on Fashion-MNIST with few labels: supervised-only against pseudo-labelling
and FixMatch (and optionally Mean Teacher) on the same labelled examples, side by side in one run.

Targets (issue 16): with 40 labels per class (400 labels), FixMatch >= 0.80 test accuracy and a
gain of >= 10 points over supervised-only; with 100 per class, >= 0.85.

    GLASSNET_DATA=/work/shared/data nice -n 15 .venv/bin/python benchmarks/semi_supervised_fashion.py
    ... --labels-per-class 100 --steps 4000 --methods supervised,fixmatch      # other settings

Every method trains the same small CNN for the same number of optimiser steps with the same
labelled batch size, AdamW with a one-cycle schedule and an EMA of the weights (evaluated at the
end). Supervised-only sees the labelled examples with the weak augmentation (flip, 12.5% shift)
that the semi-supervised steps give them too. No validation split is used: the last weights are
scored once on the official 10,000-image test split (nothing is selected on test). Pseudo-label
accuracy and coverage are measured on a seeded sample of the unlabelled pool against its
held-back labels.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import glassnet as gn
from glassnet.data.augment import build_augmentation
from glassnet.train import EMA
from glassnet.train.semi import PseudoLabelMonitor
from glassnet.train.steps import make_step


class Clock(gn.Callback):
    """Prints progress about eight times a run (long runs show they are alive)."""

    def __init__(self, label: str) -> None:
        self.label, self.start, self.next = label, time.perf_counter(), 0

    def on_epoch_end(self, trainer, model, logs) -> None:
        if trainer.global_step >= self.next:
            self.next = trainer.global_step + trainer.total_steps // 8
            extra = ""
            if "unlabelled/coverage" in logs:
                extra = (
                    f", pool coverage {logs['unlabelled/coverage']:.3f}"
                    f", pseudo-label accuracy {logs.get('unlabelled/pseudo_accuracy', float('nan')):.3f}"
                )
            print(
                f"  {self.label} step {trainer.global_step}/{trainer.total_steps}: "
                f"{time.perf_counter() - self.start:.0f} s, "
                f"loss {logs.get('train/loss', float('nan')):.4f}{extra}",
                flush=True,
            )


def run(method: str, bundle, args) -> dict:
    torch.manual_seed(args.seed)
    options = {"supervised": {}}.get(method, {"ratio": args.ratio})
    step = make_step(method, bundle.spec, **options)
    if method == "supervised":
        augment = build_augmentation(bundle.spec, {"hflip": 0.5, "crop": 3})
        step = make_step("supervised", bundle.spec, augment=augment)
        data = bundle.train
    else:
        data = step.source(bundle)
    model = gn.create_model("cnn", bundle.spec, channels=args.channels, hidden=args.hidden, dropout=0.1)
    monitor = PseudoLabelMonitor(bundle.unlabelled, threshold=0.95, size=args.monitor_size, seed=args.seed)
    trainer = gn.Trainer(
        max_epochs=100_000,
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        step=step,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        callbacks=[EMA(args.ema), monitor, Clock(method)],
    )
    start = time.perf_counter()
    fit = trainer.fit(model, data)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(model, bundle.test)["accuracy"]
    last = monitor.history[-1] if monitor.history else {}
    return {
        "method": method,
        "test_accuracy": round(test, 4),
        "train_time_s": round(seconds, 1),
        "steps": fit.steps,
        "examples_per_s": round(fit.samples_per_s, 1),
        "pool_coverage": last.get("coverage"),
        "pool_pseudo_accuracy": last.get("pseudo_accuracy"),
        "pseudo_label_history": [(h["step"], h["coverage"], h["pseudo_accuracy"]) for h in monitor.history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels-per-class", type=int, default=40)
    parser.add_argument("--methods", default="supervised,pseudo_label,fixmatch", help="comma-separated steps")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps of every method")
    parser.add_argument("--batch-size", type=int, default=32, help="labelled examples per step")
    parser.add_argument("--ratio", type=int, default=7, help="unlabelled inputs per labelled one (FixMatch's mu)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ema", type=float, default=0.99, help="EMA of the weights that are evaluated")
    parser.add_argument("--channels", default="16,32", help="the CNN's convolution channels")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--monitor-size", type=int, default=2000, help="pool examples whose pseudo-labels are measured")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "bf16"], help="bf16 where the CPU has bf16 units"
    )
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args()
    args.channels = [int(c) for c in args.channels.split(",")]
    bundle = gn.load_dataset("fashion-mnist", labels_per_class=args.labels_per_class)
    print(
        f"Fashion-MNIST: {len(bundle.train)} labelled ({args.labels_per_class} per class), "
        f"{len(bundle.unlabelled):,} unlabelled, {len(bundle.test):,} test; {args.steps} steps of "
        f"{args.batch_size} labelled (+{args.ratio * args.batch_size} unlabelled) examples; torch threads "
        f"{torch.get_num_threads()}",
        flush=True,
    )
    results = []
    for method in args.methods.split(","):
        results.append(run(method, bundle, args))
        print(
            f"  {method}: test accuracy {results[-1]['test_accuracy']:.4f} in {results[-1]['train_time_s']} s",
            flush=True,
        )
        if args.json:  # after each method, so a long run that is stopped keeps what it measured
            with open(args.json, "w") as handle:
                json.dump({"settings": vars(args), "results": results}, handle, indent=1)
    base = next((r["test_accuracy"] for r in results if r["method"] == "supervised"), None)
    print(f"\n{'method':<14} {'test acc':>9} {'gain':>7} {'time s':>8} {'steps':>6} {'coverage':>9} {'PL acc':>7}")
    for r in results:
        gain = f"{100 * (r['test_accuracy'] - base):+.1f}" if base is not None else "n/a"
        cov = f"{r['pool_coverage']:.3f}" if r["pool_coverage"] is not None else "n/a"
        pla = f"{r['pool_pseudo_accuracy']:.3f}" if r["pool_pseudo_accuracy"] is not None else "n/a"
        print(
            f"{r['method']:<14} {r['test_accuracy']:>9.4f} {gain:>7} {r['train_time_s']:>8.1f} {r['steps']:>6} "
            f"{cov:>9} {pla:>7}"
        )


if __name__ == "__main__":
    main()
