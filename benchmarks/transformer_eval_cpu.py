"""Evaluation of the ``transformer`` on a CPU: glassnet's encoder layer against torch's inference fast path.

In evaluation torch's ``nn.TransformerEncoderLayer`` hands the whole layer to its inference fast
path, ``torch._transformer_encoder_layer_fwd``; glassnet's layer runs the same blocks itself with
the fused ``scaled_dot_product_attention`` on a CPU (docs/training.md). This script times the
forward pass of docs/models.md's 20 Newsgroups network (d_model 64, 4 heads, 2 layers, 128 tokens)
on test posts both ways, in one process, and prints the ratio:

    GLASSNET_DATA=../shared/data python benchmarks/transformer_eval_cpu.py [--batch 1 64 512] [--precision fp32 bf16]

Torch's side puts ``nn.TransformerEncoderLayer``'s own ``forward`` and ``_sa_block`` back on the
layer class for its timings; the weights and inputs are the same, and the outputs are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn

import glassnet as gn
from glassnet.data.bundle import split_tensors
from glassnet.models.transformer import EncoderLayer


@contextmanager
def torch_layer():
    """torch's ``TransformerEncoderLayer`` forward, fast path included, for the duration."""
    saved = EncoderLayer.forward, EncoderLayer._sa_block
    EncoderLayer.forward, EncoderLayer._sa_block = (
        nn.TransformerEncoderLayer.forward,
        nn.TransformerEncoderLayer._sa_block,
    )
    try:
        yield
    finally:
        EncoderLayer.forward, EncoderLayer._sa_block = saved


def forward_ms(model: nn.Module, x: torch.Tensor, precision: str, repeats: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        out = model(x)
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000, out.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 512], help="posts per forward pass")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes per setting (median)")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    bundle = gn.load_dataset("20newsgroups", max_length=args.max_length)
    x, _ = split_tensors(bundle.test)
    torch.manual_seed(0)
    model = gn.create_model("transformer", bundle.spec, d_model=64, heads=4, layers=2).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per forward pass (median)")
    print(f"{'batch':>6s} {'precision':9s} {'torch':>9s} {'glassnet':>9s} {'ratio':>6s} {'max |diff|':>10s}")
    for batch in args.batch:
        for precision in args.precision:
            with torch_layer():
                theirs, reference = forward_ms(model, x[:batch], precision, args.repeats)
            ours, out = forward_ms(model, x[:batch], precision, args.repeats)
            diff = (out - reference).abs().max().item()
            print(f"{batch:6d} {precision:9s} {theirs:9.2f} {ours:9.2f} {theirs / ours:5.2f}x {diff:10.2g}", flush=True)


if __name__ == "__main__":
    main()
