"""Learning-rate range test (Leslie Smith, WACV 2017): train briefly while the LR grows, suggest one.

The learning rate grows exponentially from ``min_lr`` to ``max_lr`` over ``num_steps`` batches of
the training data, trained by the ordinary ``Trainer`` loop with the ``LRFinder`` callback. The
loss first barely moves (LR too small), then falls quickly, then blows up (LR too large). The
suggestion is the LR where the smoothed loss falls fastest against log(LR), looked for only before
the loss reaches its minimum, so it never lies in the diverging part.
The model, the optimiser (when one is given) and the random number generators are restored
afterwards: the test changes nothing that a following ``fit`` would see.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError, DataError
from glassnet.train.callbacks import Callback
from glassnet.train.steps import Step

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


@dataclass
class LRFinderResult:
    """Outcome of ``find_lr``.

    Attributes:
        lrs: the learning rate of each step taken.
        losses: the training loss of each step (raw, one batch each).
        smoothed: the losses smoothed by a bias-corrected exponential moving average.
        suggestion: the suggested peak learning rate, or None when the curve shows no descent.
        stopped: why the test ended: ``completed``, ``diverged`` (smoothed loss above
            ``diverge_factor`` times its minimum) or ``non-finite loss``.
        min_loss_lr: the learning rate at the minimum of the smoothed loss.
        settings: the arguments of the test (for the record).
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    stopped: str = "completed"
    min_loss_lr: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (``results/lr_finder.json``)."""
        return {
            "suggestion": self.suggestion,
            "min_loss_lr": self.min_loss_lr,
            "stopped": self.stopped,
            "steps": len(self.lrs),
            "settings": self.settings,
            "lrs": self.lrs,
            "losses": self.losses,
            "smoothed": self.smoothed,
        }


def find_lr(
    trainer: Trainer,
    model: nn.Module,
    data: DataBundle | Dataset,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.1,
    diverge_factor: float = 4.0,
    skip_start: int = 5,
    optimizer: torch.optim.Optimizer | None = None,
) -> LRFinderResult:
    """Run the learning-rate range test on the training data and suggest a peak learning rate.

    The test is the trainer's own loop (``trainer.replace`` with an ``LRFinder`` callback, a
    constant schedule, ``max_steps=num_steps`` and no validation), so batches, the training step
    (augmentation, adversarial training ...), precision and device are those of training. The
    optimiser is the trainer's kind (``adamw`` or ``sgd`` with its weight decay and momentum)
    unless ``optimizer`` is given. The data is cycled when it has fewer than ``num_steps`` batches.

    Args:
        trainer: supplies the task, the step, the batch size, the optimiser settings and the device.
        model: the (untrained) model; its weights are restored when the test ends.
        data: a ``DataBundle`` (its ``train`` split is used) or a training ``Dataset``.
        min_lr: the first learning rate.
        max_lr: the last learning rate (the test stops earlier when the loss diverges).
        num_steps: batches to train, one learning rate each, spaced evenly on a log scale.
        smoothing: weight of the newest loss in the moving average (1 keeps the raw curve).
        diverge_factor: stop when the smoothed loss exceeds this multiple of its minimum.
        skip_start: steps at the start ignored by the suggestion (the average is still settling).
        optimizer: an optimiser over ``model``'s parameters to use instead; its state and
            learning rates are restored afterwards.

    Returns:
        An ``LRFinderResult`` with the curve and the suggestion.

    Raises:
        ConfigError: a bound or count is out of range.
        DataError: the training data is empty.
    """
    _check_arguments(min_lr, max_lr, num_steps, smoothing, diverge_factor, skip_start)
    train = data.train if isinstance(data, DataBundle) else data
    if len(train) == 0:
        raise DataError("the training split is empty: the LR range test needs training batches")
    finder = LRFinder(min_lr, max_lr, num_steps, smoothing, diverge_factor)
    step = trainer.step if optimizer is None else _GivenOptimizer(trainer.step, optimizer)
    # the test fits on the bare training split, so a trainer that takes its task from the data's
    # spec is given the bundle's task here (a regression bundle must not be tested with cross-entropy)
    given = {"task": data.spec.task} if isinstance(data, DataBundle) and trainer._arguments["task"] is None else {}
    tester = trainer.replace(
        **given,
        callbacks=[finder],
        step=step,
        lr=min_lr,
        schedule="none",
        max_epochs=num_steps,  # enough passes to cycle a small dataset; max_steps ends the test
        max_steps=num_steps,
        checkpoint_dir=None,
        eval_every=None,
    )
    saved = _Snapshot(model, optimizer)
    try:
        tester.fit(model, train)
    finally:
        saved.restore()
    result = finder.result
    result.settings = {
        "min_lr": min_lr,
        "max_lr": max_lr,
        "num_steps": num_steps,
        "smoothing": smoothing,
        "diverge_factor": diverge_factor,
        "skip_start": skip_start,
        "batch_size": trainer.batch_size,
        "optimizer": type(optimizer).__name__ if optimizer is not None else trainer.optimizer_name,
    }
    result.suggestion, result.min_loss_lr = suggest_lr(result.lrs, result.smoothed, skip_start)
    return result


class LRFinder(Callback):
    """The range test as a callback: each optimiser step gets the next learning rate, each loss is recorded.

    The learning rate of step ``i`` is ``min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))``; the
    run stops (``trainer.should_stop``) when the loss is not finite or its smoothed value exceeds
    ``diverge_factor`` times its minimum. ``result`` holds the curve (``find_lr`` adds the suggestion).
    """

    def __init__(
        self, min_lr: float, max_lr: float, num_steps: int, smoothing: float = 0.1, diverge_factor: float = 4.0
    ) -> None:
        self.min_lr, self.max_lr, self.num_steps = min_lr, max_lr, num_steps
        self.smoothing, self.diverge_factor = smoothing, diverge_factor
        self.result = LRFinderResult()

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.result, self.average, self.best = LRFinderResult(), 0.0, math.inf

    def on_before_optimizer_step(self, trainer: Trainer, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        i = len(self.result.lrs)
        lr = self.min_lr * (self.max_lr / self.min_lr) ** (i / max(self.num_steps - 1, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.result.lrs.append(lr)

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        value = float(trainer.loss)
        result = self.result
        result.losses.append(value)
        if not math.isfinite(value):
            result.smoothed.append(math.inf)
            result.stopped = "non-finite loss"
            trainer.should_stop = True
            return
        self.average = (1 - self.smoothing) * self.average + self.smoothing * value
        smoothed = self.average / (1 - (1 - self.smoothing) ** len(result.losses))  # bias correction
        result.smoothed.append(smoothed)
        self.best = min(self.best, smoothed)
        if smoothed > self.diverge_factor * self.best and len(result.losses) > 1:
            result.stopped = "diverged"
            trainer.should_stop = True


class _GivenOptimizer(Step):
    """The trainer's step, trained with an optimiser the caller gave instead of the configured one."""

    def __init__(self, inner: Step, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(inner.augment)
        self.inner, self.given = inner, optimizer
        self.name = inner.name

    def bind(self, trainer: Trainer) -> None:
        super().bind(trainer)
        self.inner.bind(trainer)

    def configure_optimizers(self, model: nn.Module) -> torch.optim.Optimizer:
        return self.given

    def training_step(self, model: nn.Module, batch: Any, task: Any) -> Any:
        return self.inner.training_step(model, batch, task)


def suggest_lr(lrs: list[float], smoothed: list[float], skip_start: int = 5) -> tuple[float | None, float | None]:
    """``(suggestion, lr_at_min_loss)``: the steepest descent of ``smoothed`` against log(LR) before its minimum.

    The suggestion is None when fewer than three points lie between ``skip_start`` and the minimum
    or when the loss never falls there.
    """
    if not smoothed:
        return None, None
    losses = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.nanargmin(losses))
    min_loss_lr = float(lrs[lowest])
    start = min(skip_start, max(lowest - 2, 0))
    if lowest - start < 2:
        return None, min_loss_lr
    window = losses[start : lowest + 1]
    slopes = np.gradient(window, np.log10(np.asarray(lrs[start : lowest + 1])))
    steepest = int(np.argmin(slopes))
    if slopes[steepest] >= 0:
        return None, min_loss_lr
    return float(lrs[start + steepest]), min_loss_lr


class _Snapshot:
    """Model weights and mode, optimiser state and the RNG states, to put back after the test."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        self.model, self.optimizer = model, optimizer
        self.weights = copy.deepcopy(model.state_dict())
        self.training = model.training
        self.optimizer_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
        self.rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        self.model.load_state_dict(self.weights)
        self.model.train(self.training)
        for p in self.model.parameters():
            p.grad = None
        if self.optimizer is not None and self.optimizer_state is not None:
            self.optimizer.load_state_dict(self.optimizer_state)
        random.setstate(self.rng[0])
        np.random.set_state(self.rng[1])
        torch.set_rng_state(self.rng[2])
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


def _check_arguments(
    min_lr: float, max_lr: float, num_steps: int, smoothing: float, diverge_factor: float, skip_start: int
) -> None:
    if not (math.isfinite(min_lr) and math.isfinite(max_lr) and 0 < min_lr < max_lr):
        raise ConfigError(f"need 0 < min_lr < max_lr, both finite. Received: min_lr={min_lr}, max_lr={max_lr}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 3:
        raise ConfigError(f"num_steps must be an integer >= 3. Received: num_steps={num_steps!r}")
    if not 0 < smoothing <= 1:
        raise ConfigError(f"smoothing must be in (0, 1]. Received: smoothing={smoothing}")
    if not diverge_factor > 1:
        raise ConfigError(f"diverge_factor must be > 1. Received: diverge_factor={diverge_factor}")
    if isinstance(skip_start, bool) or not isinstance(skip_start, int) or skip_start < 0:
        raise ConfigError(f"skip_start must be an integer >= 0. Received: skip_start={skip_start!r}")
