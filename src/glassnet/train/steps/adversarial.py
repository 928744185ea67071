"""Adversarial training steps: PGD (Madry et al.), TRADES (Zhang et al.) and fast FGSM with random start.

Registered as the ``adversarial`` step: ``glassnet train --adversarial pgd adversarial.eps=0.1`` (or
``step.name=adversarial step.method=pgd step.eps=0.1``) makes it with ``adversarial_step``. The
step finds adversarial inputs for each batch (model in eval mode, so batch-norm statistics are not
polluted by the attack), then returns the loss of the defence. ``eps`` may ramp up linearly over
the first part of training (``schedule: linear``), which the step follows through the trainer it
is bound to.

Image inputs are attacked in ``[0, 1]``; table columns within their ranges, taken from the
training batches seen so far (after the first epoch: the training split's per-feature range), with
linf eps a fraction of each feature's range.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, UnknownNameError
from glassnet.train.perturbation import NORMS, ascent, project, random_start
from glassnet.train.steps.base import Step
from glassnet.train.steps.registry import register_step

METHODS = ("pgd", "trades", "fgsm")
SCHEDULES = ("constant", "linear")
DEFAULTS: dict[str, Any] = {
    "eps": 0.1,
    "norm": "linf",
    "steps": 7,
    "step_size": None,  # 2.5 * eps / steps for pgd and trades; 1.25 * eps for fgsm
    "beta": 6.0,
    "schedule": "linear",
    "warmup": 0.3,
    "mix": 0.0,
}
SUPPORTED_MODALITIES = ("image", "tabular")


class AdversarialStep(Step):
    """A training step that trains on adversarial inputs.

    Args:
        method: ``pgd`` (loss on PGD examples), ``trades`` (clean loss + ``beta`` x KL between clean
            and adversarial predictions) or ``fgsm`` (one step from a random start, Wong et al. 2020).
        eps: final perturbation budget.
        norm: ``linf`` or ``l2``.
        steps: attack iterations for pgd and trades (fgsm uses one).
        step_size: attack step (default 2.5 * eps / steps; 1.25 * eps for fgsm).
        beta: TRADES trade-off between accuracy and robustness.
        schedule: ``constant`` eps, or ``linear`` ramp from 0 over the first ``warmup`` fraction of training.
        warmup: fraction of the training steps over which eps ramps up.
        mix: pgd and fgsm only: fraction of the loss from clean inputs (0: adversarial only, Madry).
        modality: ``image`` (box [0, 1]) or ``tabular`` (per-feature ranges from the training batches).
        augment: optional augmentation applied before the attack.
    """

    def __init__(
        self,
        method: str,
        eps: float,
        norm: str,
        steps: int,
        step_size: float | None,
        beta: float,
        schedule: str,
        warmup: float,
        mix: float,
        modality: str = "image",
        augment: Any = None,
    ) -> None:
        self.method, self.eps, self.norm, self.steps = method, eps, norm, steps
        self.step_size, self.beta, self.schedule, self.warmup, self.mix = step_size, beta, schedule, warmup, mix
        super().__init__(augment)
        self.modality = modality
        self.lower: torch.Tensor | None = None
        self.upper: torch.Tensor | None = None

    def describe(self) -> dict[str, Any]:
        """The settings, as recorded with the run's results."""
        return {
            "name": self.name or "adversarial",
            "method": self.method,
            "eps": self.eps,
            "norm": self.norm,
            "steps": 1 if self.method == "fgsm" else self.steps,
            "step_size": self.step_size,
            "beta": self.beta if self.method == "trades" else None,
            "schedule": self.schedule,
            "warmup": self.warmup if self.schedule == "linear" else 0.0,
            "mix": self.mix if self.method != "trades" else None,
        }

    def current_eps(self) -> float:
        """Eps at the trainer's current step (the final eps when not bound or the ramp is over)."""
        if self.schedule == "constant" or self.trainer is None:
            return self.eps
        total = max(1, self.trainer.total_steps)
        ramp = self.warmup * total
        if ramp <= 0:
            return self.eps
        return self.eps * min(1.0, (self.trainer.global_step + 1) / ramp)

    def training_step(self, model: nn.Module, batch: Any, task: Any) -> torch.Tensor:
        """The defence's loss on one batch of ``(inputs, targets)`` (the trainer runs backward and the optimiser)."""
        inputs, targets = batch
        if self.augment is not None:
            inputs, targets = self.augment(inputs, targets)
        if targets.dim() > 1:
            raise ConfigError(
                "adversarial training needs class targets; mixing augmentations (mixup, cutmix) give soft "
                "targets. Remove augment.mixup / augment.cutmix or adversarial.*"
            )
        z, to_input = self._unit_box(inputs)
        eps = self.current_eps()
        if eps <= 0:
            return task.loss(model(inputs), targets)

        def forward(points: torch.Tensor) -> torch.Tensor:
            return model(to_input(points))

        if self.method == "trades":
            return self._trades(model, forward, z, targets, eps)
        adversarial = self._attack(model, forward, z, targets, eps)
        loss = task.loss(forward(adversarial), targets)
        if self.mix > 0:
            loss = (1 - self.mix) * loss + self.mix * task.loss(model(inputs), targets)
        return loss

    def _unit_box(self, inputs: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Inputs in the unit box, and the map back (identity for images)."""
        if self.modality == "image":
            return inputs.clamp(0, 1), lambda z: z
        flat = inputs.detach()
        low, high = flat.amin(dim=0), flat.amax(dim=0)
        self.lower = low if self.lower is None else torch.minimum(self.lower, low)
        self.upper = high if self.upper is None else torch.maximum(self.upper, high)
        lower, width = self.lower, self.upper - self.lower
        z = torch.where(width > 0, (inputs - lower) / width.clamp_min(1e-12), torch.zeros_like(inputs))
        return z, lambda points: lower + points * width

    def _size(self, eps: float) -> float:
        if self.step_size is not None:
            return self.step_size * eps / self.eps  # the step follows the eps ramp
        return 1.25 * eps if self.method == "fgsm" else 2.5 * eps / self.steps

    def _attack(self, model: nn.Module, forward: Any, z: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """PGD (or one FGSM step) on the cross-entropy, from a random start, with the model in eval mode."""
        steps = 1 if self.method == "fgsm" else self.steps
        size = self._size(eps)
        with _eval_mode(model):
            current = random_start(z, eps, self.norm, None)
            for _ in range(steps):
                current.requires_grad_(True)
                loss = F.cross_entropy(forward(current), y)
                (grad,) = torch.autograd.grad(loss, current)
                current = project(current.detach() + size * ascent(grad, self.norm), z, eps, self.norm)
        return current.detach()

    def _trades(self, model: nn.Module, forward: Any, z: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with ``x'`` maximising the KL (Zhang et al., 2019)."""
        size = self._size(eps)
        with _eval_mode(model):
            clean = F.softmax(forward(z), dim=1).detach()
            current = (z + 0.001 * torch.randn_like(z)).clamp(0, 1)
            for _ in range(self.steps):
                current.requires_grad_(True)
                kl = F.kl_div(F.log_softmax(forward(current), dim=1), clean, reduction="sum")
                (grad,) = torch.autograd.grad(kl, current)
                current = project(current.detach() + size * ascent(grad, self.norm), z, eps, self.norm)
        logits = forward(z)
        robust = F.kl_div(
            F.log_softmax(forward(current.detach()), dim=1), F.softmax(logits, dim=1), reduction="batchmean"
        )
        return F.cross_entropy(logits, y) + self.beta * robust


class _eval_mode:
    """Eval mode inside the block (the attack must not update batch-norm statistics); restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was_training)


@register_step("adversarial", description="train on PGD, TRADES or fast-FGSM adversarial inputs (docs/robustness.md)")
def _build(spec: DataSpec, augment: Any = None, **options: Any) -> AdversarialStep:
    return adversarial_step(options, spec, augment=augment)


def adversarial_step(options: dict[str, Any], spec: DataSpec, augment: Any = None) -> AdversarialStep:
    """Build the adversarial-training step that ``options`` (the config's ``adversarial`` mapping) describes.

    Args:
        options: ``method`` (pgd, trades, fgsm) and optionally ``eps``, ``norm``, ``steps``,
            ``step_size``, ``beta``, ``schedule`` (constant, linear), ``warmup``, ``mix``.
        spec: the data spec (image or tabular classification).
        augment: augmentation applied to each batch before the attack.

    Raises:
        ConfigError: unknown option or method, a value out of range, or data that cannot be attacked.
    """
    options = dict(options)
    method = options.pop("method", None)
    if method is None:
        raise ConfigError("adversarial training needs a method: adversarial.method=pgd, trades or fgsm")
    if method not in METHODS:
        raise UnknownNameError("adversarial training method", str(method), METHODS)
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown adversarial option {unknown[0]!r}. Options: method, {', '.join(DEFAULTS)} "
            "(see docs/robustness.md)"
        )
    if spec.modality not in SUPPORTED_MODALITIES:
        raise ConfigError(
            f"adversarial training works on image and tabular inputs; this dataset's inputs are {spec.modality}. "
            "Remove the adversarial options (text robustness is measured in embedding space by glassnet attack)"
        )
    if spec.task != "classify":
        raise ConfigError(f"adversarial training needs a classification task. Received task={spec.task!r}")
    values = {**DEFAULTS, **options}
    _validate(values)
    return AdversarialStep(method=method, modality=spec.modality, augment=augment, **values)


def _validate(values: dict[str, Any]) -> None:
    norm, eps = values["norm"], values["eps"]
    if norm not in NORMS:
        raise ConfigError(f"adversarial.norm must be one of {', '.join(NORMS)}. Received: adversarial.norm={norm!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"adversarial.eps must be a finite number > 0. Received: adversarial.eps={eps!r}")
    if norm == "linf" and eps > 0.5:
        raise ConfigError(
            f"adversarial.eps={eps} is out of range for linf: inputs live in [0, 1], so eps above 0.5 can erase "
            "any image. Typical values: 0.03 (CIFAR-like), 0.1 (Fashion-MNIST), 0.3 (MNIST)"
        )
    steps = values["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"adversarial.steps must be an integer >= 1. Received: adversarial.steps={steps!r}")
    size = values["step_size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float)) or not size > 0):
        raise ConfigError(f"adversarial.step_size must be a number > 0. Received: adversarial.step_size={size!r}")
    beta = values["beta"]
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ConfigError(f"adversarial.beta must be a number >= 0. Received: adversarial.beta={beta!r}")
    if values["schedule"] not in SCHEDULES:
        raise ConfigError(
            f"adversarial.schedule must be one of {', '.join(SCHEDULES)}. "
            f"Received: adversarial.schedule={values['schedule']!r}"
        )
    for name in ("warmup", "mix"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"adversarial.{name} must be in [0, 1]. Received: adversarial.{name}={value!r}")
