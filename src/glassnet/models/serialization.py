"""Save and load models as ``model.json`` (architecture + data spec) and ``model.safetensors``.

Nothing is unpickled: the architecture is rebuilt from the registry and the weights are read
with safetensors, so a run directory that a user was sent cannot execute code.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import CheckpointError, GlassnetError
from glassnet.models.registry import check_model, create_model
from glassnet.runs import RunDir, atomic_write, to_jsonable, write_json

FORMAT = "glassnet.model/1"
MAX_JSON_BYTES = 2**30  # model.json holds names and a vocabulary at most; a larger file is not one glassnet wrote
PLAIN = (str, int, float, bool, type(None))  # what a hyper-parameter holds, alone or in a flat list


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

    model.json is checked before anything is built, and the model is counted before it is
    allocated (``create_model``), so a file that asks for a model too large is refused at once.

    Raises:
        RunError: the directory or one of its files is missing.
        CheckpointError: model.json or the weights are corrupt or do not match, or model.json
            describes a model that cannot be built or is above the size limit.
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
    """Read and check ``model.json``: its format, a valid data spec (``DataSpec.from_dict``) and a
    registered model that fits it, with hyper-parameters of the right names and types and a size
    within the limit (``check_model``; nothing is allocated).

    Raises:
        CheckpointError: the file is unreadable, not JSON, or any of these checks fails; the
            message names the file.
    """
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes, too large to be a glassnet model file")
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[..."
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f'{path} is not a glassnet model file (expected "format": "{FORMAT}")')
    for key, kind in (("name", str), ("hparams", dict), ("spec", dict)):
        if not isinstance(record.get(key), kind):
            raise CheckpointError(f"{path} lacks a valid {key!r} entry")
    for key, value in record["hparams"].items():
        if not isinstance(value, PLAIN) and not (isinstance(value, list) and all(isinstance(v, PLAIN) for v in value)):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise CheckpointError(
                f"{path}: hyper-parameter {key!r} must be a number, a string, true/false, null or a flat list of "
                f"those. Received: {shown}"
            )
    try:
        check_model(record["name"], DataSpec.from_dict(record["spec"]), record["hparams"])
    except GlassnetError as exc:
        raise CheckpointError(f"{path} describes a model that cannot be built: {exc}") from exc
    return record


def load_tensor_file(path: str | os.PathLike[str], error: type[GlassnetError], cannot_read: str, hint: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, refusals and failures as one-line ``error``.

    Only tensors and plain values are loaded. torch's refusal of a file that holds other Python
    objects advises loading it with ``weights_only=False``, which would run any code the file
    holds: neither that text nor torch's warnings (printed while it reads a foreign pickle) reach
    the user.

    Args:
        path: a file written by ``torch.save``.
        error: the ``GlassnetError`` subclass to raise.
        cannot_read: the start of the message, naming the file (``"checkpoint 'x' cannot be read"``).
        hint: the end of the message: whose file it should be (it may also be corrupt) and what to do.

    Raises:
        error: the file holds Python objects, is truncated or damaged, or cannot be opened.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # also what torch raises for bytes that are no pickle at all
        raise error(
            f"{cannot_read}: it holds Python objects that glassnet will not unpickle (only tensors and plain values "
            f"are loaded); {hint}"
        ) from exc
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        detail = f"{type(exc).__name__}: {reason}" if reason and "weights_only" not in reason else type(exc).__name__
        raise error(f"{cannot_read} ({detail}); {hint}") from exc
