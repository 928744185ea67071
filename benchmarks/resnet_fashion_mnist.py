"""Train ``resnet`` on Fashion-MNIST with glassnet's Trainer and print its test accuracy and time.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/resnet_fashion_mnist.py \
        [--epochs 15] [--train-size N] [--depth 2 2 2] [--width 32] [--device auto]

The issue's bar is a test accuracy of at least 0.93 on the official 10,000 test images. Training
uses AdamW with the one-cycle schedule in plain fp32 (the trainer has no bf16 autocast yet), random
2-pixel shifts and horizontal flips, and keeps the weights of the last epoch; validation accuracy
(10% of the training images) is printed after every epoch. ``--train-size`` and ``--epochs`` shrink
the run for a quick check that everything works; its accuracy then says nothing about the bar.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import torch
from torch import nn

import glassnet as gn
import glassnet.models.resnet  # noqa: F401  (registers "resnet" until glassnet.models imports it)
from glassnet.data.augment import build_augmentation
from glassnet.train.steps import SupervisedStep

BAR = 0.93


class EpochPrinter(gn.Callback):
    """One line per epoch: training loss, validation accuracy and elapsed time."""

    def on_epoch_end(self, trainer: gn.Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        accuracy = logs.get("val/accuracy", float("nan"))
        print(
            f"epoch {logs['epoch']:3d}  train loss {logs['train/loss']:.4f}  val accuracy {accuracy:.4f}  "
            f"{logs['time_s']:.0f} s",
            flush=True,
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="passes over the training images")
    parser.add_argument("--train-size", type=int, default=None, help="training images used (default: all 60,000)")
    parser.add_argument("--depth", type=int, nargs="+", default=[2, 2, 2], help="residual blocks per stage")
    parser.add_argument("--width", type=int, default=32, help="channels of the first stage")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--no-augment", action="store_true", help="train without random shifts and flips")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    bundle = gn.load_dataset("fashion-mnist", train_size=args.train_size)
    torch.manual_seed(args.seed)
    model = gn.create_model("resnet", bundle.spec, depth=args.depth, width=args.width)
    augment = None if args.no_augment else build_augmentation(bundle.spec, {"crop": 2, "hflip": 0.5})
    trainer = gn.Trainer(
        task="classify",
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=5e-4,
        schedule="onecycle",
        callbacks=[EpochPrinter()],
        seed=args.seed,
        device=args.device,
        step=SupervisedStep(augment=augment),
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"resnet depth={args.depth} width={args.width} ({parameters:,} parameters) on {len(bundle.train):,} "
        f"training images, {args.epochs} epochs, device {trainer.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}",
        flush=True,
    )
    fit = trainer.fit(model, bundle)
    start = time.perf_counter()
    test = trainer.evaluate(model, bundle.test)
    evaluation_s = time.perf_counter() - start
    verdict = "meets" if test["accuracy"] >= BAR else "is below"
    print(
        f"test accuracy {test['accuracy']:.4f} (macro-F1 {test['macro_f1']:.4f}) {verdict} the bar {BAR}; "
        f"training {fit.train_time_s:.0f} s ({fit.samples_per_s:,.0f} images/s, validation included), "
        f"test evaluation {evaluation_s:.1f} s"
    )


if __name__ == "__main__":
    main()
