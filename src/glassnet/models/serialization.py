"""Save and load models as ``model.json`` (architecture + data spec) and ``model.safetensors``.

Nothing is unpickled: the architecture is rebuilt from the registry and the weights are read
with safetensors, so a run directory that a user was sent cannot execute code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import CheckpointError, GlassnetError
from glassnet.models.registry import create_model
from glassnet.runs import RunDir, atomic_write, to_jsonable, write_json

FORMAT = "glassnet.model/1"


def architecture(model: nn.Module) -> dict[str, Any]:
    """The ``{"name", "hparams"}`` record of a model built by ``create_model``."""
    arch = getattr(model, "glassnet_arch", None)
    if arch is None:
        raise CheckpointError(
            "this model was not built by glassnet.create_model, so it cannot be saved as a run "
            "(model.json needs its registered name and hyper-parameters)"
        )
    return arch


def save_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the model's state dict to a safetensors file atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a safetensors file into ``model`` (strict: every tensor must match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read weights '{path}': {exc} (is the file truncated or corrupt?)") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0:3]
        raise CheckpointError(
            f"weights '{path}' do not match the architecture in model.json: {' '.join(first)}"
        ) from exc


def save_model(model: nn.Module, spec: DataSpec, run_dir: str | os.PathLike[str]) -> None:
    """Write ``model.json`` and ``model.safetensors`` into ``run_dir``."""
    from glassnet.version import __version__

    run = RunDir(run_dir)
    record = {"format": FORMAT, **to_jsonable(architecture(model)), "spec": spec.to_dict(), "glassnet": __version__}
    save_weights(model, run.weights)
    write_json(run.model_json, record)


def load_model(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, DataSpec]:
    """Rebuild a model from a run directory; returns ``(model in eval mode, spec)``.

    Raises:
        RunError: the directory or one of its files is missing.
        CheckpointError: model.json or the weights are corrupt or do not match.
    """
    run = RunDir(run_dir)
    run.require_model()
    record = read_model_json(run.model_json)
    try:
        spec = DataSpec.from_dict(record["spec"])
        # the saved weights replace any pretrained ones, so rebuilding must not need their source file
        hparams = {**record["hparams"], **({"pretrained": "none"} if "pretrained" in record["hparams"] else {})}
        model = create_model(record["name"], spec, **hparams)
    except GlassnetError as exc:
        raise CheckpointError(f"{run.model_json} describes a model that cannot be built: {exc}") from exc
    load_weights(model, run.weights)
    return model.to(device).eval(), spec


def read_model_json(path: Path) -> dict[str, Any]:
    """Read and check ``model.json``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f'{path} is not a glassnet model file (expected "format": "{FORMAT}")')
    for key, kind in (("name", str), ("hparams", dict), ("spec", dict)):
        if not isinstance(record.get(key), kind):
            raise CheckpointError(f"{path} lacks a valid {key!r} entry")
    return record
