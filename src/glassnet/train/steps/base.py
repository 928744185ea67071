"""The training-step contract: what one batch does, while the ``Trainer`` owns the loop.

A step turns one batch into an update. Two kinds exist:

- **automatic optimisation** (the default, ``automatic_optimization = True``): ``training_step``
  returns the loss, or a mapping of logs holding ``"loss"``; the trainer runs backward (with
  gradient accumulation, the gradient scaler and DDP's gradient sync), steps the optimiser and
  its schedule, and calls the callbacks' hooks.
- **manual optimisation** (``automatic_optimization = False``): the step owns several optimisers
  (a GAN's generator and discriminator, an actor and a critic). It calls ``self.backward(loss)``
  and ``self.optimizer_step(name)`` itself, as often as it likes, and returns a mapping of logs.
  The trainer clears every gradient before the step; ``optimizer_step`` unscales, runs
  ``on_before_optimizer_step`` (so ``GradientClipping`` works), steps that optimiser and its
  schedule, and clears its gradients. One call of ``training_step`` is one training step.

Which optimisers exist is the step's ``configure_optimizers(model)``: None (the default) lets the
trainer build its configured one (``optimizer``, ``lr``, ``weight_decay``, ``schedule``) over all
trainable parameters; a step may instead return an optimiser, a mapping of named optimisers, or an
``Optimization`` with per-optimiser schedules. Their states go into every checkpoint by name, so
exact resume holds for any step. Logged values (detached tensors) are averaged over the epoch (or
the ``eval_every`` steps of a stream) and written as ``train/<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from glassnet.train.tasks import Task
    from glassnet.train.trainer import Trainer

Augmentation = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
StepOutput = torch.Tensor | Mapping[str, torch.Tensor]


@dataclass
class Optimization:
    """Named optimisers and, optionally, per-step learning-rate schedules of some of them.

    Attributes:
        optimizers: name -> optimiser; the first is ``trainer.optimizer`` (whose lr is logged as ``lr``).
        schedulers: name of an optimiser -> its schedule, stepped after each of that optimiser's steps.
    """

    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)


class Step:
    """Base class of training steps (see the module docstring for the contract).

    Attributes:
        name: the registry name the step was made under (``supervised``, ``adversarial`` ...).
        automatic_optimization: False for steps that call ``backward`` and ``optimizer_step`` themselves.
        augment: the on-device augmentation of training batches, or None.
        trainer: the ``Trainer`` the step is bound to (set at the start of ``fit``).
    """

    name = ""
    automatic_optimization = True

    def __init__(self, augment: Augmentation | None = None) -> None:
        self.augment = augment
        self.trainer: Trainer | None = None

    def bind(self, trainer: Trainer) -> None:
        """Called by ``Trainer.fit`` before anything else: steps read the device, budget and progress here."""
        self.trainer = trainer

    def configure_optimizers(self, model: nn.Module) -> None | torch.optim.Optimizer | Mapping[str, Any] | Optimization:
        """The optimisers this step trains with; None lets the trainer build its configured one."""
        return None

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> StepOutput:
        """Compute one batch: the loss (automatic optimisation) or a mapping of logs."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The step's settings as recorded in ``results/train.json`` (``training.step``)."""
        return {"name": self.name}

    def state_dict(self) -> dict[str, Any]:
        """State a bitwise resume needs besides the model and optimisers (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    # --- manual optimisation -------------------------------------------------------------------

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The trainer's optimisers by name (those ``configure_optimizers`` returned)."""
        return self._bound().optimizers

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled when a gradient scaler is active)."""
        self._bound().backward(loss)

    def optimizer_step(self, name: str | None = None) -> None:
        """Step optimiser ``name`` (the first when None): unscale, hooks, step, schedule, zero the gradients."""
        self._bound().optimizer_step(name)

    def _bound(self) -> Trainer:
        if self.trainer is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a Trainer; Trainer.fit binds it")
        return self.trainer
