"""Generative adversarial networks for images: ``dcgan`` and the class-conditional ``cgan``.

One module, ``GAN``, holds both networks and the generator's moving average:

- ``model.generator(noise, labels=None)``: latent noise (``N x latent``) -> images ``N x C x H x W``
  in natural units ([0, 1], like every image glassnet loads);
- ``model.discriminator(images, labels=None)``: images -> one "real" logit per image (``N``);
- ``model.generator_ema``: an exponential moving average of the generator's weights (updated by
  the ``gan`` training step, saved with the model, used for sampling);
- ``model(images)``: the forward pass is the discriminator's verdict, ``N x 1`` logits (how real
  each image looks; for ``cgan`` under the class the discriminator finds most plausible), so
  ``predict``, ``explain`` and the registry's shared tests treat it like any image model;
- ``model.sample(n, labels=None, generator=None)``: new images from the averaged generator.

Both families work for any ``C x H x W`` size: the generator starts from a small grid
(``ceil(H / 2^k) x ceil(W / 2^k)``), doubles it ``k`` times (``k`` <= 3, chosen so the start is at
least 4 pixels) and crops to ``H x W``; the discriminator halves the image as often. Every layer of
the discriminator has spectral normalisation (Miyato et al., 2018), which keeps it 1-Lipschitz and
training stable; ``cgan``'s discriminator is a projection discriminator (Miyato and Koyama, 2018):
``D(x, y) = psi(phi(x)) + embed(y) . phi(x)``, and its generator concatenates a label embedding to
the noise.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import check_positive, input_layer
from glassnet.models.registry import register_model

LOSSES = ("hinge", "bce")
MAX_DOUBLINGS = 3
MIN_START = 4  # the generator's first grid is at least this many pixels on its shorter side


def doublings(height: int, width: int) -> int:
    """How many times the generator doubles its grid (and the discriminator halves the image)."""
    k, side = 0, min(height, width)
    while k < MAX_DOUBLINGS and side // 2 >= MIN_START:
        side //= 2
        k += 1
    return k


class Generator(nn.Module):
    """Noise (and, when conditional, a class label) -> images in [0, 1].

    Args:
        shape: ``(C, H, W)`` of the images.
        latent: size of the noise vector.
        width: channels of the last hidden block (earlier blocks have 2x, 4x, ...).
        num_classes: classes of a conditional generator (0: unconditional).
    """

    def __init__(self, shape: tuple[int, int, int], latent: int, width: int, num_classes: int = 0) -> None:
        super().__init__()
        channels, height, wide = shape
        self.shape, self.latent, self.num_classes = tuple(shape), latent, num_classes
        self.k = doublings(height, wide)
        self.start = (math.ceil(height / 2**self.k), math.ceil(wide / 2**self.k))
        top = width * 2**self.k
        self.embed = nn.Embedding(num_classes, latent) if num_classes else None
        inputs = latent * (2 if num_classes else 1)
        self.project = nn.Linear(inputs, top * self.start[0] * self.start[1])
        self.top = top
        layers: list[nn.Module] = [nn.BatchNorm2d(top), nn.ReLU()]
        c = top
        for _ in range(self.k):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 3, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ConfigError("a conditional generator needs the class of each image (labels)")
            noise = torch.cat([noise, self.embed(labels.long())], dim=1)
        x = self.project(noise).reshape(-1, self.top, *self.start)  # -1: an ONNX export keeps the batch dynamic
        images = self.body(x)
        _, height, width = self.shape
        return images[:, :, :height, :width]


class Discriminator(nn.Module):
    """Images (and labels, when conditional) -> one "real" logit per image; spectral norm on every layer.

    Args:
        spec: the image spec (its statistics standardise the input).
        width: channels of the first convolution (doubled at each halving).
        num_classes: classes of a projection discriminator (0: unconditional).
        spectral: spectral normalisation on every weight.
    """

    def __init__(self, spec: DataSpec, width: int, num_classes: int = 0, spectral: bool = True) -> None:
        super().__init__()
        norm = spectral_norm if spectral else (lambda module: module)
        channels, height, wide = spec.input_shape
        k = doublings(height, wide)
        self.normalize = input_layer(spec)
        layers: list[nn.Module] = [norm(nn.Conv2d(channels, width, 3, padding=1)), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(k):
            layers += [norm(nn.Conv2d(c, c * 2, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c *= 2
        layers += [norm(nn.Conv2d(c, c, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.num_features, self.num_classes = c, num_classes
        self.head = norm(nn.Linear(c, 1))
        self.embed = norm(nn.Embedding(num_classes, c)) if num_classes else None

    def phi(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features ``N x num_features`` (summed over the image, as in the projection discriminator)."""
        return self.features(self.normalize(images)).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.phi(images)
        logits = self.head(features).squeeze(1)
        if self.embed is None:
            return logits
        if labels is None:
            # the class the discriminator finds most plausible: max over the projection terms
            return logits + (features @ self.embed.weight.t()).max(dim=1).values
        return logits + (self.embed(labels.long()) * features).sum(dim=1)


class GAN(nn.Module):
    """A generator, a discriminator and the generator's moving average (see the module docstring).

    Attributes:
        latent: noise dimensions.
        num_classes: classes of a conditional model (0: unconditional).
        loss: ``hinge`` or ``bce``, the adversarial loss the ``gan`` step trains with.
        class_names: the names of the classes (conditional models), for sampling by name.
    """

    def __init__(
        self,
        generator: Generator,
        discriminator: Discriminator,
        loss: str,
        class_names: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = copy.deepcopy(generator)
        self.generator_ema.requires_grad_(False)
        self.generator_ema.eval()
        self.latent, self.num_classes, self.loss = generator.latent, generator.num_classes, loss
        self.class_names = tuple(class_names)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """The shape of one sample's noise (``sample(noise=...)``): a latent vector."""
        return (self.latent,)

    def train(self, mode: bool = True) -> GAN:
        super().train(mode)
        self.generator_ema.eval()  # the average is never trained: its batch-norm statistics are copied
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The discriminator's "real" logit of each image, ``N x 1``."""
        return self.discriminator(images).unsqueeze(1)

    def noise(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> torch.Tensor:
        """``n`` latent vectors from ``N(0, I)``, drawn on the CPU with ``generator`` (reproducible), then moved."""
        z = torch.randn(n, self.latent, generator=generator)
        return z.to(device) if device is not None else z

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        ema: bool = True,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` new images in [0, 1] from the averaged generator (``ema=False``: the trained one).

        Args:
            n: how many images.
            labels: the class of each image (conditional models); None draws the classes evenly
                (``i % num_classes``).
            generator: a ``torch.Generator`` for the noise (reproducible samples).
            ema: sample from ``generator_ema`` (default) or from ``generator``.
            noise: the latent vectors (``n x latent``) instead of fresh ones (interpolations).

        Returns:
            ``n x C x H x W`` images on the model's device.
        """
        net = self.generator_ema if ema else self.generator
        device = next(net.parameters()).device
        if self.conditional and labels is None:
            labels = torch.arange(n) % self.num_classes
        if labels is not None:
            labels = torch.as_tensor(labels).long().to(device)
        was_training = net.training
        net.eval()
        try:
            z = self.noise(n, generator, device) if noise is None else noise.to(device)
            return net(z, labels).float()
        finally:
            net.train(was_training)


def _build(spec: DataSpec, conditional: bool, latent: int, width: int, loss: str, spectral: bool) -> GAN:
    if spec.modality != "image" or len(spec.input_shape) != 3:
        raise ConfigError(
            f"GANs generate C x H x W images. Received: {spec.modality} data of shape {list(spec.input_shape)}"
        )
    check_positive("latent", latent)
    check_positive("width", width)
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}. Received: loss={loss!r}")
    classes = len(spec.class_names) if conditional else 0
    if conditional and classes < 2:
        raise ConfigError(
            f"cgan is class-conditional and needs data with at least 2 named classes; dataset "
            f"{spec.name or '(unnamed)'!r} has {classes}. Use dcgan for data without classes"
        )
    generator = Generator(tuple(spec.input_shape), latent, width, classes)
    discriminator = Discriminator(spec, width, classes, spectral)
    return GAN(generator, discriminator, loss, spec.class_names if conditional else ())


@register_model(
    "dcgan",
    modalities=("image",),
    tasks=("generate",),
    description="DCGAN: upsampling-conv generator and spectral-norm conv discriminator (any C x H x W)",
)
def dcgan(
    spec: DataSpec, latent: int = 64, width: int = 32, loss: str = "hinge", spectral_norm: bool = True
) -> nn.Module:
    """An unconditional GAN for ``C x H x W`` images.

    Args:
        spec: the image data (``generate`` task).
        latent: noise dimensions.
        width: channels of the generator's last block and the discriminator's first (x2 per scale).
        loss: ``hinge`` (default, with spectral norm the most stable) or ``bce`` (the original,
            non-saturating GAN loss).
        spectral_norm: spectral normalisation on every discriminator layer.
    """
    return _build(spec, False, latent, width, loss, spectral_norm)


@register_model(
    "cgan",
    modalities=("image",),
    tasks=("generate",),
    description="class-conditional GAN: label embedding in the generator, projection discriminator",
)
def cgan(
    spec: DataSpec, latent: int = 64, width: int = 32, loss: str = "hinge", spectral_norm: bool = True
) -> nn.Module:
    """A class-conditional GAN for ``C x H x W`` images with at least two classes.

    Args:
        spec: the image data (``generate`` task, with class names).
        latent: noise dimensions (the label embedding has as many).
        width: channels of the generator's last block and the discriminator's first (x2 per scale).
        loss: ``hinge`` (default) or ``bce``.
        spectral_norm: spectral normalisation on every discriminator layer (and its class embedding).
    """
    return _build(spec, True, latent, width, loss, spectral_norm)
