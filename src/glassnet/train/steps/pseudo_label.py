"""Pseudo-labelling (Lee, 2013): the model's own confident predictions on unlabelled inputs become targets.

Each step takes a labelled batch and ``ratio`` times as many unlabelled inputs (one forward pass over
both). Unlabelled predictions whose softmax confidence reaches ``threshold`` become hard targets
(detached: no gradient flows through the label), and their cross-entropy, weighted by ``weight``
ramped up with a sigmoid over the first ``ramp`` of training, is added to the labelled loss. Image
inputs of the pool get the weak view (flip, shift) first; other inputs are used as they are, so
this step works on every modality, text included.

``glassnet train --data fashion-mnist data.labels_per_class=40 step.name=pseudo_label``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.train.semi import SemiSupervisedStep, check_fraction, pseudo_labels
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.train.tasks import Task


@register_step("pseudo_label", description="semi-supervised: confident predictions on the unlabelled pool as targets")
class PseudoLabelStep(SemiSupervisedStep):
    """Labelled loss plus the ramped-up loss on confident pseudo-labels (see the module docstring).

    Args:
        spec: the data's spec (classification).
        augment: the run's augmentation of labelled batches.
        threshold: confidence a prediction needs to become a pseudo-label.
        ratio: unlabelled inputs per labelled one.
        weight: weight of the pseudo-label loss after the ramp-up.
        ramp: fraction of training over which that weight rises from 0 (sigmoid).
        hflip: flip probability of the weak view of unlabelled images.
        shift: largest shift of that view, as a fraction of the size.
    """

    name = "pseudo_label"

    def __init__(
        self,
        spec: DataSpec | None = None,
        augment: Any = None,
        threshold: float = 0.95,
        ratio: int = 3,
        weight: float = 1.0,
        ramp: float = 0.3,
        hflip: float = 0.5,
        shift: float = 0.125,
    ) -> None:
        super().__init__(spec, augment, threshold, ratio, weight, ramp)
        self.hflip, self.shift = check_fraction("hflip", hflip), check_fraction("shift", shift, 0.0, 0.49)
        self.view: nn.Module | None = None
        if spec is None or (spec.modality == "image" and len(spec.input_shape) == 3):
            from glassnet.data.randaugment import WeakView

            self.view = WeakView(hflip=self.hflip, shift=self.shift)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "hflip": self.hflip, "shift": self.shift}

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> dict[str, torch.Tensor]:
        inputs, targets, unlabelled = self.split(batch)
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        if self.view is not None:
            unlabelled = self.view(unlabelled)
        logits = model(torch.cat([inputs, unlabelled]))
        labelled_logits, unlabelled_logits = logits[: len(inputs)], logits[len(inputs) :]
        supervised = task.loss(labelled_logits, targets)
        labels, mask = pseudo_labels(unlabelled_logits, self.threshold)
        unsupervised = (F.cross_entropy(unlabelled_logits, labels, reduction="none") * mask).mean()
        weight = self.unlabelled_weight()
        return {
            "loss": supervised + weight * unsupervised,
            "supervised_loss": supervised.detach(),
            "unlabelled_loss": unsupervised.detach(),
            "coverage": mask.mean(),
            "unlabelled_weight": torch.tensor(weight),
        }
