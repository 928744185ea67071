"""Layer table of a model: each leaf module's type, output shape and parameter count."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summarize(model: nn.Module, spec: DataSpec) -> dict[str, Any]:
    """Run one dummy example through ``model`` and record each leaf layer.

    Returns:
        ``{"layers": [{"name", "type", "output_shape", "parameters"}], "parameters",
        "trainable_parameters"}``.
    """
    rows: list[dict[str, Any]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def record(mod: nn.Module, _inputs: Any, output: Any, name: str = name) -> None:
                shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                rows.append({"name": name, "type": type(mod).__name__, "output_shape": shape, "parameters": params})

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    device = next(iter(model.parameters()), torch.zeros(())).device
    try:
        model.eval()
        with torch.no_grad():
            dtype = torch.int64 if spec.modality == "text" else torch.float32  # text models take token ids
            model(torch.zeros((1, *spec.input_shape), dtype=dtype, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {
        "layers": rows,
        "parameters": count_parameters(model),
        "trainable_parameters": count_parameters(model, trainable_only=True),
    }
