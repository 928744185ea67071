"""Model checks: find the layers a method needs and refuse, with the reason, a method that cannot be trusted.

Captum runs many methods on models they do not fit and returns numbers anyway (DeepLift on an
in-place ReLU, Grad-CAM on a model without a convolution). These checks turn such cases into a
``ConfigError`` that says why the method does not fit and which methods do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from glassnet.errors import ConfigError

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d)
RECURRENT = (nn.RNNBase,)


def is_token_input(inputs: torch.Tensor) -> bool:
    """Whether ``inputs`` are token ids (integers) rather than values one can take gradients of."""
    return not torch.is_floating_point(inputs)


def find_embedding(model: nn.Module, vocab_size: int | None = None) -> nn.Embedding | None:
    """The token embedding of a text model: the ``nn.Embedding`` with ``vocab_size`` rows, else the first one."""
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    if vocab_size is not None:
        sized = [m for m in embeddings if m.num_embeddings == vocab_size]
        if sized:
            return sized[0]
    return embeddings[0] if embeddings else None


def find_last_convolution(model: nn.Module) -> tuple[str, nn.Module] | None:
    """``(name, module)`` of the last ``Conv1d``/``Conv2d`` registered in ``model``, or None."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, CONVOLUTIONS):
            found = (name, module)
    return found


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def find_grad_cam_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """Grad-CAM's default layer: the activation that directly follows the last convolution (after its
    normalisation), as in the Grad-CAM paper's rectified feature maps; the convolution itself otherwise."""
    found = find_last_convolution(model)
    if found is None:
        return None
    name, conv = found
    parent_name, _, _ = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name]
    children = list(parent.named_children())
    position = next(i for i, (_, child) in enumerate(children) if child is conv)
    for child_name, child in children[position + 1 :]:
        if isinstance(child, NORMS):
            continue
        if isinstance(child, ACTIVATIONS):
            return (f"{parent_name}.{child_name}" if parent_name else child_name), child
        break
    return found


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``).

    Raises:
        ConfigError: no sub-module has that name; the message lists the convolutions there are.
    """
    modules = dict(model.named_modules())
    if name not in modules:
        convs = [n for n, m in modules.items() if isinstance(m, CONVOLUTIONS)]
        raise ConfigError(
            f"the model has no layer {name!r}. Convolution layers: {', '.join(convs) if convs else '(none)'}"
        )
    return modules[name]


def inplace_modules(model: nn.Module) -> list[str]:
    """Names of the modules that overwrite their input (``inplace=True``)."""
    return [name for name, m in model.named_modules() if getattr(m, "inplace", False) is True]


def reused_modules(model: nn.Module, inputs: torch.Tensor) -> list[str]:
    """Names of the leaf modules that one forward pass calls more than once (e.g. one ReLU shared by two layers)."""
    calls: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(_counter(calls, name)))
    try:
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for handle in handles:
            handle.remove()
    return sorted(name for name, count in calls.items() if count > 1)


def _counter(calls: dict[str, int], name: str):
    def hook(module: nn.Module, args: object, output: object) -> None:
        calls[name] = calls.get(name, 0) + 1

    return hook


def recurrent_modules(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, RECURRENT)]


def refuse(method: str, why: str, fitting: Sequence[str]) -> ConfigError:
    """The error for a method that does not fit a model: what is wrong and what to use instead."""
    return ConfigError(f"{method} cannot explain this model: {why}. Methods that fit it: {', '.join(fitting)}")
