"""Shared pieces of the training benchmarks: data, the same models in torch and Keras, one loop per framework.

Used by trainer_vs_peers.py, fast_path.py and time_to_accuracy.py (not a benchmark itself). Every
loop trains the same architecture with AdamW (no weight decay, constant learning rate), the same
batch size and cross-entropy on logits; each returns nothing and is timed by its caller. Lightning
and Keras are imported only when their loop runs (install them for benchmarks only:
``pip install lightning keras``; Keras runs with ``KERAS_BACKEND=torch``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("KERAS_BACKEND", "torch")

EpochHook = Callable[[int], bool]  # called after each epoch with its number; True stops training


@dataclass
class ImageData:
    """Training and test images (``N x 1 x H x W`` in [0, 1]) with class indices."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_images(train_size: int | None = None, dataset: str = "auto") -> ImageData:
    """Fashion-MNIST (the first ``train_size`` training images of a stratified subset) or, without it, digits.

    ``auto`` takes Fashion-MNIST when its files are on this machine (``GLASSNET_DATA``) and the
    scikit-learn digits otherwise, so the scripts run anywhere.
    """
    import glassnet as gn

    if dataset == "auto":
        dataset = "fashion-mnist" if os.environ.get("GLASSNET_DATA") else "digits"
    if dataset == "fashion-mnist":
        bundle = gn.load_dataset("fashion-mnist", val_fraction=0.0, train_size=train_size, download=False)
    else:
        bundle = gn.load_dataset("digits", val_fraction=0.0)
    x, y = bundle.train.tensors
    if train_size is not None:
        x, y = x[:train_size], y[:train_size]
    return ImageData(dataset, x.contiguous(), y, *bundle.test.tensors)


def torch_model(kind: str, input_shape: tuple[int, ...], classes: int = 10) -> nn.Module:
    """``mlp``: 2 hidden layers of 256; ``cnn``: conv32-pool-conv64-pool-dense128 (ReLU, 3x3, same padding)."""
    channels, height, width = input_shape
    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, classes),
        )
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 128),
        nn.ReLU(),
        nn.Linear(128, classes),
    )


def keras_model(kind: str, input_shape: tuple[int, ...], classes: int = 10) -> Any:
    """The same architecture as ``torch_model`` in Keras layers (channels-last input, Keras' default)."""
    import keras

    channels, height, width = input_shape
    inputs = keras.Input((height, width, channels))
    if kind == "mlp":
        h = keras.layers.Flatten()(inputs)
        h = keras.layers.Dense(256, activation="relu")(h)
        h = keras.layers.Dense(256, activation="relu")(h)
    else:
        h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        h = keras.layers.MaxPooling2D(2)(h)
        h = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D(2)(h)
        h = keras.layers.Flatten()(h)
        h = keras.layers.Dense(128, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(classes)(h))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, channels_last: bool = False) -> float:
    """Test accuracy of a torch model (eval mode, batches of 1,000)."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for begin in range(0, len(x), 1000):
            inputs = x[begin : begin + 1000]
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            correct += (model(inputs).argmax(1) == y[begin : begin + 1000]).sum().item()
    model.train()
    return correct / len(x)


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x, batch_size=1000, verbose=0)
    return float((np.asarray(logits).argmax(1) == y).mean())


def hand_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, lr: float, on_epoch: EpochHook = None
) -> None:
    """A hand-written loop over in-memory tensors (shuffled indices, no DataLoader)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        for begin in range(0, len(x), batch):
            index = order[begin : begin + batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch is not None and on_epoch(epoch):
            return


def dataloader_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch: int,
    lr: float,
    on_epoch: EpochHook = None,
) -> None:
    """The idiomatic PyTorch loop: ``DataLoader(TensorDataset, shuffle=True)``, fp32, default memory format."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    model.train()
    for epoch in range(1, epochs + 1):
        for inputs, targets in loader:
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch is not None and on_epoch(epoch):
            return


def glassnet_fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch: int,
    lr: float,
    on_epoch: EpochHook = None,
    **options: Any,
) -> None:
    """``glassnet.Trainer.fit`` with the same optimiser (AdamW, no decay, constant LR) and no validation."""
    import glassnet as gn

    class Hook(gn.Callback):
        def on_epoch_end(self, trainer: Any, model: nn.Module, logs: dict[str, Any]) -> None:
            if on_epoch is not None and on_epoch(logs["epoch"]):
                trainer.should_stop = True

    trainer = gn.Trainer(
        max_epochs=epochs,
        batch_size=batch,
        optimizer="adamw",
        lr=lr,
        weight_decay=0.0,
        schedule="none",
        device="cpu",
        callbacks=[Hook()] if on_epoch is not None else [],
        **options,
    )
    trainer.fit(model, TensorDataset(x, y))


def lightning_fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, lr: float, on_epoch: EpochHook = None
) -> None:
    """Lightning 2: the model in a ``LightningModule``, a shuffled ``DataLoader``, no logger or checkpoints."""
    import logging
    import warnings

    import lightning as L

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def training_step(self, batch_data: Any, index: int) -> torch.Tensor:
            inputs, targets = batch_data
            return F.cross_entropy(self.net(inputs), targets)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=0.0)

    class Hook(L.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if on_epoch is not None and on_epoch(trainer.current_epoch + 1):
                trainer.should_stop = True

    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Hook()],
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    trainer.fit(Classifier(), loader)


def keras_fit(
    model: Any, x: np.ndarray, y: np.ndarray, epochs: int, batch: int, lr: float, on_epoch: EpochHook = None
) -> None:
    """Keras 3 ``model.fit`` on NumPy arrays (channels last), compiled with Adam and logits cross-entropy."""
    import keras

    class Hook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if on_epoch is not None and on_epoch(epoch + 1):
                self.model.stop_training = True

    if not getattr(model, "_glassnet_compiled", False):
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=lr, weight_decay=0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model._glassnet_compiled = True
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[Hook()])


def to_keras_arrays(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``N x C x H x W`` tensors as the ``N x H x W x C`` float32 / int64 arrays Keras expects."""
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), y.numpy()


class Stopwatch:
    """Wall and CPU time of a run minus what evaluation hooks spend (they are not training)."""

    def __init__(self) -> None:
        self.excluded_wall = self.excluded_cpu = 0.0
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

    def exclude(self, work: Callable[[], Any]) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return work()
        finally:
            self.excluded_wall += time.perf_counter() - start
            self.excluded_cpu += time.process_time() - start_cpu

    def elapsed(self) -> tuple[float, float]:
        """``(wall, cpu)`` seconds since creation, evaluation excluded."""
        wall = time.perf_counter() - self.start_wall - self.excluded_wall
        return wall, time.process_time() - self.start_cpu - self.excluded_cpu


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads (0 keeps torch's default: one per core)."""
    if threads:
        torch.set_num_threads(threads)
