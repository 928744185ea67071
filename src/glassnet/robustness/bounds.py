"""The valid input range of a model, and the wrapper that lets every attack work in the box ``[0, 1]``.

Images are already in ``[0, 1]``. Table columns have ranges of their own: they are taken from the
training data (per feature, widened to hold the evaluated inputs), and ``BoxModel`` maps the unit
box onto them, so an linf ``eps`` of 0.05 on a table means 5% of each feature's training range.
Which range a modality has is the modality's to say (``Modality.input_box``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from glassnet.data.modality import get_modality
from glassnet.data.spec import DataSpec


@dataclass(frozen=True)
class InputBounds:
    """Per-feature ``lower`` and ``upper`` limits (tensors broadcastable to one example).

    Attributes:
        lower: smallest valid value per feature.
        upper: largest valid value per feature.
        source: where they come from, for the report (e.g. ``"pixels in [0, 1]"``).
    """

    lower: torch.Tensor
    upper: torch.Tensor
    source: str

    @property
    def is_unit_box(self) -> bool:
        return bool((self.lower == 0).all() and (self.upper == 1).all())

    def to(self, device: torch.device | str) -> InputBounds:
        return InputBounds(self.lower.to(device), self.upper.to(device), self.source)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Natural units to the unit box (a constant feature maps to 0)."""
        if self.is_unit_box:
            return x
        width = self.upper - self.lower
        return torch.where(width > 0, (x - self.lower) / width.clamp_min(1e-12), torch.zeros_like(x))

    def from_unit(self, z: torch.Tensor) -> torch.Tensor:
        """The unit box back to natural units."""
        if self.is_unit_box:
            return z
        return self.lower + z * (self.upper - self.lower)


def input_bounds(
    spec: DataSpec, reference: torch.Tensor | None = None, inputs: torch.Tensor | None = None
) -> InputBounds:
    """The valid range of ``spec``'s inputs.

    Args:
        spec: the model's data spec.
        reference: training inputs whose per-feature range bounds non-image inputs.
        inputs: the inputs to be attacked; the range is widened to hold them, so that clean
            inputs are valid points of the box.

    Raises:
        ConfigError: a non-image modality without data to take the range from, or text (whose
            token ids have no range: attack the embeddings instead).
    """
    return InputBounds(*get_modality(spec.modality).input_box(spec, reference, inputs))


class BoxModel(nn.Module):
    """``model`` seen from the unit box: ``forward(z) = model(lower + z * (upper - lower))``."""

    def __init__(self, model: nn.Module, bounds: InputBounds) -> None:
        super().__init__()
        self.model = model
        self.bounds = bounds

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(self.bounds.from_unit(z))
