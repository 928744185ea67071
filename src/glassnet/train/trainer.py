"""``Trainer``: the fit / evaluate / predict loop; features come from callbacks and steps."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from glassnet.data.bundle import DataBundle
from glassnet.errors import CheckpointError, ConfigError, DataError
from glassnet.train import distributed
from glassnet.train.callbacks import Callback
from glassnet.train.checkpoint import LAST, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from glassnet.train.optim import build_optimizer, build_plateau, build_scheduler
from glassnet.train.precision import autocast, check_precision, make_scaler
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
        train_time_s: wall time of the loop, validation included (before a resume too).
        samples_per_s: training examples per second over the whole fit (all processes).
        diverged: ``{"step": S, "epoch": E}`` where the loss first became NaN or infinite
            (with ``TerminateOnNaN``), else None.
        resumed_from: the checkpoint the fit continued from, or None.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    steps: int = 0
    train_time_s: float = 0.0
    samples_per_s: float = 0.0
    diverged: dict[str, int] | None = None
    resumed_from: str | None = None


@dataclass
class Predictions:
    """Outputs of ``Trainer.predict``: raw model outputs and the decoded predictions."""

    outputs: torch.Tensor
    prediction: torch.Tensor
    confidence: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None


@dataclass
class _Progress:
    """Where the loop is: everything besides model, optimiser and callbacks that a resume needs."""

    epoch: int = 1
    position: int = 0  # micro-batches of this epoch already trained
    order: torch.Tensor | None = None  # this epoch's example order (all ranks), drawn at its start
    loss_sum: torch.Tensor | None = None
    batches: int = 0
    seen: int = 0
    elapsed: float = 0.0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains, evaluates and runs models.

    Args:
        task: ``classify``, ``regress`` or a ``Task`` instance (loss and metrics).
        max_epochs: passes over the training split (callbacks may stop earlier).
        batch_size: training batch size (per process under ``torchrun``; per micro-batch with ``accumulate``).
        optimizer: ``adamw`` or ``sgd``.
        lr: peak learning rate.
        weight_decay: weight decay of weight matrices (biases and norms get none).
        momentum: SGD momentum.
        schedule: ``onecycle``, ``cosine`` (stepped every optimiser step), ``plateau`` (lowered per
            epoch when ``monitor`` stalls) or ``none``.
        callbacks: ``Callback`` instances, run in order.
        seed: seeds Python, NumPy and torch at the start of ``fit`` and drives shuffling.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a ``torch.device``.
        eval_batch_size: batch size of ``evaluate`` and ``predict``.
        step: the training step (by default the one the task makes: ``SupervisedStep`` for most).
        num_workers: DataLoader worker processes for datasets that are not in-memory tensors
            (e.g. image folders streamed from disk); in-memory tensors never use workers.
        accumulate: micro-batches whose gradients add up before each optimiser step.
        precision: ``fp32``, ``bf16`` (autocast, CPU and CUDA) or ``fp16`` (autocast with a
            gradient scaler; CUDA only).
        channels_last: store conv weights and 4-D inputs in NHWC order (faster convolutions).
        compile: run the training forward/backward through ``torch.compile``; falls back to eager
            with a warning when compilation fails.
        warmup: warm-up of ``onecycle``/``cosine``: steps (int) or a fraction of the run (float < 1).
        monitor: the validation metric that ``schedule="plateau"`` follows.
        plateau_factor: lr multiplier of ``plateau``.
        plateau_patience: epochs without improvement before ``plateau`` lowers the lr.
        checkpoint_dir: where the resumable training state ``last.pt`` is written (None: nowhere).
        checkpoint_every: also write it every N optimiser steps (0: at epoch ends only).
        checkpoint_meta: plain values stored in the checkpoint under ``meta`` (e.g. the run config).
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
        accumulate: int = 1,
        precision: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,
        warmup: float | int | None = None,
        monitor: str = "val/loss",
        plateau_factor: float = 0.5,
        plateau_patience: int = 2,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 0,
        checkpoint_meta: dict[str, Any] | None = None,
    ) -> None:
        if max_epochs < 1 or batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(
                "max_epochs, batch_size and eval_batch_size must be >= 1. "
                f"Received: max_epochs={max_epochs}, batch_size={batch_size}, eval_batch_size={eval_batch_size}"
            )
        if accumulate < 1 or checkpoint_every < 0:
            raise ConfigError(
                f"accumulate must be >= 1 and checkpoint_every >= 0. "
                f"Received: accumulate={accumulate}, checkpoint_every={checkpoint_every}"
            )
        self.task = get_task(task)
        self.max_epochs, self.batch_size, self.eval_batch_size = max_epochs, batch_size, eval_batch_size
        self.optimizer_name, self.lr, self.weight_decay, self.momentum = optimizer, lr, weight_decay, momentum
        self.schedule, self.warmup, self.monitor = schedule, warmup, monitor
        self.plateau_factor, self.plateau_patience = plateau_factor, plateau_patience
        self.callbacks = list(callbacks)
        self.seed = seed
        self.device = resolve_device(device)
        check_precision(precision, self.device)
        self.precision, self.channels_last, self.compile = precision, channels_last, compile
        self.accumulate = accumulate
        self.step = step or self.task.make_step()
        self.num_workers = num_workers
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every, self.checkpoint_meta = checkpoint_every, checkpoint_meta or {}
        self.rank, self.world_size = 0, 1
        self.should_stop, self.resuming = False, False
        self.paused = False  # set with should_stop by callbacks whose stop a resume continues (TimeLimit)
        self.diverged: dict[str, int] | None = None
        self.loss: torch.Tensor | None = None
        self.epoch = 0
        self.global_step = 0
        self.train_size = self.epoch_size = self.epoch_seen = 0

    @property
    def is_global_zero(self) -> bool:
        """Whether this process writes files (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def last_checkpoint(self) -> Path | None:
        """``<checkpoint_dir>/last.pt``, where the resumable state goes (None without a directory)."""
        return self.checkpoint_dir / LAST if self.checkpoint_dir is not None else None

    def fit(
        self,
        model: nn.Module,
        data: DataBundle | Dataset,
        val: Dataset | None = None,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> FitResult:
        """Train ``model`` in place on ``data`` (a bundle's train split, or a dataset).

        Args:
            model: the module to train.
            data: a ``DataBundle`` (trains on ``train``, validates on ``val``) or a ``Dataset``.
            val: validation dataset when ``data`` is a plain dataset.
            resume_from: a ``last.pt`` written by a previous fit of the same model, data and
                trainer settings; training continues exactly where it stopped.

        Returns:
            A ``FitResult`` with the per-epoch history and timings.

        Raises:
            CheckpointError: ``resume_from`` is missing, corrupt or does not fit this model.
        """
        train, val = (data.train, data.val) if isinstance(data, DataBundle) else (data, val)
        if val is not None and len(val) == 0:
            val = None
        self.train_size = len(train)
        if self.train_size == 0:
            raise DataError("the training split is empty")
        self.rank, self.world_size, self.device = distributed.setup(self.device)
        generator = seed_everything(self.seed)
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(model, self.optimizer_name, self.lr, self.weight_decay, self.momentum)
        per_rank = math.ceil(self.train_size / self.world_size)
        self.steps_per_epoch = math.ceil(self._batch_count(per_rank) / self.accumulate)
        total_steps = self.max_epochs * self.steps_per_epoch
        self.scheduler = build_scheduler(self.optimizer, self.schedule, total_steps, warmup=self.warmup)
        self.plateau = None
        if self.schedule == "plateau":
            mode = self.task.mode(self.monitor)
            self.plateau = build_plateau(self.optimizer, mode, self.plateau_factor, self.plateau_patience)
        self.scaler = make_scaler(self.precision, self.device)
        self.should_stop, self.paused, self.diverged = False, False, None
        self.global_step, self.resuming = 0, resume_from is not None
        if hasattr(self.step, "bind"):
            self.step.bind(self)  # steps that follow the schedule (e.g. an eps ramp) read epoch/step from here
        self._call("on_fit_start", model)
        progress = _Progress()
        if resume_from is not None:
            progress = self._restore(load_checkpoint(resume_from), model, generator)
            self.epoch = progress.epoch if progress.position else progress.epoch - 1
        self._runner, self._compile_pending = self._wrap(model), self.compile
        start = time.perf_counter()
        for epoch in range(progress.epoch, self.max_epochs + 1):
            if progress.finished:
                break
            self.epoch = epoch
            if progress.order is None:
                progress.order = torch.randperm(self.train_size, generator=generator)
            model.train()
            self._call("on_epoch_start", model)
            complete = self._train_epoch(model, train, progress, generator, start)
            if self.diverged is not None:
                break
            self._end_epoch(model, val, progress, start)
            if complete:
                progress = _Progress(
                    epoch=epoch + 1,
                    seen=progress.seen,
                    elapsed=progress.elapsed,
                    finished=epoch == self.max_epochs or (self.should_stop and not self.paused),
                    history=progress.history,
                )
                if math.isfinite(progress.history[-1]["train/loss"]):  # never overwrite a good state with NaNs
                    self._save(model, progress, generator, start)
            if self.should_stop:
                break
        self._call("on_fit_end", model)
        elapsed = progress.elapsed + time.perf_counter() - start
        return FitResult(
            history=progress.history,
            epochs_run=self.epoch,
            steps=self.global_step,
            train_time_s=elapsed,
            samples_per_s=progress.seen * self.world_size / max(elapsed, 1e-9),
            diverged=self.diverged,
            resumed_from=str(resume_from) if resume_from is not None else None,
        )

    def _train_epoch(
        self, model: nn.Module, train: Dataset, progress: _Progress, generator: torch.Generator, start: float
    ) -> bool:
        """Train from ``progress.position`` to the end of the epoch; False when a callback stopped it midway."""
        order = distributed.shard(progress.order, self.rank, self.world_size)
        total = self._batch_count(len(order))
        self.epoch_size, self.epoch_seen = len(order), progress.position * self.batch_size
        if progress.loss_sum is None:
            progress.loss_sum = torch.zeros((), device=self.device)
        examples = 0
        batches = self._batches(train, self.batch_size, order=order, start=progress.position)
        for index, (inputs, targets) in enumerate(batches, start=progress.position):
            if index >= total:
                break  # a lone final example breaks batch norm and adds only noise
            boundary = (index + 1) % self.accumulate == 0 or index + 1 == total
            self.loss = self._micro_step(model, inputs, targets, boundary)
            progress.loss_sum += self.loss
            progress.batches += 1
            examples += len(inputs)
            if not boundary:
                continue
            self._optimizer_step(model)
            progress.position, progress.seen = index + 1, progress.seen + examples
            self._call("on_batch_end", model, examples)
            examples = 0
            last = index + 1 == total
            if self.diverged is not None:
                return False
            due = self.should_stop or (self.checkpoint_every and self.global_step % self.checkpoint_every == 0)
            if due and not last and torch.isfinite(progress.loss_sum).item():  # one sync per checkpoint
                self._save(model, progress, generator, start)
            if self.should_stop:
                return last
        return True

    def _micro_step(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, boundary: bool):
        """Forward, loss and backward of one micro-batch; returns the detached loss."""
        if self.channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if not self._compile_pending:
            return self._forward_backward(self._runner, inputs, targets, boundary)
        self._compile_pending = False
        try:
            return self._forward_backward(self._runner, inputs, targets, boundary)
        except Exception as exc:  # inductor needs a C++ compiler, some models break graph capture, ...
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                "training continues without compilation (compile=false avoids this attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            self.optimizer.zero_grad(set_to_none=True)
            self._runner = self._wrap(model, compile=False)
            return self._forward_backward(self._runner, inputs, targets, boundary)

    def _forward_backward(self, runner: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, boundary: bool):
        # DDP all-reduces gradients only on the micro-batch that ends an accumulation group
        sync = runner.no_sync() if not boundary and hasattr(runner, "no_sync") else contextlib.nullcontext()
        with sync:
            with autocast(self.precision, self.device):
                loss = self.step.training_step(runner, inputs, targets, self.task)
            scaled = loss if self.accumulate == 1 else loss / self.accumulate
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        return loss.detach()

    def _optimizer_step(self, model: nn.Module) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clipping callbacks see true gradients
        self._call("on_before_optimizer_step", model, self.optimizer)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.global_step += 1

    def _end_epoch(self, model: nn.Module, val: Dataset | None, progress: _Progress, start: float) -> None:
        """Log the epoch, validate (on the weights callbacks select) and run the epoch-end callbacks."""
        loss = progress.loss_sum / max(progress.batches, 1)
        if distributed.active():
            torch.distributed.all_reduce(loss)
            loss = loss / self.world_size
        logs: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.global_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train/loss": loss.item(),
        }
        self._call("on_validation_start", model)
        try:
            if val is not None:
                logs.update({f"val/{k}": v for k, v in self.evaluate(model, val).items()})
            logs["time_s"] = round(progress.elapsed + time.perf_counter() - start, 3)
            if self.plateau is not None:
                if self.monitor not in logs:
                    raise ConfigError(
                        f"schedule=plateau follows {self.monitor!r}, which is not logged (is there a validation "
                        f"split?). Logged: {', '.join(sorted(logs))}"
                    )
                self.plateau.step(logs[self.monitor])
            progress.history.append(logs)
            self._call("on_epoch_end", model, logs)
        finally:
            self._call("on_validation_end", model)

    def _wrap(self, model: nn.Module, compile: bool | None = None) -> nn.Module:
        """The module the training step calls: DDP across processes, compiled when asked."""
        runner: nn.Module = model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            runner = DistributedDataParallel(model, device_ids=ids)
        if self.compile if compile is None else compile:
            try:
                runner = torch.compile(runner)
            except Exception as exc:
                warnings.warn(f"torch.compile is unavailable ({exc}); training eagerly", RuntimeWarning, stacklevel=2)
                self._compile_pending = False
        return runner

    def _save(self, model: nn.Module, progress: _Progress, generator: torch.Generator, start: float) -> None:
        """Write the resumable state to ``last.pt`` (rank 0 only; atomically)."""
        if self.last_checkpoint is None or not self.is_global_zero:
            return
        state = {
            "meta": self.checkpoint_meta,
            "progress": {
                "epoch": progress.epoch,
                "position": progress.position,
                "order": progress.order,
                "loss_sum": progress.loss_sum.cpu() if progress.loss_sum is not None else None,
                "batches": progress.batches,
                "seen": progress.seen,
                "elapsed": progress.elapsed + time.perf_counter() - start,
                "finished": progress.finished,
                "history": progress.history,
            },
            "global_step": self.global_step,
            "world_size": self.world_size,
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "callbacks": {f"{i}:{type(c).__name__}": c.state_dict() for i, c in enumerate(self.callbacks)},
            "step": self.step.state_dict() if hasattr(self.step, "state_dict") else None,
            "rng": rng_state(generator),
        }
        save_checkpoint(self.last_checkpoint, state)

    def _restore(self, state: dict[str, Any], model: nn.Module, generator: torch.Generator) -> _Progress:
        """Load a checkpoint's model, optimiser, schedules, callbacks and RNG states; return where to continue."""
        try:
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.plateau is not None and state["plateau"] is not None:
                self.plateau.load_state_dict(state["plateau"])
            if self.scaler is not None and state["scaler"] is not None:
                self.scaler.load_state_dict(state["scaler"])
            saved = state["callbacks"]
            for i, callback in enumerate(self.callbacks):
                key = f"{i}:{type(callback).__name__}"
                if key in saved:
                    callback.load_state_dict(saved[key])
            if state["step"] is not None and hasattr(self.step, "load_state_dict"):
                self.step.load_state_dict(state["step"])
            saved_progress = state["progress"]
            progress = _Progress(**{k: v for k, v in saved_progress.items()})
            self.global_step = state["global_step"]
            set_rng_state(state["rng"], generator)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"the checkpoint does not match this model and trainer ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300]}); resume with the configuration it was written with"
            ) from exc
        if progress.loss_sum is not None:
            progress.loss_sum = progress.loss_sum.to(self.device)
        return progress

    def evaluate(self, model: nn.Module, data: Dataset) -> dict[str, float]:
        """Loss and task metrics of ``model`` on ``data`` (eval mode, no gradients).

        Under ``torchrun`` each process computes the outputs of its share of ``data``; the outputs
        are gathered so that every metric is computed once, over the whole split, on every rank.
        """
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
        sharded = distributed.active()
        order = distributed.shard(torch.arange(len(data)), self.rank, self.world_size) if sharded else None
        was_training = model.training
        model.eval()
        chunks, targets = [], []
        try:
            with torch.inference_mode(), autocast(self.precision, self.device):
                for inputs, target in self._batches(data, self.eval_batch_size, order=order):
                    if self.channels_last and inputs.ndim == 4:
                        inputs = inputs.contiguous(memory_format=torch.channels_last)
                    out = model(inputs)
                    chunks.append(out.float() if out.is_floating_point() else out)
                    targets.append(target)
        finally:
            model.train(was_training)
        outputs, target = torch.cat(chunks), torch.cat(targets)
        if sharded:
            outputs = distributed.gather_ordered(outputs, len(data), self.world_size)
            target = distributed.gather_ordered(target, len(data), self.world_size)
        return outputs.cpu(), target.cpu()

    def _batch_count(self, examples: int) -> int:
        """Micro-batches per epoch for ``examples``, without a lone final example."""
        count = math.ceil(examples / self.batch_size)
        if examples > 1 and examples % self.batch_size == 1:
            count -= 1
        return count

    def _batches(
        self,
        data: Dataset,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        *,
        order: torch.Tensor | None = None,
        start: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield device batches in ``order`` (None: as stored, or shuffled with ``generator``) from batch ``start`` on.

        Tensors already in memory are indexed directly, without DataLoader workers; other datasets
        go through a DataLoader that samples ``order`` (the distributed sampler's job, done once
        for both kinds of data).
        """
        if shuffle and order is None:
            order = torch.randperm(len(data), generator=generator)
        if isinstance(data, TensorDataset) and len(data.tensors) == 2:
            inputs, targets = (t.to(self.device) for t in data.tensors)
            n = len(inputs) if order is None else len(order)
            if order is not None:
                order = order.to(self.device)
            for begin in range(start * batch_size, n, batch_size):
                if order is None:
                    yield inputs[begin : begin + batch_size], targets[begin : begin + batch_size]
                else:
                    index = order[begin : begin + batch_size]
                    yield inputs[index], targets[index]
            return
        sampler = order[start * batch_size :].tolist() if order is not None else None
        if sampler is None and start:
            sampler = list(range(start * batch_size, len(data)))
        # a generator of its own: a DataLoader otherwise draws its workers' base seed from the global
        # RNG, which would shift dropout's random numbers after a resume
        seeds = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        loader = DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=False,
            generator=seeds,
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
