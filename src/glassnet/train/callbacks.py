"""Callbacks: behaviour added to the training loop without flags on the loop itself.

A callback overrides any of the hooks below; the trainer calls them in this order::

    on_fit_start
    per epoch:  on_epoch_start
                per optimiser step:  on_before_optimizer_step -> (step) -> on_batch_end
                on_validation_start -> (validation) -> on_epoch_end -> on_validation_end
    on_fit_end

Between ``on_validation_start`` and ``on_validation_end`` the model holds the weights that are
validated and selected (the averaged weights when ``EMA`` is on), so ``BestModel`` and
``ModelCheckpoint`` keep what was validated. ``logs`` is the epoch record that ends up in
``metrics.jsonl`` (``epoch``, ``step``, ``lr``, ``train/loss``, ``val/<metric>`` ...).

Callbacks with state that matters for an exact resume (best score so far, patience, averaged
weights) return it from ``state_dict`` as tensors and plain values; the trainer stores it in its
checkpoint and hands it back to ``load_state_dict`` after ``on_fit_start`` when resuming.
Callbacks that write files do so on rank 0 only (``trainer.is_global_zero``).
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

from glassnet.errors import ConfigError
from glassnet.progress import ASCII, is_terminal

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


class Callback:
    """Base class; every hook does nothing by default."""

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_epoch_start(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_before_optimizer_step(self, trainer: Trainer, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Gradients are complete (accumulated, all-reduced and unscaled); the step comes next."""

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        """After each optimiser step; ``batch_size`` counts the examples of the step's micro-batches.

        ``trainer.loss`` holds the last micro-batch's loss as a detached tensor on the device:
        read it without ``.item()`` unless you must (each ``.item()`` waits for the device).
        """

    def on_validation_start(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None: ...

    def on_validation_end(self, trainer: Trainer, model: nn.Module) -> None: ...

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume exactly (tensors and plain values only); empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class _Monitor:
    """Tracks the best value of one logged metric (``val/loss``: lower is better, etc.)."""

    def __init__(self, monitor: str, mode: str | None, min_delta: float = 0.0) -> None:
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None

    def value(self, trainer: Trainer, logs: dict[str, Any]) -> float:
        if self.monitor not in logs:
            raise ConfigError(f"cannot monitor {self.monitor!r}: it is not logged. Logged: {', '.join(sorted(logs))}")
        if self.mode is None:
            self.mode = trainer.task.mode(self.monitor)
        return float(logs[self.monitor])

    def better(self, value: float, than: float | None) -> bool:
        if math.isnan(value):
            return False
        return (
            than is None
            or (self.mode == "min" and value < than - self.min_delta)
            or (self.mode == "max" and value > than + self.min_delta)
        )

    def improved(self, trainer: Trainer, logs: dict[str, Any]) -> bool:
        value = self.value(trainer, logs)
        if self.better(value, self.best):
            self.best = value
            return True
        return False


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

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitor.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]


class BestModel(Callback):
    """Keep the weights of the best epoch on ``monitor`` (in memory) and restore them when fitting ends.

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

    def state_dict(self) -> dict[str, Any]:
        weights = dict(self._state) if self._state is not None else None
        return {"best": self._monitor.best, "epoch": self.best_epoch, "score": self.best_score, "weights": weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitor.best, self.best_epoch, self.best_score = state["best"], state["epoch"], state["score"]
        self._state = state["weights"]


class ModelCheckpoint(Callback):
    """Write model weights (safetensors) into a checkpoint directory, atomically, on rank 0.

    Files: ``best.safetensors`` (the best epoch on ``monitor`` so far), the ``save_top_k`` best
    epochs as ``epoch=E-<metric>=V.safetensors`` (worse ones are deleted), and
    ``last.safetensors`` (the latest epoch) when ``save_last``. These are weights for deployment
    and comparison; the resumable training state is the trainer's ``last.pt`` beside them.

    Args:
        dirpath: directory of the files (``RUN/checkpoints`` in a run).
        monitor: a logged validation metric.
        mode: ``min`` or ``max``; by default taken from the task.
        save_top_k: how many of the best epochs to keep (0: only ``best.safetensors``).
        save_last: also write ``last.safetensors`` every epoch.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        monitor: str = "val/loss",
        mode: str | None = None,
        save_top_k: int = 1,
        save_last: bool = False,
    ) -> None:
        if save_top_k < 0:
            raise ConfigError(f"save_top_k must be >= 0. Received: save_top_k={save_top_k}")
        self.dirpath = Path(dirpath)
        self._monitor = _Monitor(monitor, mode)
        self.monitor, self.save_top_k, self.save_last = monitor, save_top_k, save_last
        self.top_k: list[tuple[float, str]] = []  # (score, file name), best first

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.safetensors"

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self._monitor.best, self.top_k = None, []

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        value = self._monitor.value(trainer, logs)
        if not trainer.is_global_zero:
            self._monitor.improved(trainer, logs)
            return
        weights = None
        if self._monitor.improved(trainer, logs):
            weights = _weights_bytes(model)
            _write(self.best_path, weights)
        if self.save_top_k and not math.isnan(value):
            worst = self.top_k[-1][0] if len(self.top_k) >= self.save_top_k else None
            if worst is None or self._monitor.better(value, worst):
                name = f"epoch={logs['epoch']}-{self.monitor.replace('/', '_')}={value:.4f}.safetensors"
                _write(self.dirpath / name, weights if weights is not None else _weights_bytes(model))
                self.top_k.append((value, name))
                self.top_k.sort(key=lambda item: item[0], reverse=self._monitor.mode == "max")
                for _, stale in self.top_k[self.save_top_k :]:
                    (self.dirpath / stale).unlink(missing_ok=True)
                del self.top_k[self.save_top_k :]
        if self.save_last:
            _write(self.dirpath / "last.safetensors", _weights_bytes(model))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best, "top_k": [list(item) for item in self.top_k]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitor.best = state["best"]
        self.top_k = [(float(score), str(name)) for score, name in state["top_k"]]


def _weights_bytes(model: nn.Module) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def _write(path: Path, data: bytes) -> None:
    from glassnet.runs import write_bytes

    write_bytes(path, data)


class GradientClipping(Callback):
    """Clip gradients before every optimiser step, by their global norm or elementwise.

    Args:
        max_norm: rescale all gradients together so that their L2 norm is at most this.
        max_value: clamp each gradient element to ``[-max_value, max_value]``.
    """

    def __init__(self, max_norm: float | None = None, max_value: float | None = None) -> None:
        if (max_norm is None) == (max_value is None):
            raise ConfigError("GradientClipping takes exactly one of max_norm or max_value")
        limit = max_norm if max_norm is not None else max_value
        if not (math.isfinite(limit) and limit > 0):
            raise ConfigError(f"gradient clipping limit must be a finite number > 0. Received: {limit}")
        self.max_norm, self.max_value = max_norm, max_value
        self.last_norm: torch.Tensor | None = None

    def on_before_optimizer_step(self, trainer: Trainer, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.max_norm is not None:
            # the norm stays a device tensor: no synchronisation in the loop
            self.last_norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm, foreach=True)
        else:
            torch.nn.utils.clip_grad_value_(params, self.max_value, foreach=True)


class EMA(Callback):
    """An exponential moving average of the weights, used for validation and as the final weights.

    After every optimiser step ``ema = decay * ema + (1 - decay) * weights`` (floating-point
    parameters and buffers; the decay ramps up as ``(1 + n) / (10 + n)`` over the first steps so
    that early averages are not dominated by the initialisation). Validation, ``BestModel`` and
    ``ModelCheckpoint`` see the averaged weights; at the end of ``fit`` the model keeps them.
    List ``EMA`` before ``BestModel`` so that the best epoch's (averaged) weights win.

    Args:
        decay: weight of the past, in (0, 1); 0.999 is typical for thousands of steps, 0.99 for hundreds.
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0 < decay < 1:
            raise ConfigError(f"EMA decay must be in (0, 1), e.g. 0.999. Received: decay={decay}")
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] = {}
        self._backup: list[torch.Tensor] | None = None

    def _tracked(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.updates = 0
        tracked = self._tracked(model)
        self.shadow = {k: v.detach().clone() for k, v in tracked.items()}
        # views of the live tensors, made once: rebuilding the state dict every step costs Python time
        self._live = [v.detach() for v in tracked.values()]
        self._averaged = list(self.shadow.values())

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._averaged, self._live, 1 - decay)

    def _swap(self, model: nn.Module) -> None:
        current = list(self._tracked(model).values())
        with torch.no_grad():
            for live, averaged in zip(current, self.shadow.values()):
                scratch = live.clone()
                live.copy_(averaged)
                averaged.copy_(scratch)

    def on_validation_start(self, trainer: Trainer, model: nn.Module) -> None:
        self._swap(model)  # the model now holds the average; the shadow holds the live weights

    def on_validation_end(self, trainer: Trainer, model: nn.Module) -> None:
        self._swap(model)

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        with torch.no_grad():
            for live, averaged in zip(self._tracked(model).values(), self.shadow.values()):
                live.copy_(averaged)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"]
        for name, tensor in self.shadow.items():
            tensor.copy_(state["shadow"][name])


class TerminateOnNaN(Callback):
    """Stop training at the first non-finite loss and say where it happened.

    The check stays on the device (no synchronisation per step): the first bad step is recorded
    in a device tensor and read every ``check_every`` steps. The trainer never writes a checkpoint
    after a non-finite loss, so ``checkpoints/last.pt`` keeps the last good state.

    Attributes:
        diverged: ``{"step": S, "epoch": E}`` of the first non-finite loss (optimiser step S,
            1-based, in epoch E), or None. The trainer copies it into ``FitResult.diverged``.
    """

    def __init__(self, check_every: int = 10) -> None:
        if check_every < 1:
            raise ConfigError(f"check_every must be >= 1. Received: check_every={check_every}")
        self.check_every = check_every
        self.diverged: dict[str, int] | None = None
        self._first: torch.Tensor | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.diverged, self._first = None, None

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        loss = trainer.loss
        if loss is None:  # a manual-optimisation step that logs no "loss"
            return
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.long, device=loss.device)
        # encode (epoch, step) in one integer so that one read says both
        code = trainer.epoch * 2**32 + trainer.global_step
        bad = ~torch.isfinite(loss) & (self._first < 0)
        self._first = torch.where(bad, torch.full_like(self._first, code), self._first)
        if trainer.global_step % self.check_every == 0:
            self.check(trainer)

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        self.check(trainer)

    def check(self, trainer: Trainer) -> None:
        """Read the device flag; on divergence stop the trainer and record where."""
        if self._first is None or self.diverged is not None:
            return
        code = int(self._first.item())
        if code >= 0:
            self.diverged = {"step": code % 2**32, "epoch": code // 2**32}
            trainer.diverged = self.diverged
            trainer.should_stop = True


class TimeLimit(Callback):
    """Stop training once ``seconds`` of wall time have passed since ``fit`` started (or resumed).

    The limit is checked after every optimiser step and at the end of every epoch (after its
    validation, so a limit passed while validating starts no new epoch). The trainer finishes the
    optimiser step in progress, writes a resumable checkpoint when it has
    a checkpoint directory, validates the partial epoch and returns; resuming from that checkpoint
    continues the run (unlike a stop by ``EarlyStopping``, which a resume keeps).
    """

    def __init__(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"time limit must be a finite number of seconds > 0. Received: {seconds}")
        self.seconds = seconds
        self.stopped = False

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.start, self.stopped = time.perf_counter(), False

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        self._check(trainer)

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        self._check(trainer)  # a limit passed while validating starts no new epoch

    def _check(self, trainer: Trainer) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            self.stopped = True
            trainer.should_stop = trainer.paused = True  # paused: a resume continues the run


class MetricsLogger(Callback):
    """Append one JSON object per epoch to a ``metrics.jsonl`` file (flushed every epoch, rank 0 only)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lines = 0

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.lines = 0
        if trainer.is_global_zero and not trainer.resuming:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        self.lines += 1
        if not trainer.is_global_zero:
            return
        record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in logs.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def state_dict(self) -> dict[str, Any]:
        return {"lines": self.lines}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # drop the lines of epochs logged after the checkpoint: they are trained again
        self.lines = state["lines"]
        if self.path.is_file():
            kept = self.path.read_text().splitlines(keepends=True)[: self.lines]
            from glassnet.runs import write_text

            write_text(self.path, "".join(kept))


class ProgressBar(Callback):
    """A tqdm progress bar per epoch with elapsed time, time left, loss and throughput (examples/s); one line
    per epoch when the stream is not a terminal (logs, CI).

    Args:
        stream: where to write (default stderr).
        width: characters of the bar itself in a terminal.
        refresh_s: seconds between redraws in a terminal (the loss is read from the device only then).
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 24, refresh_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.width, self.refresh_s = width, refresh_s
        self.interactive = is_terminal(self.stream)
        self.bar: Any = None

    def on_epoch_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.seen, self.start, self.last_draw = 0, time.perf_counter(), 0.0
        self._close()

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        self.seen += batch_size
        if not (self.interactive and trainer.is_global_zero):
            return
        now = time.perf_counter()
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=max(trainer.period_batches, 1),
                desc=trainer.period_label(),
                file=self.stream,
                leave=False,
                ascii=ASCII,
                mininterval=self.refresh_s,
                unit="batches",
                bar_format=f"{{desc}} [{{bar:{self.width}}}] {{percentage:3.0f}}% {{n_fmt}}/{{total_fmt}} "
                "[{elapsed}<{remaining}{postfix}]",
            )
        if now - self.last_draw >= self.refresh_s:  # the loss is read (a device sync) only when drawn
            self.last_draw = now
            rate = self.seen / max(now - self.start, 1e-9) * trainer.world_size
            loss = f"loss {float(trainer.loss):.4f}  " if trainer.loss is not None else ""
            self.bar.set_postfix_str(f"{loss}{rate:,.0f} ex/s", refresh=False)
        self.bar.update(trainer.period_position - self.bar.n)

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        if not trainer.is_global_zero:
            return
        self._close()
        elapsed = time.perf_counter() - self.start
        rate = self.seen / max(elapsed, 1e-9) * trainer.world_size
        shown = "  ".join(
            f"{k} {v:.4f}" for k, v in logs.items() if (k.startswith(("train/", "val/"))) and isinstance(v, float)
        )
        # in a terminal, overwrite what is left of the bar
        prefix, clear = ("\r", "\x1b[K") if self.interactive else ("", "")
        self.stream.write(f"{prefix}{trainer.period_label()}  {shown}  {rate:,.0f} ex/s  {_clock(elapsed)}{clear}\n")
        self.stream.flush()

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        self._close()  # a stopped epoch's bar

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    """``0:42`` or ``1:02:03``: how long an epoch took."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
