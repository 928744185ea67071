"""Milliseconds per training step of a registry model, and where they go (torch.profiler).

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/step_profile.py --data fashion-mnist --model cnn \\
        --batch 128 --precision fp32 bf16 [--channels-last] [--compile] [--profile] \\
        ["model.channels=[32,64,128]" model.convs=2 model.pool_first=true]

One batch of the dataset's training split, the model built by ``glassnet.create_model`` with the
given ``model.X=...`` options, and the step a plain loop runs: forward under the precision's
autocast, cross-entropy (label smoothing 0.1), backward, glassnet's fused Adam. After warm-up steps
(and the compilation, timed apart), prints the median of ``--repeats`` timings of ``--steps``
steps for each precision; with ``--profile`` the operators that take the most CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import glassnet as gn
from glassnet.config import parse_overrides
from glassnet.data.bundle import split_tensors
from glassnet.train.optim import adam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="options of the dataset, e.g. max_length=128")  # fmt: skip
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (compile time printed)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the top operators of 5 steps")
    parser.add_argument("overrides", nargs="*", metavar="model.KEY=VALUE")
    args = parser.parse_args()
    parsed = parse_overrides(args.overrides)
    if any(not key.startswith("model.") for key in parsed):
        parser.error(f"only model.KEY=VALUE options are read. Received: {' '.join(args.overrides)}")
    options = {key.removeprefix("model."): value for key, value in parsed.items()}
    bundle = gn.load_dataset(args.data, **parse_overrides(args.data_option))
    inputs, targets = split_tensors(bundle.train)
    x, y = inputs[: args.batch], targets[: args.batch]
    print(f"{args.data} {args.model} {options}, batch {len(x)}, torch threads {torch.get_num_threads()}")
    for precision in args.precision:
        measure(args, bundle.spec, options, x, y, precision)


def measure(
    args: argparse.Namespace, spec: gn.DataSpec, options: dict, x: torch.Tensor, y: torch.Tensor, precision: str
) -> None:
    """Prints the median milliseconds of a training step in ``precision`` (and the profile when asked)."""
    torch.manual_seed(0)
    model = gn.create_model(args.model, spec, **options).train()
    batch = x
    if args.channels_last:
        model, batch = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    runner = torch.compile(model) if args.compile else model
    optimizer = adam(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = nn.functional.cross_entropy(runner(batch), y, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(5):
        step()
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        timings.append((time.perf_counter() - start) / args.steps * 1000)
    compiled = f" (first step, compiling: {first:.1f} s)" if args.compile else ""
    print(f"{precision}: {statistics.median(timings):.1f} ms a step{compiled}")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(5):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
