"""Data loading on Fashion-MNIST: in-memory tensors against an image folder streamed from disk.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/data_loading.py [--n 20000] [--repeats 3]

Needs the four IDX files in ``$GLASSNET_DATA/fashion-mnist`` (or ``--data DIR``); they are parsed
with NumPy here, so the figures do not depend on any other glassnet loader.

(a) In memory: the time to read the IDX files into float32 tensors in [0, 1], and the samples/s of
    one shuffled epoch of the 60,000 training images through the Trainer's batch source (the path the
    Trainer takes for in-memory tensors: direct indexing, no DataLoader).
(b) Streaming: the first ``--n`` training images are written as PNG class folders into a temporary
    folder (not timed); then the time of ``load_image_folder(..., in_memory=False)`` (header scan,
    split and statistics on up to 2,000 images) and the samples/s of one shuffled epoch of its
    training split through a DataLoader with 0 and 2 worker processes (PNG decoding included).
(c) For reference, the time of decoding the same folder into memory with
    ``load_image_folder(..., in_memory=True)`` (once).

Each step but the PNG writing and (c) runs ``--repeats`` times; every run is printed and the
medians give the ratios streaming / in-memory. Other work on the machine moves the
seconds; compare figures from one run.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

import glassnet as gn
from glassnet.data.images import load_image_folder
from glassnet.train.sources import as_source

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped) as a uint8 array: images ``N x 28 x 28`` or labels ``N``."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(folder: Path) -> dict[str, torch.Tensor]:
    """Train and test images as ``N x 1 x 28 x 28`` float32 in [0, 1], labels as int64."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        out[f"x_{split}"] = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        out[f"y_{split}"] = torch.from_numpy(labels.astype(np.int64))
    return out


def write_png_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> None:
    """One PNG per image in ``root/<class>/``."""
    from PIL import Image

    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, mode="L").save(root / CLASSES[label] / f"{i:05d}.png")


def timed(job: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = job()
    return value, time.perf_counter() - start


def repeated(job: Callable[[], Any], repeats: int) -> tuple[Any, float, str]:
    """Run ``job`` ``repeats`` times: its last value, the median seconds and every time (for the noise)."""
    results = [timed(job) for _ in range(repeats)]
    times = [t for _, t in results]
    return results[-1][0], statistics.median(times), ", ".join(f"{t:.3f}" for t in times)


def median_rate(data: Dataset, batch_size: int, workers: int, repeats: int) -> tuple[float, str]:
    """Median samples/s of ``repeats`` epochs, and every rate."""
    rates = [epoch_rate(data, batch_size, workers) for _ in range(repeats)]
    return statistics.median(rates), ", ".join(f"{r:,.0f}" for r in rates)


def epoch_rate(data: Dataset, batch_size: int, workers: int) -> float:
    """Samples/s of one shuffled epoch through the Trainer's batch source (a DataLoader unless tensors)."""
    trainer = gn.Trainer(batch_size=batch_size, num_workers=workers, device="cpu")
    source = as_source(data, workers)
    source.bind(trainer)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    seen = 0
    start = time.perf_counter()
    for inputs, _ in source.batches(order, batch_size, 0, math.ceil(len(data) / batch_size)):
        seen += len(inputs)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("GLASSNET_DATA", "../shared/data")) / "fashion-mnist"
    parser.add_argument("--data", type=Path, default=default, help="folder of the four IDX .gz files")
    parser.add_argument("--n", type=int, default=20000, help="images written as PNG for the streaming path")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to compare")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed step; medians are reported")
    args = parser.parse_args()
    if not (args.data / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"Fashion-MNIST not found in '{args.data}': set GLASSNET_DATA to ../shared/data or pass --data")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, batch {args.batch_size}")
    import sklearn.model_selection  # noqa: F401  (warm-up: the split's one-time import is not a loading cost)

    arrays, load_s, load_all = repeated(lambda: load_fashion_mnist(args.data), args.repeats)
    n_loaded = len(arrays["x_train"]) + len(arrays["x_test"])
    train = TensorDataset(arrays["x_train"], arrays["y_train"])
    memory_rate, memory_all = median_rate(train, args.batch_size, 0, args.repeats)
    print(f"(a) in memory: load {n_loaded:,} images from IDX into tensors: {load_s:.3f} s (runs: {load_all} s)")
    print(
        f"(a) in memory: one epoch of {len(train):,} training images: {memory_rate:,.0f} samples/s (runs: {memory_all})"
    )

    images = (arrays["x_train"][: args.n, 0].numpy() * 255).round().astype(np.uint8)
    labels = arrays["y_train"][: args.n].numpy()
    with tempfile.TemporaryDirectory(prefix="glassnet-bench-") as tmp:
        root = Path(tmp) / "fashion-png"
        _, write_s = timed(lambda: write_png_folder(images, labels, root))
        print(f"(b) wrote {len(images):,} PNGs in class folders (not part of any figure): {write_s:.1f} s")
        bundle, scan_s, scan_all = repeated(lambda: load_image_folder(root, in_memory=False), args.repeats)
        print(
            f"(b) streaming: load_image_folder(in_memory=False) on {len(images):,} PNGs: {scan_s:.3f} s "
            f"(runs: {scan_all} s)"
        )
        stream_rates = {}
        for workers in args.workers:
            stream_rates[workers], stream_all = median_rate(bundle.train, args.batch_size, workers, args.repeats)
            print(
                f"(b) streaming: one epoch of {len(bundle.train):,} training images, DataLoader "
                f"num_workers={workers}: {stream_rates[workers]:,.0f} samples/s (runs: {stream_all})"
            )
        decoded, decode_s = timed(lambda: load_image_folder(root, in_memory=True))
        print(f"(c) same folder decoded into memory, load_image_folder(in_memory=True), once: {decode_s:.3f} s")

    per_k = 1000 / n_loaded * load_s
    scan_per_k = scan_s / len(images) * 1000
    print("ratios (streaming / in-memory), medians:")
    print(f"  load time per 1,000 images: {scan_per_k:.4f} s / {per_k:.4f} s = {scan_per_k / per_k:.2f}")
    for workers, rate in stream_rates.items():
        print(f"  samples/s, num_workers={workers}: {rate:,.0f} / {memory_rate:,.0f} = {rate / memory_rate:.4f}")


if __name__ == "__main__":
    main()
