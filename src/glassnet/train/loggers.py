"""Metric loggers as callbacks: one CSV row, or one TensorBoard point per metric, per epoch.

Both write on rank 0 only under ``torchrun`` and follow an exact resume: the epochs logged after
the checkpoint that training resumes from are dropped, as they are trained again.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from glassnet.errors import ConfigError
from glassnet.runs import write_text
from glassnet.train.callbacks import Callback

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


def _writes(trainer: Trainer) -> bool:
    return getattr(trainer, "is_global_zero", True)


class CSVLogger(Callback):
    """Write the epoch records (``epoch``, ``step``, ``lr``, ``train/loss``, ``val/...``) to a CSV file.

    One row per epoch, appended and flushed at the end of each epoch. The columns are the union of
    the keys logged so far in order of appearance; when an epoch brings a new key, the file is
    rewritten atomically with the wider header (earlier rows leave the new column empty).

    Args:
        path: the CSV file (parent directories are created).

    Example:
        >>> trainer = Trainer(callbacks=[CSVLogger("runs/x/metrics.csv")])  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.columns, self.rows = [], []
        if _writes(trainer) and not getattr(trainer, "resuming", False):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, "")

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        row = {k: _cell(v) for k, v in logs.items()}
        self.rows.append(row)
        if not _writes(trainer):
            return
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file() or self.path.stat().st_size == 0:
            self.columns += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": len(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kept = int(state.get("rows", 0))
        if self.path.is_file():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(r) for r in reader][:kept]
        self.rows = self.rows[:kept]
        self._rewrite()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


def _cell(value: Any) -> Any:
    """Floats keep full precision; NaN and infinities are written as ``nan``/``inf``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class TensorBoardLogger(Callback):
    """Log every numeric value of the epoch record to TensorBoard (``torch.utils.tensorboard``).

    Each key (``train/loss``, ``val/accuracy``, ``lr`` ...) becomes a scalar series whose x axis is
    the optimiser step; view it with ``tensorboard --logdir LOG_DIR``.

    Args:
        log_dir: directory of the event files (e.g. ``RUN/tensorboard``).

    Raises:
        ConfigError: tensorboard is not installed (``pip install glassnet[tensorboard]``).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self._summary_writer = _summary_writer_class()
        self.writer: Any = None
        self.last_step: int | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.close()
        self.last_step = None

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        step = int(logs.get("step", logs.get("epoch", 0)))
        if _writes(trainer):
            if self.writer is None:
                # after a resume, events past the checkpoint's step are replaced, not duplicated
                purge = self.last_step + 1 if self.last_step is not None else None
                self.writer = self._summary_writer(log_dir=str(self.log_dir), purge_step=purge)
            for key, value in logs.items():
                if key not in ("step",) and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, float(value), global_step=step)
            self.writer.flush()
        self.last_step = step

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (``fit`` does this when it ends)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": -1 if self.last_step is None else self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        step = int(state.get("last_step", -1))
        self.last_step = None if step < 0 else step


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            "the TensorBoard logger needs the tensorboard package: pip install glassnet[tensorboard] "
            "(or pip install tensorboard), or use the CSV logger"
        ) from exc
    return SummaryWriter
