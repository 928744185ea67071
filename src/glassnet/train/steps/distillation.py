"""Knowledge distillation (Hinton et al., 2015): a student trained on a teacher's softened outputs.

The loss is ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * task loss`` for
classification; for regression the soft target is the teacher's output (mean squared error).
Registered as the ``distillation`` step, so a student can be trained from any run:
``glassnet train --data digits --model mlp step.name=distillation step.teacher=runs/digits-cnn``.
``glassnet compress RUN --distill MODEL`` uses the same step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.errors import ConfigError
from glassnet.train.steps.base import Augmentation, Step
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.train.tasks import Task
    from glassnet.train.trainer import Trainer

TASKS = ("classify", "regress")


class DistillationStep(Step):
    """One batch of distillation.

    Args:
        teacher: the trained model whose outputs the student learns (frozen, eval mode).
        temperature: softmax temperature ``T`` of the soft targets (> 0; larger spreads them).
        alpha: weight of the soft-target loss; ``1 - alpha`` weighs the task loss on the labels.
        augment: optional augmentation applied to the batch seen by both networks.
    """

    name = "distillation"

    def __init__(
        self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7, augment: Augmentation | None = None
    ) -> None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ConfigError(f"temperature must be a positive number. Received: temperature={temperature!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1]. Received: alpha={alpha!r}")
        super().__init__(augment)
        self.teacher = teacher.eval()  # used under no_grad; its parameters are not touched
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.source: str | None = None  # the teacher's run directory, when made from one

    def bind(self, trainer: Trainer) -> None:
        """Move the teacher to the trainer's device (called by ``Trainer.fit``)."""
        super().bind(trainer)
        self.teacher.to(trainer.device).eval()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "teacher": self.source, "temperature": self.temperature, "alpha": self.alpha}

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> torch.Tensor:
        """Return the distillation loss of one batch of ``(inputs, targets)``."""
        inputs, targets = batch
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        with torch.no_grad():
            teacher_outputs = self.teacher(inputs)
        outputs = model(inputs)
        hard = task.loss(outputs, targets)
        if task.name == "classify":
            t = self.temperature
            soft = F.kl_div(
                F.log_softmax(outputs / t, dim=-1),
                F.log_softmax(teacher_outputs / t, dim=-1),
                reduction="batchmean",
                log_target=True,
            ) * (t * t)
        else:
            soft = F.mse_loss(outputs, teacher_outputs)
        return self.alpha * soft + (1 - self.alpha) * hard


@register_step("distillation", description="learn a teacher run's softened outputs (step.teacher=RUN)")
def distillation_step(
    spec: DataSpec, augment: Any = None, teacher: str = "", temperature: float = 4.0, alpha: float = 0.7
) -> DistillationStep:
    """The distillation step with the model of the run directory ``teacher`` as the teacher.

    Raises:
        ConfigError: no teacher is given, or its inputs, task or outputs differ from the data's.
    """
    from glassnet.models import load_model

    if not teacher:
        raise ConfigError("step.name=distillation needs a teacher run: step.teacher=RUN_DIR")
    model, teacher_spec = load_model(teacher)
    if spec is not None:
        if spec.task not in TASKS:
            raise ConfigError(f"distillation supports {' and '.join(TASKS)} tasks. Received: task={spec.task!r}")
        mine = (spec.input_shape, spec.task, spec.num_outputs)
        theirs = (teacher_spec.input_shape, teacher_spec.task, teacher_spec.num_outputs)
        if mine != theirs:
            raise ConfigError(
                f"the teacher run '{teacher}' ({theirs[1]}, inputs {theirs[0]}, {theirs[2]} outputs) does not fit "
                f"this data ({mine[1]}, inputs {mine[0]}, {mine[2]} outputs)"
            )
    step = DistillationStep(model, temperature=temperature, alpha=alpha, augment=augment)
    step.source = str(teacher)
    return step
