"""Time to the peers' accuracy: `glassnet train --fast` against Keras and Lightning with their usual recipes.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/recipes_vs_peers.py \
        [--peer-epochs 10] [--ladder 2 3 4 5 6 8] [--seed 0] [--skip keras lightning] [--train-size N]

Issue 23: "the same model trained by Keras and by Lightning with their usual recipe, in the same
script: glassnet reaches their final accuracy in <= 0.33x their time".

The model is glassnet's default Fashion-MNIST ``cnn`` (standardised input, conv 32 - BN - ReLU -
max-pool, conv 64 - BN - ReLU - max-pool, dense 128 - ReLU, dropout 0.25, dense 10). Lightning
trains the very module ``glassnet.create_model("cnn", spec)`` builds; Keras 3 (torch backend) the
same layers, channels last, its input standardised with the same training-set mean and std.

The peers' usual recipes, what their own guides and a user's first script use:

- Keras: ``compile(optimizer="adam", loss="sparse_categorical_crossentropy")`` (Adam, learning rate
  1e-3, Keras' layer defaults: Glorot initialisation, batch-norm momentum 0.99) and
  ``fit(x, y, epochs=E)`` with Keras' default batch of 32.
- Lightning: a ``LightningModule`` whose ``configure_optimizers`` returns ``Adam(lr=1e-3)``, a shuffled
  ``DataLoader`` of batch 64, ``Trainer(max_epochs=E)`` without logger, checkpoints or progress bar.

Both train on all 60,000 training images for ``--peer-epochs`` epochs (10) in this process; their
clock (wall ``time.perf_counter`` and this process's CPU ``time.process_time``) runs around the fit
call, with the per-epoch test evaluation (for the curve) subtracted. Their final test accuracy is
the bar.

glassnet is used as a user meets it: ``glassnet train --data fashion-mnist --model cnn --fast
--epochs N baseline=false`` in a fresh process (fast_recipe.py's ``once``), its wall clock counting
the interpreter start, the import, data loading, training on 54,000 images (6,000 held out for
validation and the choice of the kept weights), the test evaluation and the run directory's files;
the test accuracy is that of the weights the run keeps. The one-cycle schedule depends on N, so each
N of ``--ladder`` is its own run (the ladder stops once every peer's bar is reached); glassnet's time
to a peer's accuracy is the wall time of the shortest run reaching it. Ratio: that time over the
peer's training time (so glassnet's data loading and evaluation count against it, the peers' not).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from fast_recipe import once
from peer_loops import Stopwatch, accuracy
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("KERAS_BACKEND", "torch")


def load(train_size: int | None) -> tuple[Any, Any]:
    """The Fashion-MNIST bundle without a validation split (the peers train on every training image)."""
    import glassnet as gn

    bundle = gn.load_dataset("fashion-mnist", val_fraction=0.0, train_size=train_size, download=False)
    return bundle, bundle.spec


def keras_cnn(spec: Any) -> Any:
    """glassnet's default ``cnn`` in Keras layers (channels last), compiled with Keras' usual Adam recipe."""
    import keras

    channels, height, width = spec.input_shape
    mean, std = float(spec.input_mean[0]), float(spec.input_std[0])
    inputs = keras.Input((height, width, channels))
    h = keras.layers.Normalization(mean=mean, variance=std**2)(inputs)
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
        h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(128, activation="relu")(h)
    h = keras.layers.Dropout(0.25)(h)
    model = keras.Model(inputs, keras.layers.Dense(spec.num_outputs, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def run_keras(bundle: Any, spec: Any, epochs: int, seed: int) -> dict[str, Any]:
    import keras

    x, y = bundle.train.tensors
    tx, ty = bundle.test.tensors
    kx, kt = (np.ascontiguousarray(t.permute(0, 2, 3, 1).numpy()) for t in (x, tx))
    keras.utils.set_random_seed(seed)
    model = keras_cnn(spec)
    curve: list[float] = []

    def evaluate() -> float:
        probabilities = np.asarray(model.predict(kt, batch_size=1000, verbose=0))
        return float((probabilities.argmax(1) == ty.numpy()).mean())

    class Curve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            curve.append(watch.exclude(evaluate))

    watch = Stopwatch()
    model.fit(kx, y.numpy(), epochs=epochs, verbose=0, callbacks=[Curve()])
    wall, cpu = watch.elapsed()
    return {"wall": wall, "cpu": cpu, "accuracy": curve[-1], "curve": curve, "recipe": "Adam 1e-3, batch 32"}


def run_lightning(bundle: Any, spec: Any, epochs: int, seed: int) -> dict[str, Any]:
    import logging
    import warnings

    import lightning as L

    import glassnet as gn

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    x, y = bundle.train.tensors
    tx, ty = bundle.test.tensors
    L.seed_everything(seed, verbose=False)
    net = gn.create_model("cnn", spec)

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            inputs, targets = batch
            return F.cross_entropy(self.net(inputs), targets)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    curve: list[float] = []

    class Curve(L.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            curve.append(watch.exclude(lambda: accuracy(net, tx, ty)))

    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Curve()],
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    watch = Stopwatch()
    trainer.fit(Classifier(), loader)
    wall, cpu = watch.elapsed()
    return {"wall": wall, "cpu": cpu, "accuracy": curve[-1], "curve": curve, "recipe": "Adam 1e-3, batch 64"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-epochs", type=int, default=10, help="epochs of the peers' usual recipes")
    parser.add_argument("--ladder", type=int, nargs="+", default=[2, 3, 4, 5, 6, 8], help="glassnet --fast epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["keras", "lightning"])
    parser.add_argument("--train-size", type=int, default=None, help="peers only: the first N training images")
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args()
    bundle, spec = load(args.train_size)
    peers: dict[str, Callable[..., dict[str, Any]]] = {}
    if "keras" not in args.skip and importlib.util.find_spec("keras") is not None:
        peers["Keras 3 (torch backend)"] = run_keras
    if "lightning" not in args.skip and importlib.util.find_spec("lightning") is not None:
        peers["Lightning"] = run_lightning
    if not peers:
        raise SystemExit("no peer to compare with: pip install keras lightning (KERAS_BACKEND=torch)")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}; Fashion-MNIST "
        f"{len(bundle.train):,} training images for the peers, {args.peer_epochs} epochs",
        flush=True,
    )
    results: dict[str, Any] = {"peers": {}, "glassnet": {}}
    for name, run in peers.items():
        started = time.perf_counter()
        results["peers"][name] = record = run(bundle, spec, args.peer_epochs, args.seed)
        print(
            f"  {name} ({record['recipe']}): test accuracy {record['accuracy']:.4f}, training {record['wall']:.1f} s "
            f"wall, {record['cpu']:.1f} s CPU ({time.perf_counter() - started:.0f} s with the curve); per epoch: "
            f"{[round(a, 4) for a in record['curve']]}",
            flush=True,
        )
    bar = max(r["accuracy"] for r in results["peers"].values())
    for epochs in args.ladder:
        settings = argparse.Namespace(data="fashion-mnist", model="cnn", epochs=epochs)
        record = once(settings, ["--fast"], args.seed)
        results["glassnet"][epochs] = record
        print(
            f"  glassnet --fast --epochs {epochs}: test accuracy {record['accuracy']:.4f}, {record['wall']:.1f} s wall "
            f"(training {record['train_time']:.1f} s), {record['cpu']:.1f} s CPU",
            flush=True,
        )
        if record["accuracy"] >= bar:
            break
    print("\n| peer (recipe, epochs) | its test accuracy | its training s (wall / CPU) | glassnet --fast run "
          "reaching it | glassnet wall s (training s) | wall ratio | CPU ratio |")  # fmt: skip
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for name, peer in results["peers"].items():
        reached = [(n, r) for n, r in results["glassnet"].items() if r["accuracy"] >= peer["accuracy"]]
        head = f"| {name} ({peer['recipe']}, {args.peer_epochs}) | {peer['accuracy']:.4f} | "
        head += f"{peer['wall']:.1f} / {peer['cpu']:.1f} | "
        if not reached:
            print(head + "not reached within the ladder | | | |")
            continue
        n, r = reached[0]
        print(
            head + f"`--epochs {n}` ({r['accuracy']:.4f}) | {r['wall']:.1f} ({r['train_time']:.1f}) | "
            f"{r['wall'] / peer['wall']:.2f} | {r['cpu'] / peer['cpu']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
