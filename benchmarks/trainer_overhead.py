"""glassnet's Trainer against a hand-written PyTorch loop on the same model, data and batches.

    .venv/bin/python benchmarks/trainer_overhead.py [--epochs 15] [--repeats 3] [--model mlp]

Both train the demo CNN on `digits` (in-memory tensors, AdamW, batch 32, same seed) and are timed
alternately in one process; the script prints each time and the ratio glassnet / hand loop
(1.00 = no overhead), of wall time and of the process's CPU time (steadier when other jobs share
the machine). Validation is off in both so that only the training loop is compared. ``--model mlp``
trains a small MLP on 20,000 generated rows of 30 features instead, where each step costs little
compute, so the loop's own Python time weighs most.
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
    parser.add_argument("--model", default="cnn", choices=["cnn", "mlp"])
    args = parser.parse_args()
    if args.model == "cnn":
        bundle = gn.load_dataset("digits")
        hparams, batch = DEMO_CONFIG.model_args, DEMO_CONFIG.batch_size
    else:
        generator = torch.Generator().manual_seed(0)
        rows = torch.randn(20_000, 30, generator=generator)
        labels = (rows[:, :3].sum(dim=1) > 0).long()
        bundle = gn.data.bundle_from_arrays(rows.numpy(), labels.numpy(), name="rows", modality="tabular",
                                             task="classify", class_names=("a", "b"))  # fmt: skip
        hparams, batch = {"width": 64, "depth": 2}, 64
    x, y = bundle.train.tensors

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return gn.create_model(args.model, bundle.spec, **hparams)

    def run_glassnet() -> None:
        trainer = gn.Trainer(max_epochs=args.epochs, batch_size=batch, schedule="none", lr=3e-3)
        trainer.fit(model(), bundle.train)

    timings: dict[str, list[float]] = {"hand loop": [], "glassnet": []}
    cpu: dict[str, list[float]] = {"hand loop": [], "glassnet": []}
    run_glassnet()  # warm-up: first-call allocations and lazy imports
    for _ in range(args.repeats):
        for name, job in (
            ("hand loop", lambda: hand_loop(model(), x, y, args.epochs, batch)),
            ("glassnet", run_glassnet),
        ):
            start, start_cpu = time.perf_counter(), time.process_time()
            job()
            timings[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    medians = {name: statistics.median(times) for name, times in timings.items()}
    cpu_medians = {name: statistics.median(times) for name, times in cpu.items()}
    examples = args.epochs * len(x)
    for name, times in timings.items():
        print(
            f"{name:10s} {', '.join(f'{t:.2f}' for t in times)} s; median {medians[name]:.2f} s "
            f"({examples / medians[name]:,.0f} examples/s); CPU median {cpu_medians[name]:.2f} s"
        )
    print(f"ratio glassnet / hand loop: {medians['glassnet'] / medians['hand loop']:.3f}")
    print(f"ratio glassnet / hand loop, CPU time: {cpu_medians['glassnet'] / cpu_medians['hand loop']:.3f}")


if __name__ == "__main__":
    main()
