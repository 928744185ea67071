"""``Trainer``: the one training loop. Features come from callbacks, learning schemes from steps,
batches from sources.

Per period (an epoch of a dataset, or ``eval_every`` steps of a stream) the trainer asks its batch
source for batches, hands each to the training step, and after the period logs the averaged step
logs, validates and calls the callbacks. See ``glassnet.train.steps`` for the step contract and
``glassnet.train.sources`` for the sources.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.bundle import DataBundle
from glassnet.data.spec import DataSpec
from glassnet.errors import CheckpointError, ConfigError, DataError
from glassnet.models.outputs import Outputs, concat_outputs, eval_mode, map_outputs
from glassnet.models.registry import list_models, model_info
from glassnet.train import distributed
from glassnet.train.callbacks import Callback
from glassnet.train.checkpoint import LAST, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from glassnet.train.optim import build_optimizer, build_plateau, build_scheduler
from glassnet.train.precision import autocast, check_precision, make_scaler
from glassnet.train.seed import seed_everything
from glassnet.train.sources import BatchSource, DataSource, StreamSource, as_source, periods
from glassnet.train.steps import Optimization, Step, make_step
from glassnet.train.tasks import Task, get_task

Evaluator = Callable[["Trainer", nn.Module], Mapping[str, float]]
DEFAULT_OPTIMIZER = "optimizer"


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        history: one record per epoch (per ``eval_every`` steps of a stream): the lines of ``metrics.jsonl``.
        epochs_run: epochs (periods) completed (fewer than planned after early stopping).
        steps: training steps taken (optimiser steps; one per batch for manual-optimisation steps).
        train_time_s: wall time of the loop, validation included (before a resume too).
        samples_per_s: training examples (or transitions) per second over the whole fit (all processes).
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
    """Outputs of ``Trainer.predict`` and ``Run.predict``: raw model outputs and the decoded predictions.

    Attributes:
        outputs: the model's raw outputs (logits for classification).
        prediction: the decoded predictions: class indices (classification), 0/1 per label
            (multi-label) or values in natural units (regression).
        confidence: the probability of each decision (classification), else None.
        probabilities: every class's probability (classification), else None.
        spec: the ``DataSpec`` of the data the model was trained on (its class names), when known.
    """

    outputs: Outputs
    prediction: torch.Tensor
    confidence: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    spec: DataSpec | None = field(default=None, repr=False, compare=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names of the classes (or labels) in output order; empty when the data names none."""
        return tuple(self.spec.class_names) if self.spec is not None else ()

    @property
    def labels(self) -> list[Any]:
        """One prediction per example as a person reads it, as ``glassnet predict`` prints it: the class
        name (classification; its index when the data names no classes), the names of the predicted
        labels (multi-label) or the predicted values (regression). Without a spec, the raw predictions."""
        if self.spec is None:
            return self.prediction.tolist()
        task = get_task(self.spec.task)
        return [task.shown(self.spec, row) for row in self.prediction]


@dataclass
class _Progress:
    """Where the loop is: everything besides model, optimisers, callbacks and source that a resume needs."""

    epoch: int = 1
    position: int = 0  # micro-batches of this period already trained
    order: torch.Tensor | None = None  # this epoch's example order (all ranks), drawn at its start
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # the step's logs, summed on the device
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seen: int = 0
    elapsed: float = 0.0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains, evaluates and runs models.

    Args:
        task: ``classify``, ``regress`` ... or a ``Task`` instance (loss, metrics, monitor directions).
            None (the default): the task of the data, ``bundle.spec.task`` (read when ``fit``,
            ``evaluate`` or ``predict`` gets data that carries a ``DataSpec``); data without one is
            classified when its targets are class indices, and refused otherwise.
        max_epochs: passes over a dataset (callbacks may stop earlier).
        batch_size: training batch size (per process under ``torchrun``; per micro-batch with ``accumulate``).
        optimizer: ``adamw`` or ``sgd`` (for steps that do not configure their own optimisers).
        lr: peak learning rate.
        weight_decay: weight decay of weight matrices (biases and norms get none).
        momentum: SGD momentum.
        lr_decay: discriminative learning rates for fine-tuning: each layer group (input to head, see
            ``glassnet.train.finetune.layer_groups``) at ``lr_decay`` times the lr of the group above
            it; 1: one lr for every parameter.
        schedule: ``onecycle``, ``cosine`` (stepped every optimiser step), ``plateau`` (lowered per
            epoch when ``monitor`` stalls) or ``none``.
        callbacks: ``Callback`` instances, run in order.
        seed: seeds Python, NumPy and torch at the start of ``fit`` and drives shuffling and streams.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a ``torch.device``.
        eval_batch_size: batch size of ``evaluate`` and ``predict``.
        step: the training step (by default the registered step the task names: ``supervised`` for most).
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
        checkpoint_every: also write it every N training steps (0: at epoch ends only).
        checkpoint_meta: plain values stored in the checkpoint under ``meta`` (e.g. the run config).
        max_steps: stop after this many training steps (required for stream sources; optional for
            datasets, where it ends training mid-epoch). None: no step budget.
        eval_every: steps between validations (and log lines) of a stream source; default a tenth
            of ``max_steps``. Datasets validate at every epoch end.
    """

    def __init__(
        self,
        task: str | Task | None = None,
        max_epochs: int = 10,
        batch_size: int = 64,
        optimizer: str = "adamw",
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        momentum: float = 0.9,
        schedule: str = "onecycle",
        lr_decay: float = 1.0,
        callbacks: Sequence[Callback] = (),
        seed: int = 0,
        device: str | torch.device = "auto",
        eval_batch_size: int = 1024,
        step: Step | None = None,
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
        max_steps: int | None = None,
        eval_every: int | None = None,
    ) -> None:
        self._arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
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
        for name, value in (("max_steps", max_steps), ("eval_every", eval_every)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be an integer >= 1 or None. Received: {name}={value!r}")
        # without a task, classification stands in until data with a spec says otherwise (_infer_task)
        self.task = get_task(task if task is not None else "classify")
        self._chosen_task: Task | None = None if task is not None else self.task  # the task the trainer picked
        self._task_from_spec = False
        self._default_step = step is None
        self.spec: DataSpec | None = None  # the spec of the data last fitted on (class names for predict)
        self.max_epochs, self.batch_size, self.eval_batch_size = max_epochs, batch_size, eval_batch_size
        self.max_steps, self.eval_every = max_steps, eval_every
        self.optimizer_name, self.lr, self.weight_decay, self.momentum = optimizer, lr, weight_decay, momentum
        self.lr_decay = lr_decay
        self.schedule, self.warmup, self.monitor = schedule, warmup, monitor
        self.plateau_factor, self.plateau_patience = plateau_factor, plateau_patience
        self.callbacks = list(callbacks)
        self.seed = seed
        self.device = resolve_device(device)
        check_precision(precision, self.device)
        self.precision, self.channels_last, self.compile = precision, channels_last, compile
        self.accumulate = accumulate
        self.step = step or make_step(self.task.default_step)
        self.num_workers = num_workers
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every, self.checkpoint_meta = checkpoint_every, checkpoint_meta or {}
        self.rank, self.world_size = 0, 1
        self.should_stop, self.resuming = False, False
        self.paused = False  # set with should_stop by callbacks whose stop a resume continues (TimeLimit)
        self.diverged: dict[str, int] | None = None
        self.loss: torch.Tensor | None = None
        self.epoch = self.global_step = 0
        self.periods = self.steps_per_epoch = self.total_steps = 0
        self.period_batches = self.period_position = 0
        self.source: BatchSource | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.plateau = self.scaler = None

    def replace(self, **changes: Any) -> Trainer:
        """A new trainer with the same settings except ``changes`` (e.g. ``callbacks=[]``, ``max_steps=100``)."""
        unknown = sorted(set(changes) - set(self._arguments))
        if unknown:
            raise ConfigError(f"Trainer has no setting {unknown[0]!r}")
        return Trainer(**{**self._arguments, "device": self.device, **changes})

    @property
    def is_global_zero(self) -> bool:
        """Whether this process writes files (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def last_checkpoint(self) -> Path | None:
        """``<checkpoint_dir>/last.pt``, where the resumable state goes (None without a directory)."""
        return self.checkpoint_dir / LAST if self.checkpoint_dir is not None else None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first optimiser (the only one unless the step configures several)."""
        return next(iter(self.optimizers.values()))

    def period_label(self) -> str:
        """``epoch 3/10`` for datasets, ``step 300/1000`` for streams: where training stands."""
        if self.source is not None and not self.source.sized:
            return f"step {self.global_step}/{self.total_steps}"
        return f"epoch {self.epoch}/{self.periods or self.max_epochs}"

    # --- fit -------------------------------------------------------------------------------------

    def fit(
        self,
        model: nn.Module,
        data: DataBundle | Dataset | BatchSource,
        val: Dataset | Evaluator | None = None,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> FitResult:
        """Train ``model`` in place.

        Args:
            model: the module to train.
            data: a ``DataBundle`` (trains on ``train``, validates on ``val``), a ``Dataset``, or a
                ``BatchSource`` (``SampleSource``, ``EnvironmentSource`` ...: trained for ``max_steps``).
            val: validation data when ``data`` is not a bundle: a dataset (scored by the task's
                metrics) or a callable ``(trainer, model) -> {name: value}`` (e.g. episodes of an
                environment), logged as ``val/<name>``.
            resume_from: a ``last.pt`` written by a previous fit of the same model, data and
                trainer settings; training continues exactly where it stopped.

        Returns:
            A ``FitResult`` with the per-epoch history and timings.

        Raises:
            CheckpointError: ``resume_from`` is missing, corrupt or does not fit this model.
            ConfigError: a stream source without ``max_steps``, or settings the step cannot use.
        """
        self._infer_task(data)
        self._adopt_model_step(model)
        if isinstance(data, DataBundle):
            data, val = data.train, data.val
        if isinstance(val, Dataset) and len(val) == 0:
            val = None
        source = as_source(data, self.num_workers)
        self.rank, self.world_size, self.device = distributed.setup(self.device)
        generator = seed_everything(self.seed)
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.source, self._model = source, model
        self.step.bind(self)
        source.bind(self)
        self._plan(source)
        self._configure_optimizers(model)
        self.scaler = make_scaler(self.precision, self.device)
        self.should_stop, self.paused, self.diverged = False, False, None
        self.global_step, self.resuming = 0, resume_from is not None
        self._call("on_fit_start", model)
        progress = _Progress()
        if resume_from is not None:
            progress = self._restore(load_checkpoint(resume_from), model, generator)
            self.epoch = progress.epoch if progress.position else progress.epoch - 1
        self._runner, self._compile_pending = self._wrap(model), self.compile
        start = time.perf_counter()
        while not progress.finished:
            self.epoch = progress.epoch
            if source.sized and progress.order is None:
                progress.order = torch.randperm(len(source), generator=generator)
            model.train()
            self._call("on_epoch_start", model)
            complete = self._train_period(model, source, progress, generator, start)
            if self.diverged is not None:
                break
            self._end_period(model, val, progress, start)
            if complete:
                budget_spent = self.max_steps is not None and self.global_step >= self.max_steps
                progress = _Progress(
                    epoch=self.epoch + 1,
                    seen=progress.seen,
                    elapsed=progress.elapsed,
                    finished=self.epoch >= self.periods or budget_spent or (self.should_stop and not self.paused),
                    history=progress.history,
                )
                if _finite(progress.history[-1]):  # never overwrite a good state with NaNs
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

    def close(self) -> None:
        """Drop the DDP wrapper, then leave the process group (if any).

        ``destroy_process_group`` only forgets the group; a ``DistributedDataParallel`` still alive
        keeps it, and gloo's worker threads then die with the interpreter at exit, which aborts the
        process ("terminate called without an active exception"). Drop the wrapper first.
        """
        self._runner = None
        if distributed.active():
            gc.collect()  # DDP's reducer sits in reference cycles through its autograd hooks
        distributed.cleanup()

    def _plan(self, source: BatchSource) -> None:
        """The budget: periods, steps per period and the total steps that per-step schedules span."""
        manual = not self.step.automatic_optimization
        if manual and self.accumulate > 1:
            raise ConfigError(
                f"{type(self.step).__name__} optimises manually (it steps its own optimisers), so gradient "
                f"accumulation does not apply. Received: accumulate={self.accumulate}; use accumulate=1"
            )
        if isinstance(source, DataSource):
            if self.eval_every is not None:
                raise ConfigError("eval_every applies to stream sources; a dataset is validated at every epoch end")
            if len(source) == 0:
                raise DataError("the training split is empty")
            per_rank = math.ceil(len(source) / self.world_size)
            self.steps_per_epoch = math.ceil(self._batch_count(per_rank) / self.accumulate)
            self.periods = self.max_epochs
            total = self.max_epochs * self.steps_per_epoch
            self.total_steps = min(total, self.max_steps) if self.max_steps else total
        elif isinstance(source, StreamSource):
            if self.max_steps is None:
                raise ConfigError(
                    f"a {type(source).__name__} has no epochs: give the trainer a step budget, e.g. max_steps=10000"
                )
            self.steps_per_epoch = self.eval_every or max(1, self.max_steps // 10)
            self.periods = periods(self.max_steps, self.steps_per_epoch)
            self.total_steps = self.max_steps
        else:
            raise ConfigError(f"{type(source).__name__} is neither a DataSource nor a StreamSource")

    def _configure_optimizers(self, model: nn.Module) -> None:
        """The step's optimisers (and schedules), or the configured optimiser over every trainable parameter."""
        configured = self.step.configure_optimizers(model)
        self.plateau = None
        if configured is None:
            optimizer = build_optimizer(
                model, self.optimizer_name, self.lr, self.weight_decay, self.momentum, lr_decay=self.lr_decay
            )
            self.optimizers = {DEFAULT_OPTIMIZER: optimizer}
            self.schedulers = {
                DEFAULT_OPTIMIZER: build_scheduler(optimizer, self.schedule, self.total_steps, warmup=self.warmup)
            }
            if self.schedule == "plateau":
                mode = self.task.mode(self.monitor)
                self.plateau = build_plateau(optimizer, mode, self.plateau_factor, self.plateau_patience)
            return
        if isinstance(configured, torch.optim.Optimizer):
            configured = Optimization({DEFAULT_OPTIMIZER: configured})
        elif isinstance(configured, Mapping):
            configured = Optimization(dict(configured))
        if not isinstance(configured, Optimization) or not configured.optimizers:
            raise ConfigError(
                f"{type(self.step).__name__}.configure_optimizers must return None, an optimiser, a mapping of "
                f"named optimisers or an Optimization. Received: {configured!r}"
            )
        unknown = sorted(set(configured.schedulers) - set(configured.optimizers))
        if unknown:
            raise ConfigError(f"schedules for optimisers that do not exist: {', '.join(unknown)}")
        if self.step.automatic_optimization and len(configured.optimizers) > 1:
            raise ConfigError(
                f"{type(self.step).__name__} returns {len(configured.optimizers)} optimisers: a step with several "
                "optimisers steps them itself (automatic_optimization = False)"
            )
        self.optimizers, self.schedulers = dict(configured.optimizers), dict(configured.schedulers)

    def _train_period(
        self, model: nn.Module, source: BatchSource, progress: _Progress, generator: torch.Generator, start: float
    ) -> bool:
        """Train from ``progress.position`` to the end of the period; False when a callback stopped it midway."""
        if isinstance(source, DataSource):
            order = distributed.shard(progress.order, self.rank, self.world_size)
            total = self._batch_count(len(order))
            batches = source.batches(order, self.batch_size, progress.position, total)
        else:
            steps = min(self.steps_per_epoch, self.max_steps - (self.epoch - 1) * self.steps_per_epoch)
            total = steps * self.accumulate
            batches = itertools.islice(source.batches(self, model), total - progress.position)
        self.period_batches, self.period_position = total, progress.position
        automatic = self.step.automatic_optimization
        examples = 0
        for index, batch in enumerate(batches, start=progress.position):
            boundary = (index + 1) % self.accumulate == 0 or index + 1 == total
            logs = self._micro_step(model, batch, boundary)
            for key, value in logs.items():
                if key in progress.sums:
                    progress.sums[key] += value
                    progress.counts[key] += 1
                else:
                    progress.sums[key], progress.counts[key] = value.clone(), 1
            progress.batches += 1
            examples += source.count(batch)
            if not boundary:
                continue
            if automatic:
                self._step_optimizer(model, None)
            if self.scaler is not None:
                self.scaler.update()
            self.global_step += 1
            progress.position, progress.seen = index + 1, progress.seen + examples
            self.period_position = progress.position
            self._call("on_batch_end", model, examples)
            examples = 0
            budget_spent = self.max_steps is not None and self.global_step >= self.max_steps
            last = index + 1 == total or budget_spent
            if self.diverged is not None:
                return False
            due = self.should_stop or (self.checkpoint_every and self.global_step % self.checkpoint_every == 0)
            if due and not last and _sums_finite(progress.sums):  # one sync per checkpoint
                self._save(model, progress, generator, start)
            if self.should_stop:
                return last
            if budget_spent:
                return True
        return True

    def _micro_step(self, model: nn.Module, batch: Any, boundary: bool) -> dict[str, torch.Tensor]:
        """Forward, loss and backward of one micro-batch; returns the step's detached logs."""
        if self.channels_last:
            batch = _channels_last(batch)
        if not self._compile_pending:
            return self._run_step(self._runner, batch, boundary)
        self._compile_pending = False
        try:
            return self._run_step(self._runner, batch, boundary)
        except Exception as exc:  # inductor needs a C++ compiler, some models break graph capture, ...
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                "training continues without compilation (compile=false avoids this attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            self._runner = self._wrap(model, compile=False)
            return self._run_step(self._runner, batch, boundary)

    def _run_step(self, runner: nn.Module, batch: Any, boundary: bool) -> dict[str, torch.Tensor]:
        if not self.step.automatic_optimization:
            for optimizer in self.optimizers.values():  # no gradient of another loss leaks into this step's
                optimizer.zero_grad(set_to_none=True)
            with autocast(self.precision, self.device):
                out = self.step.training_step(runner, batch, self.task)
            logs = _logs(out, self.step, required=False, device=self.device)
            self.loss = logs.get("loss")
            return logs
        # DDP all-reduces gradients only on the micro-batch that ends an accumulation group
        sync = runner.no_sync() if not boundary and hasattr(runner, "no_sync") else contextlib.nullcontext()
        with sync:
            with autocast(self.precision, self.device):
                out = self.step.training_step(runner, batch, self.task)
            loss = out if isinstance(out, torch.Tensor) else _loss(out, self.step)
            scaled = loss if self.accumulate == 1 else loss / self.accumulate
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        logs = {"loss": loss.detach()} if isinstance(out, torch.Tensor) else _logs(out, self.step, True, self.device)
        self.loss = logs["loss"]
        return logs

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` for a manual-optimisation step (outside autocast, scaled when fp16)."""
        with torch.autocast(device_type=self.device.type, enabled=False):
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def optimizer_step(self, name: str | None = None) -> None:
        """Step optimiser ``name`` (the first when None) for a manual-optimisation step."""
        self._step_optimizer(self._model, name)

    def _step_optimizer(self, model: nn.Module, name: str | None) -> None:
        if name is None:
            name = next(iter(self.optimizers))
        if name not in self.optimizers:
            raise ConfigError(f"no optimiser named {name!r}; the step configured: {', '.join(self.optimizers)}")
        optimizer = self.optimizers[name]
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)  # clipping callbacks see true gradients
        self._call("on_before_optimizer_step", model, optimizer)
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler = self.schedulers.get(name)
        if scheduler is not None:
            scheduler.step()

    def _end_period(self, model: nn.Module, val: Any, progress: _Progress, start: float) -> None:
        """Log the period, validate (on the weights callbacks select) and run the epoch-end callbacks."""
        logs: dict[str, Any] = {"epoch": self.epoch, "step": self.global_step}
        for name, optimizer in self.optimizers.items():
            peak = max(group["lr"] for group in optimizer.param_groups)  # the head's, under discriminative lrs
            logs["lr" if name == next(iter(self.optimizers)) else f"lr/{name}"] = peak
        logs.update(self._train_logs(progress))
        self._call("on_validation_start", model)
        try:
            if isinstance(val, Dataset):
                logs.update({f"val/{k}": v for k, v in self.evaluate(model, val).items()})
            elif val is not None:  # in the run's precision, as ``evaluate`` (a sampler's validation: 2.4x in bf16)
                with eval_mode(model), autocast(self.precision, self.device):
                    logs.update({f"val/{k}": float(v) for k, v in val(self, model).items()})
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

    def _train_logs(self, progress: _Progress) -> dict[str, float]:
        """The step's logs averaged over the period (and over processes): one device sync."""
        keys = sorted(progress.sums, key=lambda k: (k != "loss", k))
        if not keys:
            return {}
        means = torch.stack([progress.sums[k].float() / progress.counts[k] for k in keys])
        if distributed.active():
            torch.distributed.all_reduce(means)
            means = means / self.world_size
        return {f"train/{k}": v for k, v in zip(keys, means.tolist())}

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

    # --- checkpoints -----------------------------------------------------------------------------

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
                "sums": {k: v.cpu() for k, v in progress.sums.items()},
                "counts": dict(progress.counts),
                "batches": progress.batches,
                "seen": progress.seen,
                "elapsed": progress.elapsed + time.perf_counter() - start,
                "finished": progress.finished,
                "history": progress.history,
            },
            "global_step": self.global_step,
            "world_size": self.world_size,
            "model": model.state_dict(),
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "callbacks": {f"{i}:{type(c).__name__}": c.state_dict() for i, c in enumerate(self.callbacks)},
            "step": self.step.state_dict(),
            "source": self.source.state_dict(),
            "rng": rng_state(generator),
        }
        save_checkpoint(self.last_checkpoint, state)

    def _restore(self, state: dict[str, Any], model: nn.Module, generator: torch.Generator) -> _Progress:
        """Load a checkpoint's model, optimisers, schedules, callbacks, source and RNG states; return the progress."""
        try:
            model.load_state_dict(state["model"])
            if sorted(state["optimizers"]) != sorted(self.optimizers):
                raise KeyError(f"optimisers {sorted(state['optimizers'])} saved, {sorted(self.optimizers)} configured")
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
            for name, scheduler in self.schedulers.items():
                scheduler.load_state_dict(state["schedulers"][name])
            if self.plateau is not None and state["plateau"] is not None:
                self.plateau.load_state_dict(state["plateau"])
            if self.scaler is not None and state["scaler"] is not None:
                self.scaler.load_state_dict(state["scaler"])
            saved = state["callbacks"]
            for i, callback in enumerate(self.callbacks):
                key = f"{i}:{type(callback).__name__}"
                if key in saved:
                    callback.load_state_dict(saved[key])
            self.step.load_state_dict(state["step"] or {})
            self.source.load_state_dict(state["source"] or {})
            progress = _Progress(**state["progress"])
            self.global_step = state["global_step"]
            set_rng_state(state["rng"], generator)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"the checkpoint does not match this model and trainer ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}); resume with the configuration it was "
                "written with"
            ) from exc
        progress.sums = {k: v.to(self.device) for k, v in progress.sums.items()}
        return progress

    # --- evaluate and predict --------------------------------------------------------------------

    def evaluate(self, model: nn.Module, data: Dataset | DataBundle) -> dict[str, float]:
        """Loss and task metrics of ``model`` on ``data`` (eval mode, no gradients); a ``DataBundle``
        is scored on its test split.

        Under ``torchrun`` each process computes the outputs of its share of ``data``; the outputs
        are gathered so that every metric is computed once, over the whole split, on every rank.
        """
        self._infer_task(data)
        if isinstance(data, DataBundle):
            data = data.test
        outputs, targets = self._outputs(model, data)
        return self.task.metrics(outputs, targets)

    def predict(
        self, model: nn.Module, data: Dataset | DataBundle | torch.Tensor, spec: DataSpec | None = None
    ) -> Predictions:
        """Outputs and decoded predictions for a dataset, a bundle's test split or a tensor of inputs.

        Args:
            model: the model.
            data: inputs in natural units, a dataset of ``(input, target)`` pairs, or a bundle.
            spec: the spec whose class names the predictions carry (``Predictions.labels``);
                default: the bundle's, else that of the data this trainer last fitted on.

        Returns:
            ``Predictions``: raw outputs, decoded predictions and (with a spec) class names.
        """
        self._infer_task(data)
        spec = spec or getattr(data, "spec", None) or self.spec
        if isinstance(data, DataBundle):
            data = data.test
        if isinstance(data, torch.Tensor):
            data = TensorDataset(data, torch.zeros(len(data)))
        outputs, _ = self._outputs(model, data)
        decoded = self.task.decode(outputs)
        return Predictions(outputs=outputs, **decoded, spec=spec)

    def _adopt_model_step(self, model: nn.Module) -> None:
        """Without a step given, train a registered family with the step it names (``ddpm``: ``diffusion``)."""
        if not self._default_step:
            return
        inner = getattr(model, "_orig_mod", model)
        arch = getattr(getattr(inner, "module", inner), "glassnet_arch", None)
        name = arch.get("name") if isinstance(arch, dict) else None
        preferred = model_info(name).step if isinstance(name, str) and name in list_models() else None
        if preferred is not None and self.step.name != preferred:
            self.step = make_step(preferred, self.spec)

    def _infer_task(self, data: Any) -> None:
        """Take the task from ``data``'s ``DataSpec`` when the trainer was given none (explicit tasks win).

        Raises:
            ConfigError: no task was given and ``data`` has neither a spec nor class-index targets.
        """
        spec = getattr(data, "spec", None)
        if isinstance(spec, DataSpec):
            self.spec = spec
        if self._chosen_task is None or self.task is not self._chosen_task:
            return  # a task was given (or set on the trainer since): it wins
        if not isinstance(spec, DataSpec):
            if not self._task_from_spec and isinstance(data, Dataset) and not _class_targets(data):
                raise ConfigError(
                    f"Trainer cannot tell the task of a {type(data).__name__} with {_target_kind(data)} targets "
                    "and no DataSpec: pass it, e.g. Trainer(task='regress'), or fit on a DataBundle (its spec has it)"
                )
            return  # class indices, inputs alone, or the task an earlier bundle gave
        if spec.task != self.task.name:
            self.task = self._chosen_task = get_task(spec.task)
            if self._default_step and self.step.name != self.task.default_step:
                self.step = make_step(self.task.default_step, spec)
        self._task_from_spec = True

    def _outputs(self, model: nn.Module, data: Dataset) -> tuple[Outputs, torch.Tensor]:
        if len(data) == 0:
            raise DataError("cannot evaluate on an empty dataset")
        model.to(self.device)
        sharded = distributed.active()
        order = torch.arange(len(data))
        if sharded:
            order = distributed.shard(order, self.rank, self.world_size)
        source = as_source(data, self.num_workers)
        source.bind(self)
        chunks, targets = [], []
        with eval_mode(model), torch.inference_mode(), autocast(self.precision, self.device):
            for batch in source.batches(order, self.eval_batch_size, 0, math.ceil(len(order) / self.eval_batch_size)):
                inputs, target = batch[0], batch[1]
                if self.channels_last and inputs.ndim == 4:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                chunks.append(map_outputs(lambda t: t.float() if t.is_floating_point() else t, model(inputs)))
                targets.append(target)
        outputs, target = concat_outputs(chunks), torch.cat(targets)
        if sharded:
            outputs = map_outputs(
                lambda t: t if t.dim() == 0 else distributed.gather_ordered(t, len(data), self.world_size), outputs
            )
            target = distributed.gather_ordered(target, len(data), self.world_size)
        return map_outputs(lambda t: t.cpu(), outputs), target.cpu()

    def _batch_count(self, examples: int) -> int:
        """Micro-batches per epoch for ``examples``, without a lone final example."""
        count = math.ceil(examples / self.batch_size)
        if examples > 1 and examples % self.batch_size == 1:
            count -= 1  # a lone final example breaks batch norm and adds only noise
        return count

    def _call(self, hook: str, model: nn.Module, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, model, *args)


def _first_target(data: Dataset) -> Any:
    """The target of a dataset's first example (None when it has none)."""
    if isinstance(data, TensorDataset):
        return data.tensors[1] if len(data.tensors) > 1 else None
    if len(data) == 0:
        return None
    item = data[0]
    return item[1] if isinstance(item, (tuple, list)) and len(item) > 1 else None


def _class_targets(data: Dataset) -> bool:
    """Whether a dataset's targets are class indices (integers), or it has none to go by."""
    target = _first_target(data)
    if target is None:
        return True
    return not torch.as_tensor(target).is_floating_point()


def _target_kind(data: Dataset) -> str:
    target = torch.as_tensor(_first_target(data))
    return f"{str(target.dtype).removeprefix('torch.')} (floating-point)"


def _loss(out: Any, step: Step) -> torch.Tensor:
    """The loss of an automatic-optimisation step's output mapping."""
    if not isinstance(out, Mapping) or not isinstance(out.get("loss"), torch.Tensor):
        raise ConfigError(
            f"{type(step).__name__}.training_step must return the loss (a tensor) or a mapping with a 'loss' "
            f"tensor. Received: {type(out).__name__}"
        )
    return out["loss"]


def _logs(out: Any, step: Step, required: bool, device: torch.device) -> dict[str, torch.Tensor]:
    """A step's output as a dict of detached float tensors on ``device``; ``loss`` must be in it when ``required``."""
    if isinstance(out, torch.Tensor):
        return {"loss": out.detach()}
    if out is None and not required:
        return {}
    if not isinstance(out, Mapping) or (required and "loss" not in out):
        need = "the loss (a tensor) or a mapping with 'loss'" if required else "a mapping of logged values"
        raise ConfigError(f"{type(step).__name__}.training_step must return {need}. Received: {type(out).__name__}")
    return {key: torch.as_tensor(value, device=device).detach().float() for key, value in out.items()}


def _channels_last(batch: Any) -> Any:
    """4-D floating inputs of a batch in channels-last layout (the first element of a tuple batch)."""
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.ndim == 4 else batch
    if isinstance(batch, tuple) and batch and isinstance(batch[0], torch.Tensor) and batch[0].ndim == 4:
        return (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
    return batch


def _sums_finite(sums: dict[str, torch.Tensor]) -> bool:
    return not sums or bool(torch.isfinite(torch.stack([v.float() for v in sums.values()])).all())


def _finite(logs: dict[str, Any]) -> bool:
    return all(math.isfinite(v) for k, v in logs.items() if k.startswith("train/") and isinstance(v, float))


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
