"""The ``generate`` task: what a generative run validates, reports and predicts.

A GAN has no loss on held-out data that says how good its images are (a diffusion model's
denoising loss does not say it either), so the task validates by sampling: after every epoch,
``validation`` draws images from the averaged generator (fixed noise,
the validation split's classes) and measures the kernel MMD between them and the validation images
in pixel space (``val/mmd``, also logged as ``val/loss``: the monitor keeps the epoch whose images
match the held-out ones best), beside a GAN discriminator's mean logit on both (``val/d_real``,
``val/d_fake``). After training, ``details`` runs the full evaluation (``glassnet.generate.evaluation``):
FID and KID in the features of a classifier trained on the same data, class coverage, a
memorisation check and instability warnings, written to ``results/generate.json``.

A GAN's forward pass is the discriminator's "real" logit, so ``predict`` on a GAN run scores how
real each input image looks (``prediction``: the probability of "real"); a diffusion model's is
minus its denoising error, so ``prediction`` (its sigmoid, at most 0.5) ranks images by how
typical they are.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.data.spec import DataSpec
from glassnet.train.tasks import Task, TaskContext, register_task

VALIDATION_IMAGES = 512
VALIDATION_SEED = 1234
SNAPSHOT = 10  # samples kept from each epoch's validation for the report's "across training" grid
CURVE_POINTS = 40  # validations whose samples are kept (as uint8) for the FID and coverage curves; thinned beyond


def kernel_mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Squared maximum mean discrepancy between two samples with a Gaussian kernel (0 when they match).

    The unbiased estimate (diagonals left out), so it can be slightly negative for matching samples.
    """
    x, y = x.reshape(len(x), -1).double(), y.reshape(len(y), -1).double()

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))

    kxx, kyy = kernel(x, x), kernel(y, y)
    n, m = len(x), len(y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kernel(x, y).mean())


def median_distance(x: torch.Tensor) -> float:
    """The median pairwise distance of a sample (the kernel bandwidth of ``kernel_mmd``)."""
    flat = x.reshape(len(x), -1).double()
    distances = torch.cdist(flat, flat)
    upper = distances[torch.triu(torch.ones_like(distances, dtype=torch.bool), diagonal=1)]
    return float(upper.median()) if upper.numel() else 1.0


def _sample_like(model: nn.Module, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Images from the averaged generator with fixed noise, one per label (labels ignored when unconditional)."""
    generator = torch.Generator().manual_seed(seed)
    return model.sample(len(labels), labels=labels if model.conditional else None, generator=generator)


class SampleValidation:
    """The per-epoch validation of a generative run: MMD between generated and held-out images (and, for a
    GAN, the discriminator's mean logit on both).

    Args:
        images: held-out real images (the validation split, at most ``VALIDATION_IMAGES``).
        labels: their classes (a conditional model draws one image of each).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images.float(), labels.long()
        self.bandwidth = median_distance(self.images)
        self.snapshots: list[torch.Tensor] = []  # the first SNAPSHOT samples of each validation (same noise)
        # every validation's samples (as 8-bit images), scored after training in the feature classifier's space
        self.samples: list[tuple[int, torch.Tensor]] = []

    def __call__(self, trainer: Any, model: nn.Module) -> dict[str, float]:
        from glassnet.train.steps.gan import unwrap

        generative = unwrap(model)
        device = next(generative.parameters()).device
        fake = _sample_like(generative, self.labels, VALIDATION_SEED)
        mmd = kernel_mmd(fake.cpu(), self.images, self.bandwidth)
        self.snapshots.append(fake[:SNAPSHOT].detach().float().cpu())
        epoch = int(getattr(trainer, "epoch", 0) or len(self.samples) + 1)
        self.samples.append((epoch, (fake.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)))
        if len(self.samples) > CURVE_POINTS:  # keep the first, every other one after it, and the latest
            self.samples = [*self.samples[:-1:2], self.samples[-1]]
        scores = {"loss": mmd, "mmd": mmd}
        discriminator = getattr(generative, "discriminator", None)  # GANs; a diffusion model has none
        if discriminator is not None:
            with torch.no_grad():
                real = self.images.to(device)
                labels = self.labels.to(device) if generative.conditional else None
                scores["d_real"] = float(discriminator(real, labels).float().mean())
                scores["d_fake"] = float(discriminator(fake, labels).float().mean())
        return scores


@register_task
class Generation(Task):
    """New images like the training data (GANs): sampling-based validation, the full evaluation after training."""

    name = "generate"
    default_step = "gan"
    monitor_modes = {
        "loss": "min",
        "mmd": "min",
        "d_real": "max",
        "d_fake": "min",
        "fid": "min",
        "kid": "min",
        "coverage": "max",
        "agreement": "max",
        "real_accuracy": "max",
    }
    headline_metrics = ("fid", "kid", "coverage", "agreement")

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss for calling these (real) images real (non-saturating form)."""
        return F.softplus(-outputs.float().reshape(-1)).mean()

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """On real images: the discriminator's loss and the share it calls real."""
        logits = outputs.float().reshape(-1)
        return {"loss": self.loss(outputs, targets).item(), "real_accuracy": (logits > 0).float().mean().item()}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The probability that each image is real, by the discriminator."""
        return {"prediction": torch.sigmoid(outputs.float().reshape(-1))}

    def record(self, spec: DataSpec, predictions: Any, i: int) -> dict[str, Any]:
        return {"prediction": f"real {float(predictions.prediction[i]):.3f}"}

    def shown(self, spec: DataSpec, value: torch.Tensor) -> Any:
        """A target (a class index) by its class name; a prediction (a probability) as a number."""
        if not value.is_floating_point() and spec.class_names:
            return spec.class_names[int(value)]
        return round(float(value), 4)

    def validation(self, bundle: DataBundle) -> SampleValidation:
        """The per-epoch validation: the validation split (the training split when it has none)."""
        split = bundle.val if len(bundle.val) else bundle.train
        images, labels = split_tensors(split)
        chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:VALIDATION_IMAGES]
        self._validation = SampleValidation(images[chosen], labels[chosen])  # its snapshots go to the report
        return self._validation

    def evaluate(self, trainer: Any, model: nn.Module, bundle: DataBundle, split: str) -> dict[str, float]:
        """MMD between generated images and the split's, and the discriminator's logits on both."""
        images, labels = split_tensors(bundle.split(split))
        chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))[:VALIDATION_IMAGES]
        model.to(trainer.device if trainer is not None else "cpu")
        scores = SampleValidation(images[chosen], labels[chosen])(trainer, model.eval())
        return {k: v for k, v in scores.items() if k != "loss"}

    def details(self, context: TaskContext) -> None:
        """The full evaluation: ``results/generate.json``, its figures, and its headline in the test metrics."""
        from glassnet.generate.evaluation import evaluate_generator

        validation = getattr(self, "_validation", None)
        across = None
        if validation is not None and validation.samples:
            across = (validation.images, validation.labels, validation.samples)
        report = evaluate_generator(
            context.model,
            context.bundle,
            context.run,
            seed=context.seed,
            history=context.history,
            device=context.trainer.device,
            across_training=across,
        )
        context.results["test"].update(report.headline())
        if validation is not None and len(validation.snapshots) > 1:
            from glassnet.generate.figures import across_training

            across_training(validation.snapshots, context.run.figure("generate_progress"))
        context.results["generate"] = {"written": "results/generate.json", "warnings": report.warnings}
