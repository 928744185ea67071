"""Pruning: unstructured magnitude pruning (torch.nn.utils.prune) and structured channel pruning
through Torch-Pruning's dependency graph, each optionally interleaved with fine-tuning."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from glassnet.compress import recurrent
from glassnet.compress.checks import check_amount, check_steps
from glassnet.compress.optional import require
from glassnet.errors import ConfigError

METHODS = ("structured", "global", "layer")

FineTune = Callable[[nn.Module], None]


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, name)`` of every weight matrix that magnitude pruning may zero: linear,
    convolution and recurrent weights (not embeddings, norms or the input standardisation)."""
    found: list[tuple[nn.Module, str]] = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
            found.append((module, "weight"))
        elif isinstance(module, nn.RNNBase):
            found += [(module, name) for name, _ in module.named_parameters(recurse=False) if name.startswith("weight")]
    return found


def magnitude_prune(
    model: nn.Module,
    amount: float,
    scope: str = "global",
    steps: int = 1,
    fine_tune: FineTune | None = None,
) -> nn.Module:
    """Zero the smallest-magnitude weights of a copy of ``model`` and make the zeros permanent.

    Args:
        model: the trained model (left untouched).
        amount: fraction of the prunable weights to zero in the end (0 < amount < 1).
        scope: ``global`` ranks all prunable weights together (layers that matter less lose more);
            ``layer`` zeros the same fraction in every layer.
        steps: prune in this many rounds of growing sparsity, calling ``fine_tune`` after each.
        fine_tune: ``fine_tune(model)`` trains the masked model in place (the masks hold the pruned
            weights at zero while it trains); None prunes without training.

    Returns:
        The pruned copy; its zeroed weights are plain zeros (no masks or hooks remain).
    """
    amount = check_amount(amount)
    if scope not in ("global", "layer"):
        raise ConfigError(f"scope must be global or layer. Received: scope={scope!r}")
    check_steps(steps)
    pruned = copy.deepcopy(model)
    weights = prunable_weights(pruned)
    if not weights:
        raise ConfigError(f"{type(model).__name__} has no linear, convolution or recurrent weights to prune")
    # each round prunes the same fraction of what is left, so the rounds compound to `amount`
    per_step = 1 - (1 - amount) ** (1 / steps)
    for _ in range(steps):
        if scope == "global":
            torch_prune.global_unstructured(weights, pruning_method=torch_prune.L1Unstructured, amount=per_step)
        else:
            for module, name in weights:
                torch_prune.l1_unstructured(module, name, amount=per_step)
        if fine_tune is not None:
            fine_tune(pruned)
    for module, name in weights:
        torch_prune.remove(module, name)
    for module in pruned.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()
    return pruned


def channel_prune(
    model: nn.Module,
    example: torch.Tensor,
    amount: float,
    steps: int = 1,
    fine_tune: FineTune | None = None,
) -> nn.Module:
    """Remove the lowest-magnitude channels and units of a copy of ``model`` with Torch-Pruning.

    Torch-Pruning's dependency graph removes a channel everywhere it is used (the convolution that
    makes it, its batch norm, the next layer's inputs), so the layers really shrink: fewer
    parameters and fewer FLOPs. The output layer keeps its size.

    Args:
        model: the trained model (left untouched).
        example: a small batch of real inputs, traced to build the dependency graph.
        amount: fraction of the channels of each prunable layer to remove in the end.
        steps: remove them in this many rounds, calling ``fine_tune`` after each.
        fine_tune: ``fine_tune(model)`` trains the shrunk model in place; None for none.

    Recurrent models (``rnn``, ``lstm``, ``gru``), whose packed sequences Torch-Pruning cannot
    trace, go to glassnet's own unit pruner instead (``glassnet.compress.recurrent.recurrent_prune``:
    hidden units of every layer and direction, and embedding dimensions).

    Raises:
        ConfigError: Torch-Pruning is missing or cannot trace this architecture.
    """
    amount = check_amount(amount)
    check_steps(steps)
    if recurrent.is_recurrent(model):
        return recurrent.recurrent_prune(model, amount, steps=steps, fine_tune=fine_tune)
    tp = require("torch_pruning")
    pruned = copy.deepcopy(model).eval()
    output = _output_layer(pruned)
    ignored = [output] + [m for m in pruned.modules() if isinstance(m, (nn.RNNBase, nn.Embedding))]
    try:
        pruner = tp.pruner.MetaPruner(
            pruned,
            example,
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=amount,
            iterative_steps=steps,
            ignored_layers=ignored,
        )
        for _ in range(steps):
            pruner.step()
            if fine_tune is not None:
                fine_tune(pruned)
    except ConfigError:
        raise
    except Exception as exc:  # Torch-Pruning raises plain errors for graphs it cannot trace
        raise ConfigError(
            f"structured pruning cannot handle {type(model).__name__}: Torch-Pruning failed with {exc!r}. "
            "Use unstructured pruning instead (prune_method='global' or 'layer')"
        ) from exc
    if sum(p.numel() for p in pruned.parameters()) >= sum(p.numel() for p in model.parameters()):
        raise ConfigError(
            f"structured pruning found no channels to remove in {type(model).__name__} "
            "(only its output or recurrent layers hold weights); use prune_method='global' instead"
        )
    return pruned.eval()


def _output_layer(model: nn.Module) -> nn.Module:
    """The last linear or convolution layer: its outputs are the classes, so it keeps its size."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no linear or convolution layer for structured pruning")
    return layers[-1]


def sparsity(model: nn.Module) -> float:
    """Fraction of the prunable weights that are exactly zero."""
    weights = [getattr(m, n) for m, n in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0
