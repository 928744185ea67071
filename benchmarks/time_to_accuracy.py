"""Seconds of training to reach 90% Fashion-MNIST test accuracy: glassnet against Lightning and Keras, same model.

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/time_to_accuracy.py \
        [--target 0.9] [--train-size N] [--max-epochs 8] [--batch 128] [--threads 0] [--skip NAME ...]

Every contender trains the same CNN (peer_loops.torch_model("cnn"); the same layers in Keras) with
AdamW at a constant learning rate of 1e-3 and batch 128 on the Fashion-MNIST training images (all
60,000 unless ``--train-size``), and is evaluated on the official 10,000 test images after each
epoch; it stops at the first epoch whose test accuracy reaches ``--target``. The clock counts
training only (evaluation time is subtracted). Contenders: a hand-written loop (reference),
``glassnet.Trainer`` in fp32, glassnet's fast path (``precision="bf16", channels_last=True``),
Lightning and Keras 3 (torch backend). The script prints seconds, epochs, the accuracy reached and
the time relative to the hand-written loop (to glassnet's fp32 Trainer with ``--skip hand``), in
CPU seconds of this process (``time.process_time``: the work, whatever else the machine runs) and
in wall seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from typing import Any

import torch
from peer_loops import (
    Stopwatch,
    accuracy,
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


def race(
    train: Callable[[Callable[[int], bool]], None], evaluate: Callable[[], float], target: float
) -> tuple[float, float, int | None, float]:
    """(training wall seconds, training CPU seconds, epoch that reached the target or None, last accuracy)."""
    reached, last = {"epoch": None}, {"accuracy": 0.0}
    watch = Stopwatch()

    def on_epoch(epoch: int) -> bool:
        last["accuracy"] = watch.exclude(evaluate)
        if last["accuracy"] >= target:
            reached["epoch"] = epoch
            return True
        return False

    train(on_epoch)
    wall, cpu = watch.elapsed()
    return wall, cpu, reached["epoch"], last["accuracy"]


def contenders(data: Any, epochs: int, batch: int) -> dict[str, tuple[Callable, Callable]]:
    shape = tuple(data.x_train.shape[1:])
    x, y, holder = data.x_train, data.y_train, {}

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        holder["model"] = torch_model("cnn", shape)
        return holder["model"]

    def test_accuracy() -> float:
        return accuracy(holder["model"], data.x_test, data.y_test)

    runs = {
        "hand loop (fp32)": (lambda hook: hand_loop(fresh(), x, y, epochs, batch, LR, hook), test_accuracy),
        "glassnet Trainer (fp32)": (lambda hook: glassnet_fit(fresh(), x, y, epochs, batch, LR, hook), test_accuracy),
        "glassnet bf16 + channels_last": (
            lambda hook: glassnet_fit(fresh(), x, y, epochs, batch, LR, hook, precision="bf16", channels_last=True),
            test_accuracy,
        ),
    }
    if importlib.util.find_spec("lightning") is not None:
        runs["Lightning (fp32)"] = (lambda hook: lightning_fit(fresh(), x, y, epochs, batch, LR, hook), test_accuracy)
    if importlib.util.find_spec("keras") is not None:
        kx, ky = to_keras_arrays(x, y)
        tx, ty = to_keras_arrays(data.x_test, data.y_test)

        def keras_run(hook: Callable[[int], bool]) -> None:
            import keras

            keras.utils.set_random_seed(0)
            holder["keras"] = keras_model("cnn", shape)
            keras_fit(holder["keras"], kx, ky, epochs, batch, LR, hook)

        runs["Keras 3 (torch backend, fp32)"] = (keras_run, lambda: keras_accuracy(holder["keras"], tx, ty))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--skip", nargs="*", default=[], help="contenders to leave out (a word of their name)")
    args = parser.parse_args()
    set_threads(args.threads)
    data = load_images(args.train_size, "fashion-mnist")
    print(
        f"Fashion-MNIST: {len(data.x_train):,} training images, target test accuracy {args.target}, "
        f"batch {args.batch}, at most {args.max_epochs} epochs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    runs = contenders(data, args.max_epochs, args.batch)
    runs = {k: v for k, v in runs.items() if not any(word.lower() in k.lower() for word in args.skip)}
    small = load_images(512, "fashion-mnist")
    for name, (train, _) in contenders(small, 1, args.batch).items():  # warm-up on a few batches
        if name in runs:
            train(lambda epoch: False)
    results = {name: race(train, evaluate, args.target) for name, (train, evaluate) in runs.items()}
    reference = "hand loop (fp32)" if "hand loop (fp32)" in results else "glassnet Trainer (fp32)"
    base = results.get(reference)
    print(f"\n{'':32s} {'CPU s':>7s}   {'wall s':>7s}   epochs   test accuracy   CPU time / {reference}")
    for name, (wall, cpu, epoch, acc) in results.items():
        epochs = str(epoch) if epoch is not None else f">{args.max_epochs} (not reached)"
        ratio = f"{cpu / base[1]:.2f}" if base else "-"
        print(f"{name:32s} {cpu:7.1f}   {wall:7.1f}   {epochs:6s}   {acc:13.4f}   {ratio:>10s}")


if __name__ == "__main__":
    main()
