"""Explaining GAN runs: which pixels make the discriminator take an image for a real one.

A GAN's only judge of an image is its discriminator, so that is what is explained, read as a
classifier (``Realness``) over the test split's real images:

- a conditional run (``cgan``, projection discriminator): one score per class, the discriminator's
  "real" logit of the image *as that class* (its unconditional term plus the class's projection).
  The explained class is the one under which the image looks most real; its true class is the
  image's own, so the highest-loss examples are the real images whose class the discriminator
  doubts;
- an unconditional run (``dcgan``): two scores, 0 for *generated* and the "real" logit for *real*
  (so the softmax is the discriminator's probability of real); every test image is truly real, and
  the highest-loss examples are the real images it takes for generated.

Every method, trust check and figure of ``glassnet explain`` then applies unchanged. A diffusion
run has no discriminator and is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError


class Realness(nn.Module):
    """A GAN discriminator read as a classifier (see the module docstring)."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        features = d.phi(x)
        logits = d.head(features)  # N x 1
        if d.embed is None:
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits + features @ d.embed.weight.t()  # N x K: real as each class


def require_discriminator(model: nn.Module) -> nn.Module:
    """The discriminator of a GAN run.

    Raises:
        ConfigError: the run has none (a diffusion model).
    """
    discriminator = getattr(model, "discriminator", None)
    if discriminator is None or not hasattr(discriminator, "phi"):
        raise ConfigError(
            f"explain reads a GAN run through its discriminator; this {type(model).__name__} run has none (a diffusion "
            "model is judged by its samples: glassnet generate RUN, and results/generate.json)"
        )
    return discriminator


def discriminator_view(model: nn.Module, spec: DataSpec, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """The classifier reading of a GAN run: ``model`` (``Realness``), a ``classify`` ``spec``, the test ``inputs``
    and their ``labels`` (their class, or *real* for an unconditional run).

    Raises:
        ConfigError: the run has no discriminator (a diffusion model).
    """
    discriminator = require_discriminator(model)
    conditional = discriminator.embed is not None
    names = spec.class_names if conditional else ("generated", "real")
    view = dataclasses.replace(spec, task="classify", num_outputs=len(names), class_names=tuple(names))
    return {
        "model": Realness(discriminator).eval(),
        "spec": view,
        "inputs": inputs,
        "labels": labels.long() if conditional else torch.ones(len(inputs), dtype=torch.long),
        "target": (
            "the discriminator's real logit of the image as the class it finds most plausible"
            if conditional
            else "the discriminator's real logit (against 0 for generated)"
        ),
    }
