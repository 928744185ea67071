"""Run-directory layout and atomic file writes.

A run is one directory (see DESIGN.md): every stage reads it and writes its own files into it.
Files are written to a temporary name in the same directory and renamed, so an interrupted
write never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassnet.errors import RunError

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "report.html"
RESULTS_DIR = "results"
FIGURES_DIR = "figures"
CHECKPOINTS_DIR = "checkpoints"


class RunDir:
    """Paths of one run directory; creating the object touches nothing on disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def model_json(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def report(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def results_dir(self) -> Path:
        return self.path / RESULTS_DIR

    @property
    def figures_dir(self) -> Path:
        return self.path / FIGURES_DIR

    def result_file(self, stage: str) -> Path:
        """Path of ``results/<stage>.json``."""
        return self.results_dir / f"{stage}.json"

    def figure(self, name: str) -> Path:
        """Path of ``figures/<name>.png``."""
        return self.figures_dir / f"{name}.png"

    def has_model(self) -> bool:
        return self.model_json.is_file() and self.weights.is_file()

    def require_model(self) -> None:
        """Raise a ``RunError`` that says what is missing unless the run holds a saved model."""
        if not self.path.exists():
            raise RunError(
                f"run directory '{self.path}' does not exist; train one first, e.g. "
                f"`glassnet train --data digits --model cnn --out {self.path}` (a model) or "
                f"`glassnet train --env CartPole-v1 --algo ppo --steps 100000 --out {self.path}` (an agent)"
            )
        if not self.path.is_dir():
            raise RunError(f"'{self.path}' is a file, not a run directory")
        missing = [p.name for p in (self.model_json, self.weights) if not p.is_file()]
        if missing:
            raise RunError(
                f"'{self.path}' is not a complete run: {', '.join(missing)} missing "
                "(was training interrupted before the model was saved?)"
            )

    def read_result(self, stage: str) -> dict[str, Any] | None:
        """Return ``results/<stage>.json`` as a dict, or None when the stage has not run."""
        path = self.result_file(stage)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {path}: {exc}; re-run the stage to rewrite it") from exc

    def write_result(self, stage: str, data: dict[str, Any]) -> Path:
        """Write ``results/<stage>.json`` atomically and return its path."""
        path = self.result_file(stage)
        write_json(path, data)
        return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    The temporary file lives in the target's directory so the rename is atomic; on any error it
    is removed and the previous file at ``path`` (if any) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; keep the usual permissions
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON; NaN and infinities become null (strict JSON)."""
    write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def to_jsonable(value: Any) -> Any:
    """Convert tensors, NumPy values, tuples and paths into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return str(value)
    return value
