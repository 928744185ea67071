"""Mean Teacher (Tarvainen and Valpola, 2017): a student agrees with an average of its own past weights.

The teacher is an exponential moving average of the student (``ema``, 0.99). Each step takes a
labelled batch and ``ratio`` times as many unlabelled inputs; student and teacher see two different
weak views (images: flip and shift; other inputs: Gaussian noise of ``noise`` of each feature's
spread) of every input, labelled and unlabelled. The loss is the labelled cross-entropy plus
``weight`` (ramped up with a sigmoid over the first ``ramp`` of training) times the consistency:
the squared distance between the student's and the teacher's class probabilities, summed over the
classes and averaged over the examples. The teacher's predictions are the pseudo-labels that the
monitor measures; the ``coverage`` log is the share of its predictions above ``threshold``.

``glassnet train --data fashion-mnist data.labels_per_class=40 step.name=mean_teacher``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from glassnet.train.semi import SemiSupervisedStep, Teacher, check_fraction, perturbations, pseudo_labels
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.train.tasks import Task
    from glassnet.train.trainer import Trainer


@register_step("mean_teacher", description="semi-supervised: agree with an exponential moving average of the model")
class MeanTeacherStep(SemiSupervisedStep):
    """Consistency with an EMA teacher (see the module docstring).

    Args:
        spec: the data's spec (classification).
        augment: the run's augmentation, applied to labelled batches after the weak view.
        threshold: confidence counted as coverage (the teacher's targets are soft; nothing is cut).
        ratio: unlabelled inputs per labelled one.
        weight: consistency weight after the ramp-up.
        ramp: fraction of training over which that weight rises from 0 (sigmoid).
        ema: decay of the teacher's moving average.
        hflip: flip probability of the views of images.
        shift: largest shift of those views, as a fraction of the size.
        noise: noise of the views of non-image inputs, as a fraction of each feature's spread.
    """

    name = "mean_teacher"

    def __init__(
        self,
        spec: DataSpec | None = None,
        augment: Any = None,
        threshold: float = 0.95,
        ratio: int = 3,
        weight: float = 10.0,
        ramp: float = 0.3,
        ema: float = 0.99,
        hflip: float = 0.5,
        shift: float = 0.125,
        noise: float = 0.1,
    ) -> None:
        super().__init__(spec, augment, threshold, ratio, weight, ramp)
        self.ema = check_fraction("ema", ema, 0.01, 0.99999)
        self.options = {
            "hflip": check_fraction("hflip", hflip),
            "shift": check_fraction("shift", shift, 0.0, 0.49),
            "noise": check_fraction("noise", noise, 0.0, 10.0),
        }
        weak, _ = perturbations(spec, "mean_teacher", **self.options)
        # both views are weak: images flip and shift, other inputs get the full noise
        self.view = weak if spec is None or spec.modality == "image" else _noise(self.options["noise"])
        self.teacher: Teacher | None = None

    def bind(self, trainer: Trainer) -> None:
        super().bind(trainer)
        self.teacher = Teacher(trainer._model, self.ema)

    def labeller(self, model: nn.Module) -> nn.Module:
        return self.teacher.model if self.teacher is not None else model

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ema": self.ema, **self.options}

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> dict[str, torch.Tensor]:
        inputs, targets, unlabelled = self.split(batch)
        teacher = self._bound_teacher()
        teacher.update(model)  # the weights after the previous optimiser step
        everything = torch.cat([inputs, unlabelled])
        student_view = self.view(everything)
        labelled = student_view[: len(inputs)]
        if self.augment is not None:
            labelled, targets = self.augment(labelled, targets)
            student_view = torch.cat([labelled, student_view[len(inputs) :]])
        logits = model(student_view)
        with torch.no_grad():
            teacher_logits = teacher.model(self.view(everything))
        supervised = task.loss(logits[: len(inputs)], targets)
        student_p = torch.softmax(logits.float(), dim=-1)
        teacher_p = torch.softmax(teacher_logits.float(), dim=-1)
        consistency = ((student_p - teacher_p) ** 2).sum(dim=-1).mean()
        _, mask = pseudo_labels(teacher_logits[len(inputs) :], self.threshold)
        weight = self.unlabelled_weight()
        return {
            "loss": supervised + weight * consistency,
            "supervised_loss": supervised.detach(),
            "unlabelled_loss": consistency.detach(),
            "coverage": mask.mean(),
            "unlabelled_weight": torch.tensor(weight),
        }

    def _bound_teacher(self) -> Teacher:
        if self.teacher is None:
            raise RuntimeError("MeanTeacherStep is not bound to a Trainer; Trainer.fit binds it")
        return self.teacher

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()} if self.teacher is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.teacher is not None and state.get("teacher"):
            self.teacher.load_state_dict(state["teacher"])


def _noise(level: float) -> nn.Module:
    from glassnet.data.randaugment import NoiseView

    return NoiseView(noise=level)
