"""Knowledge distillation: a student network trained on the teacher's softened outputs.

``DistillationStep`` is a training step (see ``glassnet.train.steps``): the ``Trainer`` runs the
loop, the step computes Hinton et al.'s loss, ``alpha * T^2 * KL(teacher_T || student_T) +
(1 - alpha) * task loss``. For regression the soft target is the teacher's output (mean squared
error).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError
from glassnet.models.registry import create_model
from glassnet.train import BestModel, Trainer
from glassnet.train.steps import Augmentation
from glassnet.train.tasks import Task


class DistillationStep:
    """One batch of distillation.

    Args:
        teacher: the trained model whose outputs the student learns (frozen, eval mode).
        temperature: softmax temperature ``T`` of the soft targets (> 0; larger spreads them).
        alpha: weight of the soft-target loss; ``1 - alpha`` weighs the task loss on the labels.
        augment: optional augmentation applied to the batch seen by both networks.
    """

    def __init__(
        self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7, augment: Augmentation | None = None
    ) -> None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ConfigError(f"temperature must be a positive number. Received: temperature={temperature!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1]. Received: alpha={alpha!r}")
        self.teacher = teacher.eval()  # used under no_grad; its parameters are not touched
        self.temperature, self.alpha, self.augment = float(temperature), float(alpha), augment

    def bind(self, trainer: Trainer) -> None:
        """Move the teacher to the trainer's device (called by ``Trainer.fit``)."""
        self.teacher.to(trainer.device).eval()

    def training_step(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, task: Task) -> torch.Tensor:
        """Return the distillation loss of one batch."""
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


def distill(
    teacher: nn.Module,
    data: DataBundle,
    student: str,
    student_hparams: dict[str, Any] | None = None,
    epochs: int = 10,
    lr: float = 3e-3,
    batch_size: int = 64,
    temperature: float = 4.0,
    alpha: float = 0.7,
    seed: int = 0,
    device: str = "auto",
) -> nn.Module:
    """Train a new ``student`` (any registered model) for ``data.spec`` from ``teacher``.

    The student keeps the weights of its best validation epoch (``BestModel`` on ``val/loss``).

    Args:
        teacher: the trained model.
        data: the teacher's data; the student trains on ``train`` and selects on ``val``.
        student: registered model name (``glassnet models``), e.g. ``cnn`` or ``mlp``.
        student_hparams: its hyper-parameters, e.g. ``{"channels": [8, 16], "hidden": 32}``.
        epochs, lr, batch_size, seed, device: the ``Trainer``'s settings.
        temperature, alpha: see ``DistillationStep``.

    Returns:
        The trained student in eval mode (built by ``create_model``, so it saves as a run).
    """
    if data.spec.task not in ("classify", "regress"):
        raise ConfigError(f"distillation supports classify and regress tasks. Received: task={data.spec.task!r}")
    model = create_model(student, data.spec, **(student_hparams or {}))
    step = DistillationStep(teacher, temperature=temperature, alpha=alpha)
    best = BestModel("val/loss") if len(data.val) else None
    trainer = Trainer(
        task=data.spec.task,
        max_epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=device,
        step=step,
        callbacks=[best] if best else [],
    )
    trainer.fit(model, data)
    return model.cpu().eval()
