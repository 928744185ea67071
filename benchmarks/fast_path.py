"""glassnet's fast path (in-memory batching + bf16 autocast + channels_last) against the idiomatic DataLoader loop.

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/fast_path.py \
        [--train-size 10000] [--epochs 2] [--batch 128] [--repeats 3] [--threads 0] [--compile]

Both train the same CNN (peer_loops.torch_model("cnn")) on the same Fashion-MNIST subset (digits
without GLASSNET_DATA) with AdamW at a constant learning rate and the same batch size:

- baseline: ``DataLoader(TensorDataset, shuffle=True)``, fp32, default memory format (what a
  PyTorch tutorial writes);
- glassnet: ``Trainer(precision="bf16", channels_last=True)``: batches indexed straight from the
  in-memory tensors, bf16 autocast, NHWC convolutions; ``--compile`` adds a third run with
  ``compile=True`` (torch.compile; its compilation time is included).

They run alternately ``--repeats`` times after a short warm-up, in this one process. The script
prints the median CPU time (``time.process_time``: the work, whatever else the machine runs) and
wall time of each, the speed-up over the baseline by both (goal: >= 1.5x) and the test accuracy of
each (goal: equal within one percentage point).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from peer_loops import accuracy, dataloader_loop, glassnet_fit, load_images, set_threads, torch_model

LR = 1e-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="also time compile=True")
    parser.add_argument("--dataset", default="auto", choices=["auto", "fashion-mnist", "digits"])
    args = parser.parse_args()
    set_threads(args.threads)
    data = load_images(args.train_size, args.dataset)
    shape = tuple(data.x_train.shape[1:])
    x, y = data.x_train, data.y_train
    holder: dict[str, torch.nn.Module] = {}

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        holder["model"] = torch_model("cnn", shape)
        return holder["model"]

    runs = {
        "DataLoader loop, fp32": (lambda n, e: dataloader_loop(fresh(), x[:n], y[:n], e, args.batch, LR), False),
        "glassnet bf16 + channels_last": (
            lambda n, e: glassnet_fit(fresh(), x[:n], y[:n], e, args.batch, LR, precision="bf16", channels_last=True),
            True,
        ),
    }
    if args.compile:
        runs["glassnet bf16 + channels_last + compile"] = (
            lambda n, e: glassnet_fit(
                fresh(), x[:n], y[:n], e, args.batch, LR, precision="bf16", channels_last=True, compile=True
            ),
            True,
        )
    print(
        f"data: {data.name}, {len(x):,} training images, batch {args.batch}, {args.epochs} epoch(s); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for train, _ in runs.values():
        train(min(len(x), 1024), 1)  # warm-up: kernels, allocations, lazy imports
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    accuracies: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (train, nhwc) in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            train(len(x), args.epochs)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
            accuracies[name].append(accuracy(holder["model"], data.x_test, data.y_test, channels_last=nhwc))
    samples = args.epochs * len(x)
    base_name = "DataLoader loop, fp32"
    base_cpu, base_wall = statistics.median(cpu[base_name]), statistics.median(wall[base_name])
    base_accuracy = statistics.mean(accuracies[base_name])
    print(
        f"\n{'':40s} CPU s   samples per CPU s   speed-up (CPU)   wall s   speed-up (wall)   "
        "test accuracy (mean)   vs baseline"
    )
    for name in runs:
        c, w, acc = statistics.median(cpu[name]), statistics.median(wall[name]), statistics.mean(accuracies[name])
        print(
            f"{name:40s} {c:5.1f}   {samples / c:17,.0f}   {base_cpu / c:13.2f}x   {w:6.1f}   {base_wall / w:14.2f}x   "
            f"{acc:20.4f}   {100 * (acc - base_accuracy):+.2f} pt"
        )


if __name__ == "__main__":
    main()
