"""Training steps of the text transformers with glassnet's CPU dropout against torch's, in one run.

On a CPU torch draws a dropout mask with ``bernoulli_`` (about 8 ns an element on 2 threads), and
``scaled_dot_product_attention`` with dropout leaves its fused kernel for one that draws such a mask
over every attention weight. glassnet's ``fast_dropout`` takes each mask from 16 random bits an
element, and ``bert`` computes attention itself when it drops weights (docs/models.md). This script
times a training step of each model both ways (torch's masks are put back by patching the module
globals, nothing else changes) and prints the ratio:

    GLASSNET_DATA=../shared/data python benchmarks/dropout_cpu.py [--steps 8] [--precision bf16 fp32]

Cases: MiniLM-sized ``bert`` (6 layers, 384 wide, 12 heads) at 256 tokens, batch 32, with and without
attention dropout; the ``transformer`` of docs/models.md's 20 Newsgroups row (d_model 64, 4 heads, 2
layers, 128 tokens, batch 64). Word tokens stand in for word pieces: the step's cost depends on the
shapes, not on which tokens they are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

import glassnet as gn
import glassnet.models.layers as layers
from glassnet.data.bundle import split_tensors
from glassnet.models.layers import Dropout
from glassnet.train.optim import adam

MINILM = {"width": 384, "layers": 6, "heads": 12, "ff": 1536}
CASES = [
    ("bert (MiniLM sizes), 256 tokens, batch 32", "bert", 256, 32, MINILM),
    ("bert, attention_dropout=0", "bert", 256, 32, {**MINILM, "attention_dropout": 0.0}),
    (
        "transformer (docs/models.md), 128 tokens, batch 64",
        "transformer",
        128,
        64,
        {"d_model": 64, "heads": 4, "layers": 2},
    ),
]


@contextmanager
def torch_masks():
    """Every glassnet dropout back on ``F.dropout`` (``bernoulli_``) for the duration."""
    fast_forward, fast_attention = Dropout.forward, layers.fast_dropout
    Dropout.forward = nn.Dropout.forward
    layers.fast_dropout = lambda weights, p: F.dropout(weights, p, True)
    try:
        yield
    finally:
        Dropout.forward, layers.fast_dropout = fast_forward, fast_attention


def step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str, steps: int) -> float:
    optimizer = adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    timings = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step (median)")
    print(f"{'case':52s} {'precision':9s} {'torch':>8s} {'glassnet':>9s} {'ratio':>6s}")
    for name, model_name, length, batch, hparams in CASES:
        bundle = gn.load_dataset("20newsgroups", max_length=length)
        x, y = split_tensors(bundle.train)
        x, y = x[:batch], y[:batch]
        for precision in args.precision:
            times = {}
            for kind in ("torch", "glassnet"):
                torch.manual_seed(0)
                model = gn.create_model(model_name, bundle.spec, **hparams).train()
                if kind == "torch":
                    with torch_masks():
                        times[kind] = step_ms(model, x, y, precision, args.steps)
                else:
                    times[kind] = step_ms(model, x, y, precision, args.steps)
            ratio = times["torch"] / times["glassnet"]
            print(f"{name:52s} {precision:9s} {times['torch']:8.1f} {times['glassnet']:9.1f} {ratio:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
