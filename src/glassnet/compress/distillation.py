"""``distill``: train a new student network from a teacher with the learning layer's ``DistillationStep``."""

from __future__ import annotations

from typing import Any

from torch import nn

from glassnet.data.bundle import DataBundle
from glassnet.errors import ConfigError
from glassnet.models.registry import create_model
from glassnet.train import BestModel, Callback, Trainer
from glassnet.train.steps.distillation import DistillationStep

__all__ = ["DistillationStep", "distill"]


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
    callbacks: list[Callback] | None = None,
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
        callbacks: more ``Trainer`` callbacks (e.g. progress).

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
        callbacks=([best] if best else []) + list(callbacks or []),
    )
    trainer.fit(model, data)
    return model.cpu().eval()
