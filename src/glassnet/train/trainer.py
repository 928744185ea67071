"""``Trainer``: the fit / evaluate / predict loop; features come from callbacks and steps."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError, DataError
from glassnet.train.callbacks import Callback
from glassnet.train.optim import build_optimizer, build_scheduler
from glassnet.train.seed import seed_everything
from glassnet.train.steps import SupervisedStep
from glassnet.train.tasks import Task, get_task


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        history: one record per epoch (the lines of ``metrics.jsonl``).
        epochs_run: epochs completed (fewer than ``max_epochs`` after early stopping).
        steps: optimiser steps taken.
        train_time_s: wall time of the loop, validation included.
        samples_per_s: training examples per second over the whole fit.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    steps: int = 0
    train_time_s: float = 0.0
    samples_per_s: float = 0.0


@dataclass
class Predictions:
    """Outputs of ``Trainer.predict``: raw model outputs and the decoded predictions."""

    outputs: torch.Tensor
    prediction: torch.Tensor
    confidence: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None


class Trainer:
    """Trains, evaluates and runs models.

    Args:
        task: ``classify``, ``regress`` or a ``Task`` instance (loss and metrics).
        max_epochs: passes over the training split (callbacks may stop earlier).
        batch_size: training batch size.
        optimizer: ``adamw`` or ``sgd``.
        lr: peak learning rate.
        weight_decay: weight decay of weight matrices (biases and norms get none).
        momentum: SGD momentum.
        schedule: ``onecycle``, ``cosine`` or ``none``, stepped every batch.
        callbacks: ``Callback`` instances, run in order.
        seed: seeds Python, NumPy and torch at the start of ``fit`` and drives shuffling.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a ``torch.device``.
        eval_batch_size: batch size of ``evaluate`` and ``predict``.
        step: the training step (by default the one the task makes: ``SupervisedStep`` for most).
        num_workers: DataLoader worker processes for datasets that are not in-memory tensors
            (e.g. image folders streamed from disk); in-memory tensors never use workers.
    """

    def __init__(
        self,
        task: str | Task = "classify",
        max_epochs: int = 10,
        batch_size: int = 64,
        optimizer: str = "adamw",
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        momentum: float = 0.9,
        schedule: str = "onecycle",
        callbacks: Sequence[Callback] = (),
        seed: int = 0,
        device: str | torch.device = "auto",
        eval_batch_size: int = 1024,
        step: SupervisedStep | None = None,
        num_workers: int = 0,
    ) -> None:
        if max_epochs < 1 or batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(
                "max_epochs, batch_size and eval_batch_size must be >= 1. "
                f"Received: max_epochs={max_epochs}, batch_size={batch_size}, eval_batch_size={eval_batch_size}"
            )
        self.task = get_task(task)
        self.max_epochs, self.batch_size, self.eval_batch_size = max_epochs, batch_size, eval_batch_size
        self.optimizer_name, self.lr, self.weight_decay, self.momentum = optimizer, lr, weight_decay, momentum
        self.schedule = schedule
        self.callbacks = list(callbacks)
        self.seed = seed
        self.device = resolve_device(device)
        self.step = step or self.task.make_step()
        self.num_workers = num_workers
        self.should_stop = False
        self.epoch = 0
        self.global_step = 0
        self.train_size = 0

    def fit(self, model: nn.Module, data: DataBundle | Dataset, val: Dataset | None = None) -> FitResult:
        """Train ``model`` in place on ``data`` (a bundle's train split, or a dataset).

        Args:
            model: the module to train.
            data: a ``DataBundle`` (trains on ``train``, validates on ``val``) or a ``Dataset``.
            val: validation dataset when ``data`` is a plain dataset.

        Returns:
            A ``FitResult`` with the per-epoch history and timings.
        """
        train, val = (data.train, data.val) if isinstance(data, DataBundle) else (data, val)
        if val is not None and len(val) == 0:
            val = None
        self.train_size = len(train)
        if self.train_size == 0:
            raise DataError("the training split is empty")
        generator = seed_everything(self.seed)
        model.to(self.device)
        optimizer = build_optimizer(model, self.optimizer_name, self.lr, self.weight_decay, self.momentum)
        steps_per_epoch = math.ceil(self.train_size / self.batch_size)
        scheduler = build_scheduler(optimizer, self.schedule, self.max_epochs * steps_per_epoch)
        result = FitResult()
        self.should_stop, self.global_step = False, 0
        self.steps_per_epoch = steps_per_epoch
        if hasattr(self.step, "bind"):
            self.step.bind(self)  # steps that follow the schedule (e.g. an eps ramp) read epoch/step from here
        self._call("on_fit_start", model)
        start = time.perf_counter()
        seen = 0
        for epoch in range(1, self.max_epochs + 1):
            self.epoch = epoch
            model.train()
            self._call("on_epoch_start", model)
            loss_sum = torch.zeros((), device=self.device)
            batches = 0
            for inputs, targets in self._batches(train, self.batch_size, shuffle=True, generator=generator):
                if len(inputs) == 1 and self.train_size > 1:
                    continue  # a lone final example breaks batch norm and adds only noise
                loss = self.step.training_step(model, inputs, targets, self.task)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach()
                batches += 1
                seen += len(inputs)
                self.global_step += 1
                self._call("on_batch_end", model, len(inputs))
            logs: dict[str, Any] = {
                "epoch": self.epoch,
                "step": self.global_step,
                "lr": optimizer.param_groups[0]["lr"],
                "train/loss": (loss_sum / max(batches, 1)).item(),
            }
            if val is not None:
                logs.update({f"val/{k}": v for k, v in self.evaluate(model, val).items()})
            logs["time_s"] = round(time.perf_counter() - start, 3)
            result.history.append(logs)
            self._call("on_epoch_end", model, logs)
            if self.should_stop:
                break
        self._call("on_fit_end", model)
        result.epochs_run, result.steps = self.epoch, self.global_step
        result.train_time_s = time.perf_counter() - start
        result.samples_per_s = seen / max(result.train_time_s, 1e-9)
        return result

    def evaluate(self, model: nn.Module, data: Dataset) -> dict[str, float]:
        """Loss and task metrics of ``model`` on ``data`` (eval mode, no gradients)."""
        outputs, targets = self._outputs(model, data)
        return self.task.metrics(outputs, targets)

    def predict(self, model: nn.Module, data: Dataset | torch.Tensor) -> Predictions:
        """Outputs and decoded predictions for a dataset or a tensor of inputs."""
        if isinstance(data, torch.Tensor):
            data = TensorDataset(data, torch.zeros(len(data)))
        outputs, _ = self._outputs(model, data)
        decoded = self.task.decode(outputs)
        return Predictions(outputs=outputs, **decoded)

    def _outputs(self, model: nn.Module, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        if len(data) == 0:
            raise DataError("cannot evaluate on an empty dataset")
        model.to(self.device)
        was_training = model.training
        model.eval()
        chunks, targets = [], []
        try:
            with torch.inference_mode():
                for inputs, target in self._batches(data, self.eval_batch_size, shuffle=False):
                    chunks.append(model(inputs).cpu())
                    targets.append(target.cpu())
        finally:
            model.train(was_training)
        return torch.cat(chunks), torch.cat(targets)

    def _batches(
        self, data: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield device batches; tensors already in memory are indexed directly, without workers."""
        if isinstance(data, TensorDataset) and len(data.tensors) == 2:
            inputs, targets = (t.to(self.device) for t in data.tensors)
            n = len(inputs)
            order = torch.randperm(n, generator=generator).to(self.device) if shuffle else None
            for begin in range(0, n, batch_size):
                if order is None:
                    yield inputs[begin : begin + batch_size], targets[begin : begin + batch_size]
                else:
                    index = order[begin : begin + batch_size]
                    yield inputs[index], targets[index]
            return
        loader = DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=False,
        )
        for inputs, targets in loader:
            yield inputs.to(self.device), targets.to(self.device)

    def _call(self, hook: str, model: nn.Module, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, model, *args)


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` becomes CUDA when available, else CPU; asking for missing CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was requested but no CUDA device is available; use device=cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda. Received: device={device!r}")
    return torch.device(device)
