"""Whether a model's weights and outputs are finite: a diverged training leaves NaN or infinite weights
behind, and every stage that reads such a run must say so instead of reporting ``nan`` or crashing.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from glassnet.errors import RunError
from glassnet.models.outputs import Outputs, prediction

SHOWN = 3  # parameters named in a message before "and K more"


def nonfinite_weights(model: nn.Module) -> dict[str, int]:
    """The count of NaN or infinite values of each floating-point parameter and buffer that holds any,
    by its name in the state dict (e.g. ``{"2.weight": 1}``); empty when every weight is finite."""
    counts = {}
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                counts[name] = bad
    return counts


def describe_weights(counts: dict[str, int]) -> str:
    """``"3 non-finite weights (in 2.weight, 5.bias)"`` for the counts of ``nonfinite_weights``."""
    names = list(counts)
    where = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    total = sum(counts.values())
    return f"{total:,} non-finite weight{'s' if total != 1 else ''} (in {where})"


def require_finite_weights(model: nn.Module, source: str | os.PathLike[str]) -> None:
    """Raise a ``RunError`` naming ``source`` (the weights file) when the model holds NaN or infinite weights.

    Raises:
        RunError: some weight is NaN or infinite: the training diverged, nothing it computes means anything.
    """
    counts = nonfinite_weights(model)
    if counts:
        raise RunError(
            f"{source} holds {describe_weights(counts)}: the model diverged; retrain with a lower lr "
            "(e.g. lr=1e-4) or with clip_grad_norm=1.0"
        )


def nonfinite_predictions(outputs: Outputs) -> int:
    """How many examples of a batch of ``outputs`` have a NaN or infinite prediction."""
    first = prediction(outputs)
    if not first.is_floating_point() or first.dim() == 0:
        return 0
    return int((~torch.isfinite(first)).reshape(len(first), -1).any(dim=1).sum())
