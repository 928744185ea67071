"""The ``gan`` step: a generator and a discriminator trained against each other, with two optimisers.

Per batch of real images the step updates the discriminator ``d_steps`` times (real images against
freshly generated ones), then the generator once, then the generator's moving average
(``model.generator_ema``). The generator's update scores the images of the last discriminator update
again, with the updated discriminator (as PyTorch's DCGAN example does), so a batch costs one
generator forward pass per discriminator update, not one more. It is a manual-optimisation step
(``automatic_optimization = False``): ``configure_optimizers`` returns two Adam optimisers by name
(``generator``, ``discriminator``), the step calls ``backward`` and ``optimizer_step`` itself, and
the ``Trainer`` runs it like any other step: epochs, precision (bf16 autocast), channels-last,
callbacks, checkpoints and exact resume (both optimisers and the average's update count are in
every checkpoint; the averaged weights are part of the model's state).

Losses (``model.loss``): ``hinge`` (Lim and Ye, 2017; Miyato et al., 2018), the default:
``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, ``L_G = -E[D(G(z))]``; ``bce``, the
non-saturating loss of Goodfellow et al. (2014): ``L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))]``,
``L_G = E[softplus(-D(G(z)))]``. A class-conditional model (``cgan``) generates each fake with the
class of the real image it stands beside, so both see the data's class frequencies.

Logged (``train/<name>``): ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (the discriminator's
mean logit on real and generated images), ``loss`` (their sum, watched by ``TerminateOnNaN``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.errors import ConfigError
from glassnet.train.optim import adam
from glassnet.train.steps.averaging import WeightAverage
from glassnet.train.steps.base import Optimization, Step
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.models.gan import GAN
    from glassnet.train.tasks import Task


def unwrap(model: nn.Module) -> nn.Module:
    """The module itself inside a ``torch.compile`` or DDP wrapper (which hide its attributes)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss from its logits on real and generated images (``hinge`` or ``bce``)."""
    real, fake = real.float(), fake.float()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss from the discriminator's logits on its images (``hinge`` or ``bce``)."""
    fake = fake.float()
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


class GANStep(Step):
    """One batch of adversarial training (see the module docstring).

    Args:
        lr_g: the generator's learning rate.
        lr_d: the discriminator's learning rate.
        beta1: Adam's first beta of both optimisers (0.0: no momentum, the usual choice with hinge loss).
        beta2: Adam's second beta.
        d_steps: discriminator updates per batch (each with new noise).
        ema: decay of the generator's moving average, in [0, 1); 0 copies the generator after each step.
    """

    name = "gan"
    automatic_optimization = False

    def __init__(
        self,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        beta1: float = 0.0,
        beta2: float = 0.9,
        d_steps: int = 1,
        ema: float = 0.999,
    ) -> None:
        super().__init__(None)
        for key, value in (("lr_g", lr_g), ("lr_d", lr_d)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{key} must be a positive number. Received: {key}={value!r}")
        for key, value in (("beta1", beta1), ("beta2", beta2), ("ema", ema)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{key} must be in [0, 1). Received: {key}={value!r}")
        if isinstance(d_steps, bool) or not isinstance(d_steps, int) or d_steps < 1:
            raise ConfigError(f"d_steps must be an integer >= 1. Received: d_steps={d_steps!r}")
        self.lr_g, self.lr_d, self.betas = float(lr_g), float(lr_d), (float(beta1), float(beta2))
        self.d_steps, self.ema = d_steps, float(ema)
        self.average = WeightAverage(self.ema)

    def check(self, model: nn.Module) -> None:
        """Refuse a model that is not a GAN (the pipeline calls this before training)."""
        model = unwrap(model)
        if not (hasattr(model, "generator") and hasattr(model, "discriminator") and hasattr(model, "generator_ema")):
            raise ConfigError(
                f"step gan trains a generator against a discriminator (models dcgan, cgan); "
                f"{type(model).__name__} is not such a model"
            )

    def bind(self, trainer: Any) -> None:
        """Refuse ``torchrun``: the step calls the two networks directly, past DDP's gradient averaging."""
        super().bind(trainer)
        if trainer.world_size > 1:
            raise ConfigError(
                "the gan step trains in one process; under torchrun the processes' generators would drift apart. "
                "Run it without torchrun"
            )

    def configure_optimizers(self, model: nn.Module) -> Optimization:
        gan = unwrap(model)
        self.check(gan)
        self.average.reset()
        return Optimization(
            {
                "generator": adam(gan.generator.parameters(), lr=self.lr_g, betas=self.betas),
                "discriminator": adam(gan.discriminator.parameters(), lr=self.lr_d, betas=self.betas),
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "betas": list(self.betas),
            "d_steps": self.d_steps,
            "ema": self.ema,
        }

    @property
    def ema_updates(self) -> int:
        return self.average.updates

    def state_dict(self) -> dict[str, Any]:
        return {"ema_updates": self.average.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.updates = int(state.get("ema_updates", 0))

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> dict[str, torch.Tensor]:
        """``d_steps`` discriminator updates, one generator update and the average's update."""
        gan: GAN = unwrap(model)  # type: ignore[assignment]
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        labels = batch[1].long() if gan.conditional and isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if gan.conditional and labels is None:
            raise ConfigError("cgan trains on (image, class) pairs; the batch holds no classes")
        n, kind = len(real), gan.loss
        for k in range(self.d_steps):
            noise = torch.randn(n, gan.latent, device=real.device)
            if k == self.d_steps - 1:  # drawn with its graph: the generator's update below reuses these images
                fake = gan.generator(noise, labels)
            else:
                with torch.no_grad():
                    fake = gan.generator(noise, labels)
            d_real = gan.discriminator(real, labels)
            d_fake = gan.discriminator(fake.detach(), labels)
            d_loss = discriminator_loss(kind, d_real, d_fake)
            self.backward(d_loss)
            self.optimizer_step("discriminator")
        gan.discriminator.requires_grad_(False)  # the generator's loss needs no discriminator gradients
        try:
            g_loss = generator_loss(kind, gan.discriminator(fake, labels))
            self.backward(g_loss)
        finally:
            gan.discriminator.requires_grad_(True)
        self.optimizer_step("generator")
        self.average.update(gan.generator, gan.generator_ema)
        return {
            "loss": (d_loss + g_loss).detach(),
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": d_real.detach().float().mean(),
            "d_fake": d_fake.detach().float().mean(),
        }


@register_step("gan", description="a generator against a discriminator, two optimisers (models dcgan, cgan)")
def gan_step(
    spec: DataSpec | None = None,
    augment: Any = None,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    beta1: float = 0.0,
    beta2: float = 0.9,
    d_steps: int = 1,
    ema: float = 0.999,
) -> GANStep:
    """The ``gan`` step (the ``generate`` task's default).

    Raises:
        ConfigError: an option is out of range, augmentation is asked for (the generator would learn
            the augmented images), or the data is not for the ``generate`` task.
    """
    if augment is not None:
        raise ConfigError(
            "augment does not apply to GAN training: the generator would learn to draw the augmented images. "
            "Remove augment from the configuration"
        )
    if spec is not None and spec.task != "generate":
        raise ConfigError(
            f"step gan trains generative models (dcgan, cgan) on image data for the generate task. "
            f"Received: task={spec.task!r}"
        )
    return GANStep(lr_g=lr_g, lr_d=lr_d, beta1=beta1, beta2=beta2, d_steps=d_steps, ema=ema)
