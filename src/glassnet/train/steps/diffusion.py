"""The ``diffusion`` step: a denoising diffusion model learns to predict the noise added to its images.

Per batch of real images ``x`` (scaled to [-1, 1]) the step draws a timestep ``t`` uniformly from
``[0, T)`` and noise ``e ~ N(0, I)`` for every image, and minimises ``|| e - net(sqrt(a_t) x +
sqrt(1 - a_t) e, t, y) ||^2`` (the simplified objective of Ho et al., 2020). A conditional model
(``ddpm`` on data with classes) sees its image's class, replaced by the "no class" label with
probability ``drop_label``, so one network learns both the conditional and the unconditional
estimate that classifier-free guidance mixes at sampling time. After each optimiser step the
moving average of the U-Net (``model.net_ema``, what ``sample`` draws with) is updated.

The step owns its optimiser (Adam at ``lr``, gradients clipped to norm ``clip``) and runs on the
ordinary ``Trainer``: epochs, bf16 autocast, channels-last, callbacks, checkpoints and exact
resume (the average's update count is in every checkpoint; the averaged weights are part of the
model's state). Logged: ``train/loss`` (the noise-prediction error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.train.optim import adam
from glassnet.train.steps.averaging import WeightAverage
from glassnet.train.steps.base import Optimization, Step
from glassnet.train.steps.gan import unwrap
from glassnet.train.steps.registry import register_step

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.models.diffusion import Diffusion
    from glassnet.train.tasks import Task


class DiffusionStep(Step):
    """One batch of denoising training (see the module docstring).

    Args:
        lr: Adam's learning rate.
        ema: decay of the U-Net's moving average, in [0, 1).
        drop_label: probability of training a conditional model without the class, in [0, 1).
        clip: the gradient norm clipped to (0: no clipping).
    """

    name = "diffusion"
    automatic_optimization = False

    def __init__(self, lr: float = 1e-3, ema: float = 0.999, drop_label: float = 0.1, clip: float = 1.0) -> None:
        super().__init__(None)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ConfigError(f"lr must be a positive number. Received: lr={lr!r}")
        for key, value in (("ema", ema), ("drop_label", drop_label)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{key} must be in [0, 1). Received: {key}={value!r}")
        if isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip < 0:
            raise ConfigError(f"clip must be a number >= 0 (0: no clipping). Received: clip={clip!r}")
        self.lr, self.ema, self.drop_label, self.clip = float(lr), float(ema), float(drop_label), float(clip)
        self.average = WeightAverage(self.ema)

    def check(self, model: nn.Module) -> None:
        """Refuse a model that is not a diffusion model."""
        model = unwrap(model)
        if not (hasattr(model, "denoise") and hasattr(model, "net_ema") and hasattr(model, "alpha_bar")):
            raise ConfigError(
                f"step diffusion trains a denoising diffusion model (model ddpm); {type(model).__name__} is not one"
            )

    def bind(self, trainer: Any) -> None:
        """Refuse ``torchrun``: the step calls the U-Net directly, past DDP's gradient averaging."""
        super().bind(trainer)
        if trainer.world_size > 1:
            raise ConfigError("the diffusion step trains in one process. Run it without torchrun")
        if trainer.precision == "fp16" and self.clip > 0:
            raise ConfigError(
                "the diffusion step clips gradients (step.clip), which fp16's loss scaling does not allow here; "
                "use precision=bf16, or step.clip=0"
            )

    def configure_optimizers(self, model: nn.Module) -> Optimization:
        diffusion = unwrap(model)
        self.check(diffusion)
        self.average.reset()
        return Optimization({"denoiser": adam(diffusion.net.parameters(), lr=self.lr)})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "ema": self.ema, "drop_label": self.drop_label, "clip": self.clip}

    def state_dict(self) -> dict[str, Any]:
        return {"ema_updates": self.average.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.updates = int(state.get("ema_updates", 0))

    def training_step(self, model: nn.Module, batch: Any, task: Task) -> dict[str, torch.Tensor]:
        """One noise-prediction update and the average's update."""
        diffusion: Diffusion = unwrap(model)  # type: ignore[assignment]
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        labels = None
        if diffusion.conditional:
            if not (isinstance(batch, (tuple, list)) and len(batch) > 1):
                raise ConfigError("a conditional ddpm trains on (image, class) pairs; the batch holds no classes")
            labels = batch[1].long()
            dropped = torch.rand(len(labels), device=labels.device) < self.drop_label
            labels = torch.where(dropped, torch.full_like(labels, diffusion.num_classes), labels)
        clean = images * 2 - 1
        t = torch.randint(0, diffusion.timesteps, (len(clean),), device=clean.device)
        noise = torch.randn_like(clean)
        estimate = diffusion.denoise(diffusion.add_noise(clean, t, noise), t, labels)
        loss = (estimate.float() - noise.float()).pow(2).mean()
        self.backward(loss)
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in diffusion.net.parameters() if p.grad is not None], self.clip)
        self.optimizer_step("denoiser")
        self.average.update(diffusion.net, diffusion.net_ema)
        return {"loss": loss.detach()}


@register_step("diffusion", description="denoising diffusion: predict the added noise (model ddpm)")
def diffusion_step(
    spec: DataSpec | None = None,
    augment: Any = None,
    lr: float = 1e-3,
    ema: float = 0.999,
    drop_label: float = 0.1,
    clip: float = 1.0,
) -> DiffusionStep:
    """The ``diffusion`` step (the step ``ddpm`` trains with).

    Raises:
        ConfigError: an option is out of range, augmentation is asked for (the model would learn
            the augmented images), or the data is not for the ``generate`` task.
    """
    if augment is not None:
        raise ConfigError(
            "augment does not apply to diffusion training: the model would learn to draw the augmented images. "
            "Remove augment from the configuration"
        )
    if spec is not None and spec.task != "generate":
        raise ConfigError(
            f"step diffusion trains ddpm on image data for the generate task. Received: task={spec.task!r}"
        )
    return DiffusionStep(lr=lr, ema=ema, drop_label=drop_label, clip=clip)
