"""Callbacks: behaviour added to the training loop without flags on the loop itself.

A callback overrides any of the hooks below. ``logs`` is the epoch record that ends up in
``metrics.jsonl`` (``epoch``, ``step``, ``lr``, ``train/loss``, ``val/<metric>`` ...).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


class Callback:
    """Base class; every hook does nothing by default."""

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_epoch_start(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None: ...

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None: ...


class _Monitor:
    """Tracks the best value of one logged metric (``val/loss``: lower is better, etc.)."""

    def __init__(self, monitor: str, mode: str | None, min_delta: float = 0.0) -> None:
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None

    def improved(self, trainer: Trainer, logs: dict[str, Any]) -> bool:
        if self.monitor not in logs:
            from glassnet.errors import ConfigError

            raise ConfigError(f"cannot monitor {self.monitor!r}: it is not logged. Logged: {', '.join(sorted(logs))}")
        if self.mode is None:
            self.mode = trainer.task.mode(self.monitor)
        value = float(logs[self.monitor])
        if math.isnan(value):
            return False
        better = (
            self.best is None
            or (self.mode == "min" and value < self.best - self.min_delta)
            or (self.mode == "max" and value > self.best + self.min_delta)
        )
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a logged validation metric, e.g. ``val/loss`` or ``val/accuracy``.
        patience: epochs without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
        mode: ``min`` or ``max``; by default taken from the task (loss: min, accuracy: max).
    """

    def __init__(self, monitor: str = "val/loss", patience: int = 5, min_delta: float = 0.0, mode: str | None = None):
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self._monitor.best, self.wait, self.stopped_epoch = None, 0, None

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        if self._monitor.improved(trainer, logs):
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = logs["epoch"]
            trainer.should_stop = True


class BestModel(Callback):
    """Keep the weights of the best epoch on ``monitor`` and restore them when fitting ends.

    Attributes:
        best_epoch: the epoch (1-based) whose weights the model holds after ``fit``.
        best_score: its value of ``monitor``.
    """

    def __init__(self, monitor: str = "val/loss", mode: str | None = None) -> None:
        self._monitor = _Monitor(monitor, mode)
        self.monitor = monitor
        self.best_epoch: int | None = None
        self.best_score: float | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self._monitor.best, self.best_epoch, self.best_score, self._state = None, None, None, None

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        if self._monitor.improved(trainer, logs):
            self.best_epoch, self.best_score = logs["epoch"], self._monitor.best
            self._state = copy.deepcopy(model.state_dict())

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)


class MetricsLogger(Callback):
    """Append one JSON object per epoch to a ``metrics.jsonl`` file (flushed every epoch)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in logs.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class ProgressBar(Callback):
    """A terminal progress bar with loss and throughput; one line per epoch when not a terminal."""

    def __init__(self, stream: IO[str] | None = None, width: int = 24, refresh_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.width, self.refresh_s = width, refresh_s
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.seen, self.start, self.last_draw = 0, time.perf_counter(), 0.0

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        self.seen += batch_size
        now = time.perf_counter()
        if self.interactive and now - self.last_draw >= self.refresh_s:
            self.last_draw = now
            total = trainer.train_size or 1
            done = min(self.seen / total, 1.0)
            bar = "#" * int(done * self.width)
            rate = self.seen / max(now - self.start, 1e-9)
            self.stream.write(
                f"\repoch {trainer.epoch}/{trainer.max_epochs} [{bar:<{self.width}}] {done:4.0%} {rate:,.0f} ex/s"
            )
            self.stream.flush()

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        rate = self.seen / max(time.perf_counter() - self.start, 1e-9)
        shown = "  ".join(
            f"{k} {v:.4f}" for k, v in logs.items() if (k.startswith(("train/", "val/"))) and isinstance(v, float)
        )
        # in a terminal, overwrite the bar and clear what is left of it
        prefix, clear = ("\r", "\x1b[K") if self.interactive else ("", "")
        self.stream.write(f"{prefix}epoch {logs['epoch']}/{trainer.max_epochs}  {shown}  {rate:,.0f} ex/s{clear}\n")
        self.stream.flush()
