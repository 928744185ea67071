"""glassnet's Trainer against a hand-written loop, a DataLoader loop, Lightning and Keras 3 on the same work.

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/trainer_vs_peers.py \
        [--models mlp cnn] [--train-size 10000] [--epochs 1] [--batch 128] [--repeats 3] [--threads 0]

Each framework trains the same architecture (an MLP and a CNN, see peer_loops.py) on the same
Fashion-MNIST subset (digits without GLASSNET_DATA) with the same batch size and AdamW at a constant
learning rate, validation off. The contenders run alternately, ``--repeats`` times each after one
warm-up run, in this one process; the script prints the median CPU time and wall time of each and
their ratios to the hand-written loop over in-memory tensors (1.00 = as fast; below 1 = faster).
On a machine shared with other jobs the wall time measures the machine's load as much as the loop;
the process's CPU time (``time.process_time``, all its threads) measures the work the loop costs,
so the CPU-time ratio is the one to read there (run with ``--threads 1`` so that no thread spins
waiting for a core). Test accuracy after
training is printed as a check that every loop did the same work. Peers are installed for
benchmarks only (``pip install lightning keras``; Keras uses ``KERAS_BACKEND=torch``).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import torch
from peer_loops import (
    accuracy,
    dataloader_loop,
    glassnet_fit,
    hand_loop,
    keras_accuracy,
    keras_fit,
    keras_model,
    lightning_fit,
    load_images,
    set_threads,
    to_keras_arrays,
    torch_model,
)

LR = 1e-3


def contenders(kind: str, data, epochs: int, batch: int) -> dict:
    """name -> (train, test_accuracy): each call of ``train`` builds a fresh model and fits it."""
    shape = tuple(data.x_train.shape[1:])
    x, y = data.x_train, data.y_train
    last = {}

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        last["model"] = torch_model(kind, shape)
        return last["model"]

    def torch_accuracy() -> float:
        return accuracy(last["model"], data.x_test, data.y_test)

    runs = {
        "hand loop (in-memory tensors)": (lambda: hand_loop(fresh(), x, y, epochs, batch, LR), torch_accuracy),
        "hand loop (DataLoader)": (lambda: dataloader_loop(fresh(), x, y, epochs, batch, LR), torch_accuracy),
        "glassnet Trainer": (lambda: glassnet_fit(fresh(), x, y, epochs, batch, LR), torch_accuracy),
    }
    if importlib.util.find_spec("lightning") is not None:
        runs["Lightning"] = (lambda: lightning_fit(fresh(), x, y, epochs, batch, LR), torch_accuracy)
    if importlib.util.find_spec("keras") is not None:
        kx, ky = to_keras_arrays(x, y)
        tx, ty = to_keras_arrays(data.x_test, data.y_test)

        def keras_run() -> None:
            import keras

            keras.utils.set_random_seed(0)
            last["keras"] = keras_model(kind, shape)
            keras_fit(last["keras"], kx, ky, epochs, batch, LR)

        runs["Keras 3 (torch backend)"] = (keras_run, lambda: keras_accuracy(last["keras"], tx, ty))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--dataset", default="auto", choices=["auto", "fashion-mnist", "digits"])
    args = parser.parse_args()
    set_threads(args.threads)
    data = load_images(args.train_size, args.dataset)
    samples = args.epochs * len(data.x_train)
    print(
        f"data: {data.name}, {len(data.x_train):,} training images, batch {args.batch}, {args.epochs} epoch(s); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for kind in args.models:
        runs = contenders(kind, data, args.epochs, args.batch)
        for train, _ in runs.values():  # warm-up: lazy imports, first allocations, Keras tracing
            train()
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        accuracies: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, (train, test_accuracy) in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                train()
                cpu[name].append(time.process_time() - start_cpu)
                wall[name].append(time.perf_counter() - start)
                accuracies[name] = test_accuracy()
        base_cpu = statistics.median(cpu["hand loop (in-memory tensors)"])
        base_wall = statistics.median(wall["hand loop (in-memory tensors)"])
        print(
            f"\n{kind.upper():32s} CPU s   samples per CPU s   ratio (CPU time)   wall s   ratio (wall)   test accuracy"
        )
        for name in runs:
            c, w = statistics.median(cpu[name]), statistics.median(wall[name])
            print(
                f"{name:32s} {c:5.2f}   {samples / c:17,.0f}   {c / base_cpu:16.3f}   {w:6.2f}   "
                f"{w / base_wall:12.3f}   {accuracies[name]:.4f}"
            )


if __name__ == "__main__":
    main()
