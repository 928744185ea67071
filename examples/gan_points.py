"""Worked example (a): a training step with two optimisers, a tiny GAN that learns a 2-D point cloud.

The loop is glassnet's ``Trainer`` (epochs over a dataset of points, validation, checkpoints,
exact resume); the GAN is a model with a generator and a discriminator, and a step that owns both
optimisers and alternates them (manual optimisation). docs/architecture.md walks through it.

    python examples/gan_points.py --out runs/gan-points [--epochs 30] [--resume]

``--resume`` continues an interrupted run from ``OUT/last.pt``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import TensorDataset

from glassnet.train import BestModel, Callback, Step, Task, Trainer


def two_blobs(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` points, half around (-2, 1) and half around (2, -1), standard deviation 0.3."""
    centres = torch.tensor([[-2.0, 1.0], [2.0, -1.0]])
    which = torch.randint(0, 2, (n,), generator=generator)
    return centres[which] + 0.3 * torch.randn(n, 2, generator=generator)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two hidden layers with leaky ReLUs."""
    layers = [nn.Linear(inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Linear(hidden, outputs))


class PointsGAN(nn.Module):
    """A generator (noise -> point) and a discriminator (point -> logit of "real")."""

    def __init__(self, latent: int = 4, hidden: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.generator = mlp(latent, hidden, 2)
        self.discriminator = mlp(2, hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


class GANStep(Step):
    """Non-saturating GAN loss; one discriminator update, then one generator update, per batch."""

    automatic_optimization = False  # the step steps its two optimisers itself

    def configure_optimizers(self, model: PointsGAN) -> dict[str, torch.optim.Optimizer]:
        return {
            "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.9)),
            "generator": torch.optim.Adam(model.generator.parameters(), lr=2e-3, betas=(0.5, 0.9)),
        }

    def training_step(self, model: PointsGAN, batch: tuple[torch.Tensor], task: Task) -> dict[str, torch.Tensor]:
        (real,) = batch
        fake = model.generator(torch.randn(len(real), model.latent, device=real.device))
        d_loss = F.softplus(-model.discriminator(real)).mean() + F.softplus(model.discriminator(fake.detach())).mean()
        self.backward(d_loss)
        self.optimizer_step("discriminator")
        g_loss = F.softplus(-model.discriminator(fake)).mean()
        self.backward(g_loss)
        self.optimizer_step("generator")
        return {"d_loss": d_loss, "g_loss": g_loss}


class PointsTask(Task):
    """What the trainer needs of a task here: which way the validation metric improves."""

    name = "points"
    monitor_modes = {"mmd": "min"}


def mmd(x: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel: 0 when the two samples match."""

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * scale**2))

    return float(kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean())


def evaluator(held_out: torch.Tensor):
    """Validation: the MMD between 512 generated points (fixed noise) and held-out real points."""
    noise = torch.randn(len(held_out), 4, generator=torch.Generator().manual_seed(123))

    def evaluate(trainer: Trainer, model: PointsGAN) -> dict[str, float]:
        with torch.no_grad():
            return {"mmd": mmd(model(noise.to(trainer.device)).cpu(), held_out)}

    return evaluate


def train(out: Path, epochs: int = 30, resume: bool = False, extra: Sequence[Callback] = ()) -> PointsGAN:
    """Train the GAN on 2,048 points for ``epochs`` epochs; checkpoints every 20 steps into ``out``."""
    data = torch.Generator().manual_seed(0)
    points, held_out = two_blobs(2048, data), two_blobs(512, data)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = PointsGAN()
    callbacks = [BestModel("val/mmd"), *extra]
    trainer = Trainer(
        task=PointsTask(),
        step=GANStep(),
        max_epochs=epochs,
        batch_size=128,
        callbacks=callbacks,
        checkpoint_dir=out,
        checkpoint_every=20,
        device="cpu",
    )
    resume_from = out / "last.pt" if resume else None
    trainer.fit(model, TensorDataset(points), val=evaluator(held_out), resume_from=resume_from)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gan-points"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    model = train(args.out, args.epochs, args.resume)
    with torch.no_grad():
        sample = model(torch.randn(2048, model.latent))
    print(
        f"generated points: mean {sample.mean(0).tolist()}, share right of x=0: {(sample[:, 0] > 0).float().mean():.2f}"
    )


if __name__ == "__main__":
    main()
