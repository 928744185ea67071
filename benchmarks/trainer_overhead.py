"""glassnet's Trainer against a hand-written PyTorch loop on the same model, data and batches.

    .venv/bin/python benchmarks/trainer_overhead.py [--epochs 15] [--repeats 3]

Both train the demo CNN on `digits` (in-memory tensors, AdamW, batch 32, same seed) and are timed
alternately in one process; the script prints each time and the ratio glassnet / hand loop
(1.00 = no overhead). Validation is off in both so that only the training loop is compared.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import glassnet as gn
from glassnet.pipeline import DEMO_CONFIG


def hand_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for begin in range(0, len(x), batch_size):
            index = order[begin : begin + batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bundle = gn.load_dataset("digits")
    x, y = bundle.train.tensors
    batch = DEMO_CONFIG.batch_size

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return gn.create_model("cnn", bundle.spec, **DEMO_CONFIG.model_args)

    def run_glassnet() -> None:
        trainer = gn.Trainer(max_epochs=args.epochs, batch_size=batch, schedule="none", lr=3e-3)
        trainer.fit(model(), bundle.train)

    timings: dict[str, list[float]] = {"hand loop": [], "glassnet": []}
    run_glassnet()  # warm-up: first-call allocations and lazy imports
    for _ in range(args.repeats):
        for name, job in (
            ("hand loop", lambda: hand_loop(model(), x, y, args.epochs, batch)),
            ("glassnet", run_glassnet),
        ):
            start = time.perf_counter()
            job()
            timings[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(times) for name, times in timings.items()}
    examples = args.epochs * len(x)
    for name, times in timings.items():
        print(
            f"{name:10s} {', '.join(f'{t:.2f}' for t in times)} s; median {medians[name]:.2f} s "
            f"({examples / medians[name]:,.0f} examples/s)"
        )
    print(f"ratio glassnet / hand loop: {medians['glassnet'] / medians['hand loop']:.3f}")


if __name__ == "__main__":
    main()
