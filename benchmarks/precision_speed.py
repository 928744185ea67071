"""Training throughput of bf16 autocast and channels_last against fp32, with glassnet's Trainer.

    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/precision_speed.py \
        [--data fashion-mnist] [--train-size 10000] [--epochs 1] [--repeats 3]

Trains the default CNN (two conv-BN-ReLU-pool blocks, 32/64 channels; AdamW, batch 128, in-memory
tensors) on the first --train-size training images of --data (digits when GLASSNET_DATA is not
set), once per setting per repeat, the settings alternating within one process. Prints the median
training samples/s of each setting, its ratio to fp32 (above 1 = faster) and the test accuracy
that the last repeat reached (equal accuracy is part of the claim).
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from torch.utils.data import TensorDataset

import glassnet as gn

SETTINGS = {
    "fp32": {},
    "fp32 + channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist" if os.environ.get("GLASSNET_DATA") else "digits")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp16 with a gradient scaler is added on CUDA)")
    args = parser.parse_args()
    bundle = gn.load_dataset(args.data)
    x, y = (t[: args.train_size] for t in bundle.train.tensors)
    train = TensorDataset(x, y)
    print(
        f"{args.data}: {len(train):,} training images {tuple(x.shape[1:])}, batch {args.batch_size}, "
        f"{args.epochs} epoch(s) x {args.repeats} repeats, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.device}"
    )

    def fit(options: dict) -> tuple[float, gn.Trainer, torch.nn.Module]:
        torch.manual_seed(0)
        model = gn.create_model("cnn", bundle.spec)
        trainer = gn.Trainer(max_epochs=args.epochs, batch_size=args.batch_size, seed=0, device=args.device, **options)
        return trainer.fit(model, train).samples_per_s, trainer, model

    fit({})  # warm-up: first-call allocations and lazy imports
    settings = dict(SETTINGS)
    if args.device == "cuda":
        settings["fp16 + channels_last"] = {"precision": "fp16", "channels_last": True}
    rates: dict[str, list[float]] = {name: [] for name in settings}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, options in settings.items():
            rate, trainer, model = fit(options)
            rates[name].append(rate)
            accuracy[name] = trainer.evaluate(model, bundle.test)["accuracy"]
    base = statistics.median(rates["fp32"])
    print(f"{'setting':<22} {'samples/s':>10} {'vs fp32':>8} {'test acc':>9}")
    for name in settings:
        rate = statistics.median(rates[name])
        print(f"{name:<22} {rate:>10,.0f} {rate / base:>7.2f}x {accuracy[name]:>9.4f}")


if __name__ == "__main__":
    main()
