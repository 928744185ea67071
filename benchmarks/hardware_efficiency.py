"""Hardware efficiency: a model's training FLOP/s under glassnet's Trainer, as a share of the matmul peak.

    nice -n 10 .venv/bin/python benchmarks/hardware_efficiency.py \
        [--model mlp|cnn] [--width 2048] [--batch 512] [--samples 8192] [--repeats 3] [--threads 0] \
        [--precisions fp32 bf16]

The peak is measured in this process: the best of several timed ``n x n`` matrix products
(``--peak-size``, 2048 by default) in each precision, right before each training run so that both
see the same machine load. Rates are given per wall second and per CPU second of this process
(``time.process_time``, all threads): on a machine shared with other jobs the wall-clock rates
measure the load, the CPU-time rates the work, so read the CPU-time share there.

The model is an MLP (1,024 inputs, three hidden layers of ``--width``, 10 classes) trained by
``glassnet.Trainer`` on synthetic in-memory data for one epoch (setup included); its FLOPs per
step (forward and backward) are counted with ``torch.utils.flop_counter.FlopCounterMode``, which
counts matrix products only (the optimiser and element-wise work are left out, so the share is a
lower bound). The script prints achieved GFLOP/s, the peak and their ratio (goal: >= 0.5).

``--model cnn`` measures glassnet's default Fashion-MNIST ``cnn`` instead (``1 x 28 x 28`` synthetic
images, 10 classes, ``channels_last``; use ``--batch 128``, the fast recipe's batch): issue 23 asks
that its training reach 70% of the bf16 peak. Its convolutions are counted as FLOPs too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from peer_loops import set_threads
from torch import nn
from torch.utils.data import TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import glassnet as gn

INPUTS, CLASSES = 1024, 10
IMAGE = (1, 28, 28)


def matmul_peak(size: int, dtype: torch.dtype, seconds: float = 1.0) -> tuple[float, float]:
    """Best GFLOP/s of ``size x size`` products over about ``seconds`` (after a warm-up), per wall
    second and per CPU second of this process."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best_wall = best_cpu = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start, start_cpu = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        flop = 2 * size**3 / 1e9
        best_wall = max(best_wall, flop / (time.perf_counter() - start))
        best_cpu = max(best_cpu, flop / max(time.process_time() - start_cpu, 1e-9))
    return best_wall, best_cpu


def mlp(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(INPUTS, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, CLASSES),
    )


def fashion_cnn() -> nn.Module:
    """glassnet's default ``cnn`` for Fashion-MNIST-shaped images."""
    spec = gn.DataSpec(modality="image", input_shape=IMAGE, task="classify", num_outputs=CLASSES, name="fashion")
    return gn.create_model("cnn", spec)


def flops_per_step(model: nn.Module, batch: int, precision: str, shape: tuple[int, ...] = (INPUTS,)) -> int:
    """Matrix-product (and convolution) FLOPs of one forward and backward pass on a batch."""
    x, y = torch.randn(batch, *shape), torch.randint(0, CLASSES, (batch,))
    counter = FlopCounterMode(display=False)
    with counter:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def synthetic_data(samples: int, shape: tuple[int, ...] = (INPUTS,)) -> TensorDataset:
    """Inputs ~ N(0, 1); labels from a fixed random linear teacher, so the task can be learnt."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, *shape, generator=generator)
    teacher = torch.randn(x[0].numel(), CLASSES, generator=generator)
    return TensorDataset(x, (x.flatten(1) @ teacher).argmax(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    args = parser.parse_args()
    set_threads(args.threads)
    shape = IMAGE if args.model == "cnn" else (INPUTS,)
    build = fashion_cnn if args.model == "cnn" else lambda: mlp(args.width)
    layout = {"channels_last": True} if args.model == "cnn" else {}
    data = synthetic_data(args.samples, shape)
    steps = args.samples // args.batch
    data = TensorDataset(*(t[: steps * args.batch] for t in data.tensors))  # whole batches only
    described = (
        "glassnet's default cnn, 1 x 28 x 28" if args.model == "cnn" else f"MLP {INPUTS}-{args.width}x3-{CLASSES}"
    )
    print(
        f"{described}, batch {args.batch}, {steps} steps per run; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"{'precision':10s} {'GFLOP/step':>10s}   per CPU second: {'train':>7s} {'peak':>7s} {'share':>6s}"
        f"   per wall second: {'train':>7s} {'peak':>7s} {'share':>6s}   samples/s"
    )
    for precision in args.precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        torch.manual_seed(0)
        per_step = flops_per_step(build(), args.batch, precision, shape)
        rows: list[tuple[float, ...]] = []
        warm = gn.Trainer(
            max_epochs=1, batch_size=args.batch, schedule="none", precision=precision, device="cpu", **layout
        )
        warm.fit(build(), TensorDataset(*(t[: 2 * args.batch] for t in data.tensors)))
        for _ in range(args.repeats):
            peak_wall, peak_cpu = matmul_peak(args.peak_size, dtype)
            trainer = gn.Trainer(
                max_epochs=1, batch_size=args.batch, schedule="none", precision=precision, device="cpu", **layout
            )
            model = build()
            start, start_cpu = time.perf_counter(), time.process_time()
            trainer.fit(model, data)
            cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
            work = per_step * steps / 1e9
            rows.append(
                (work / cpu, peak_cpu, work / cpu / peak_cpu, work / wall, peak_wall, work / wall / peak_wall)
                + (len(data) / wall,)
            )
        med = [statistics.median(column) for column in zip(*rows)]
        print(
            f"{precision:10s} {per_step / 1e9:10.2f}   {'':15s} {med[0]:7.1f} {med[1]:7.1f} {med[2]:6.2f}"
            f"   {'':16s} {med[3]:7.1f} {med[4]:7.1f} {med[5]:6.2f}   {med[6]:9,.0f}"
        )
    print(f"(medians over {args.repeats} runs; share = training GFLOP/s / peak GFLOP/s of the same precision)")


if __name__ == "__main__":
    main()
