"""SimCLR (Chen et al., 2020): learn a representation from images alone, by contrasting two views.

Each batch of images (their labels are ignored) becomes two random views (``ContrastiveView``:
crop and resize, flip, brightness and contrast); one forward pass over both gives 2N projections,
and the NT-Xent loss asks each to find its partner among the others. The model's head is the
projection (``step.dim`` outputs), so a later run takes every other layer with ``pretrained=RUN``.

``glassnet train --data fashion-mnist --model cnn step.name=simclr epochs=20``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.train.contrastive import PROJECTION_DIM, ContrastiveView, contrastive_bundle, nt_xent
from glassnet.train.steps.base import Step
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.bundle import DataBundle
    from glassnet.data.spec import DataSpec
    from glassnet.train.tasks import Task


def _fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"step.{name} must be a number in [{low}, {high}]. Received: step.{name}={value!r}")
    return float(value)


@register_step("simclr", description="SimCLR: contrastive pretraining on images without labels (NT-Xent of two views)")
class SimCLRStep(Step):
    """NT-Xent between two views of every image of the batch (see the module docstring).

    Args:
        spec: the data's spec (a ``contrastive`` image spec).
        augment: the run's batch augmentation, applied before the two views (usually none).
        temperature: the NT-Xent temperature (SimCLR: 0.5 for batches of a few hundred).
        dim: outputs of the projection (the model's head); read when the data is prepared.
        crop_scale: smallest area of a random crop, as a fraction of the image.
        hflip: probability of a horizontal flip of a view (0 for digits and text-like images).
        jitter: largest relative change of brightness and of contrast.
    """

    name = "simclr"

    def __init__(
        self,
        spec: DataSpec | None = None,
        augment: Any = None,
        temperature: float = 0.5,
        dim: int = PROJECTION_DIM,
        crop_scale: float = 0.3,
        hflip: float = 0.5,
        jitter: float = 0.4,
    ) -> None:
        super().__init__(augment)
        if spec is not None and spec.task != "contrastive":
            raise ConfigError(
                f"step simclr pretrains on images without labels (the contrastive task); this run's data is for "
                f"{spec.task}. Give an image dataset and step.name=simclr"
            )
        self.temperature = _fraction("temperature", temperature, 0.01, 10.0)
        self.dim = dim
        self.view = ContrastiveView(
            _fraction("crop_scale", crop_scale, 0.05, 1.0),
            _fraction("hflip", hflip),
            _fraction("jitter", jitter, 0, 0.9),
        )

    @staticmethod
    def prepare_data(bundle: DataBundle, options: dict[str, Any]) -> DataBundle:
        """The run's data as the ``contrastive`` task: images (labels kept to measure), ``dim`` outputs."""
        return contrastive_bundle(bundle, options.get("dim", PROJECTION_DIM))

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.augment is not None:
            images, _ = self.augment(images, torch.zeros(len(images), dtype=torch.long, device=images.device))
        if len(images) < 2:
            raise ConfigError(
                "a SimCLR batch needs at least two images (the others are the negatives); raise batch_size"
            )
        views = torch.cat([self.view(images), self.view(images)])
        projections = model(views)
        return nt_xent(projections[: len(images)], projections[len(images) :], self.temperature)

    def describe(self) -> dict[str, Any]:
        view = self.view
        return {
            "name": self.name,
            "temperature": self.temperature,
            "dim": self.dim,
            "crop_scale": view.crop_scale,
            "hflip": view.hflip,
            "jitter": view.jitter,
        }
