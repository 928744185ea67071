"""FixMatch (Sohn et al., 2020): a confident prediction on a weak view is the target of a strong view.

Each step takes a labelled batch ``B`` and ``ratio * B`` unlabelled inputs (``mu``, 7 in the paper).
Labelled images and unlabelled ones get the weak view (flip, shift); unlabelled ones also get the
strong view (RandAugment with random magnitudes, then cutout: ``glassnet.data.randaugment``). One
forward pass covers all three. Where the weak view's softmax confidence reaches ``threshold``
(0.95), its argmax is the hard target of the strong view's cross-entropy, weighted by ``weight``
(lambda_u, 1). With ``ema`` > 0 the pseudo-labels come from an exponential moving average of the
model (a teacher, as in the USB/TorchSSL recipe's evaluation model) instead of the model itself.

Inputs that are not images (tables, spectrograms, series) get noise instead: the weak view adds
Gaussian noise of ``noise / 4`` of each feature's spread, the strong one ``noise`` and replaces a
share ``drop`` of the features by their batch mean. Text (token ids) is refused: use ``pseudo_label``.

``glassnet train --data fashion-mnist data.labels_per_class=40 step.name=fixmatch step.ratio=7``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.train.semi import SemiSupervisedStep, Teacher, check_fraction, perturbations, pseudo_labels
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.train.tasks import Task
    from glassnet.train.trainer import Trainer


@register_step("fixmatch", description="semi-supervised: a weak view's confident label trains the strong view")
class FixMatchStep(SemiSupervisedStep):
    """Weak-to-strong consistency with confident hard pseudo-labels (see the module docstring).

    Args:
        spec: the data's spec (classification).
        augment: the run's augmentation, applied to labelled batches after the weak view.
        threshold: confidence of the weak view that makes its argmax a target (0.95).
        ratio: unlabelled inputs per labelled one (mu, 7).
        weight: weight of the unlabelled loss (lambda_u, 1).
        ramp: fraction of training over which that weight rises from 0 (0: FixMatch has none).
        ema: decay of the teacher whose weak-view predictions are the pseudo-labels; 0: the model itself.
        hflip: flip probability of both views (0 where a flip changes the class, e.g. digits).
        shift: largest shift of the weak view, as a fraction of the size.
        ops: RandAugment operations per image of the strong view.
        cutout: largest cutout side of the strong view, as a fraction of the side (0: none).
        noise: noise of the strong view of non-image inputs (a quarter of it for the weak view).
        drop: share of features the strong view of non-image inputs replaces by their mean.
    """

    name = "fixmatch"

    def __init__(
        self,
        spec: DataSpec | None = None,
        augment: Any = None,
        threshold: float = 0.95,
        ratio: int = 7,
        weight: float = 1.0,
        ramp: float = 0.0,
        ema: float = 0.0,
        hflip: float = 0.5,
        shift: float = 0.125,
        ops: int = 2,
        cutout: float = 0.5,
        noise: float = 0.1,
        drop: float = 0.2,
    ) -> None:
        super().__init__(spec, augment, threshold, ratio, weight, ramp)
        self.ema = check_fraction("ema", ema, 0.0, 0.99999)
        self.options = {
            "hflip": check_fraction("hflip", hflip),
            "shift": check_fraction("shift", shift, 0.0, 0.49),
            "ops": ops,
            "cutout": check_fraction("cutout", cutout),
            "noise": check_fraction("noise", noise, 0.0, 10.0),
            "drop": check_fraction("drop", drop, 0.0, 0.99),
        }
        self.weak, self.strong = perturbations(spec, "fixmatch", **self.options)
        self.teacher: Teacher | None = None

    def bind(self, trainer: Trainer) -> None:
        super().bind(trainer)
        self.teacher = Teacher(trainer._model, self.ema) if self.ema > 0 else None

    def labeller(self, model: nn.Module) -> nn.Module:
        return self.teacher.model if self.teacher is not None else model

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ema": self.ema, **self.options}

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> dict[str, torch.Tensor]:
        inputs, targets, unlabelled = self.split(batch)
        if self.teacher is not None:
            self.teacher.update(model)  # the weights after the previous optimiser step
        inputs = self.weak(inputs)
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        weak, strong = self.weak(unlabelled), self.strong(unlabelled)
        logits = model(torch.cat([inputs, weak, strong]))
        n, u = len(inputs), len(unlabelled)
        labelled_logits, weak_logits, strong_logits = logits[:n], logits[n : n + u], logits[n + u :]
        if self.teacher is not None:
            with torch.no_grad():
                weak_logits = self.teacher.model(weak)
        labels, mask = pseudo_labels(weak_logits, self.threshold)
        supervised = task.loss(labelled_logits, targets)
        unsupervised = (F.cross_entropy(strong_logits, labels, reduction="none") * mask).mean()
        weight = self.unlabelled_weight()
        return {
            "loss": supervised + weight * unsupervised,
            "supervised_loss": supervised.detach(),
            "unlabelled_loss": unsupervised.detach(),
            "coverage": mask.mean(),
            "unlabelled_weight": torch.tensor(weight),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()} if self.teacher is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.teacher is not None and state.get("teacher"):
            self.teacher.load_state_dict(state["teacher"])
