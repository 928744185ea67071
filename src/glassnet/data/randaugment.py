"""Weak and strong views of unlabelled batches, for consistency training (FixMatch, Mean Teacher).

- ``WeakView``: images flipped horizontally (with probability ``hflip``) and shifted by up to
  ``shift`` of their size (whole pixels, reflected borders): FixMatch's weak augmentation.
- ``StrongView``: a RandAugment-style view. Each image gets ``ops`` operations drawn at random
  from autocontrast, brightness, contrast, sharpness, posterize, solarize, identity (and colour
  saturation for RGB), rotate, shear x/y, translate x/y, each with its own random magnitude (the
  variant FixMatch uses, no magnitude to tune), then a cutout square of 25-50% of the side, filled
  with grey.
- ``NoiseView``: for inputs that are not images (tables, spectrograms, series): Gaussian noise of
  ``noise`` times each feature's spread in the batch, and, when ``drop`` > 0, a random share of the
  features replaced by their batch mean. Weak views use little noise, strong ones more plus drops.

Every operation is written with plain torch tensor operations on the batch's device, vectorised
over the batch, and draws its random numbers from torch's global generator (so the trainer's seed
makes runs repeat). Images are ``N x C x H x W`` in [0, 1] and stay there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.errors import ConfigError

_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


class WeakView(nn.Module):
    """Flip and shift: ``view(images) -> images`` (see the module docstring).

    Args:
        hflip: probability of a horizontal flip (0 for digits and text-like images, where it changes the class).
        shift: largest shift as a fraction of the height and width, in [0, 0.5).
    """

    def __init__(self, hflip: float = 0.5, shift: float = 0.125) -> None:
        super().__init__()
        if not 0 <= hflip <= 1:
            raise ConfigError(f"hflip must be a probability in [0, 1]. Received: hflip={hflip!r}")
        if not 0 <= shift < 0.5:
            raise ConfigError(f"shift must be a fraction of the size in [0, 0.5). Received: shift={shift!r}")
        self.hflip, self.shift = hflip, shift

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        device = images.device
        flip = torch.where(torch.rand(n, device=device) < self.hflip, -1.0, 1.0)
        dx = _whole_pixels(n, width, self.shift, device)
        dy = _whole_pixels(n, height, self.shift, device)
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 1, 1] = flip, 1.0
        theta[:, 0, 2], theta[:, 1, 2] = dx, dy
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(
            images, grid.to(images.dtype), mode="nearest", padding_mode="reflection", align_corners=False
        )


class StrongView(nn.Module):
    """RandAugment with random magnitudes, then cutout: ``view(images) -> images``.

    Args:
        ops: operations per image (2 in RandAugment and FixMatch).
        cutout: largest cutout side as a fraction of the image side (0 switches it off); the side is
            drawn from ``[cutout / 2, cutout]``.
        hflip: probability of a horizontal flip first (as in the weak view).
    """

    def __init__(self, ops: int = 2, cutout: float = 0.5, hflip: float = 0.5) -> None:
        super().__init__()
        if isinstance(ops, bool) or not isinstance(ops, int) or ops < 0:
            raise ConfigError(f"ops (RandAugment operations per image) must be a whole number >= 0. Received: {ops!r}")
        if not 0 <= cutout <= 1:
            raise ConfigError(f"cutout must be a fraction of the side in [0, 1]. Received: cutout={cutout!r}")
        self.ops, self.cutout, self.flip = ops, cutout, WeakView(hflip=hflip, shift=0.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = self.flip(images)
        n, channels = images.shape[:2]
        names = _colour_ops(channels) + _GEOMETRIC
        if self.ops:
            picks = torch.randint(len(names), (n, self.ops), device=images.device)
            chosen = F.one_hot(picks, len(names)).sum(dim=1) > 0  # (N, ops): an op drawn twice runs once
            magnitudes = torch.rand(n, len(names), device=images.device)
            images = images.clone()
            for k, name in enumerate(names[: -len(_GEOMETRIC)]):
                if name == "identity":
                    continue
                index = torch.nonzero(chosen[:, k]).flatten()  # only the images that drew this op
                if len(index):
                    images[index] = _COLOUR[name](images[index], magnitudes[index, k])
            images = _geometric(images, chosen[:, -len(_GEOMETRIC) :])
        if self.cutout > 0:
            images = cutout(images, self.cutout)
        return images.clamp(0.0, 1.0)


class NoiseView(nn.Module):
    """A perturbation of non-image inputs: Gaussian noise and feature drops (see the module docstring).

    Args:
        noise: noise std as a fraction of each feature's std in the batch.
        drop: share of the features replaced by their batch mean, in [0, 1).
    """

    def __init__(self, noise: float = 0.1, drop: float = 0.0) -> None:
        super().__init__()
        if not noise >= 0:
            raise ConfigError(f"noise must be >= 0. Received: noise={noise!r}")
        if not 0 <= drop < 1:
            raise ConfigError(f"drop must be in [0, 1). Received: drop={drop!r}")
        self.noise, self.drop = noise, drop

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        mean = inputs.mean(dim=0, keepdim=True)
        std = inputs.std(dim=0, keepdim=True, correction=0) if len(inputs) > 1 else torch.ones_like(mean)
        out = inputs + torch.randn_like(inputs) * (self.noise * std)
        if self.drop > 0:
            dropped = torch.rand_like(inputs) < self.drop
            out = torch.where(dropped, mean.expand_as(inputs), out)
        return out


def cutout(images: torch.Tensor, largest: float) -> torch.Tensor:
    """One grey (0.5) square per image, its side drawn from ``[largest / 2, largest]`` of the smaller side."""
    n, _, height, width = images.shape
    device = images.device
    side = (torch.rand(n, 1, device=device) * 0.5 + 0.5) * largest * min(height, width)
    cy = torch.rand(n, 1, device=device) * height
    cx = torch.rand(n, 1, device=device) * width
    rows = (torch.arange(height, device=device) + 0.5 - cy).abs() <= side / 2  # (N, H)
    cols = (torch.arange(width, device=device) + 0.5 - cx).abs() <= side / 2  # (N, W)
    box = (rows[:, :, None] & cols[:, None, :])[:, None]
    return torch.where(box, torch.full_like(images, 0.5), images)


def _whole_pixels(n: int, size: int, fraction: float, device: torch.device) -> torch.Tensor:
    """Random shifts of up to ``fraction * size`` whole pixels, in ``affine_grid``'s units (2 / size a pixel)."""
    largest = int(fraction * size)
    if largest == 0:
        return torch.zeros(n, device=device)
    return torch.randint(-largest, largest + 1, (n,), device=device).float() * (2.0 / size)


def _per_image(flags: torch.Tensor) -> torch.Tensor:
    return flags.view(-1, 1, 1, 1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other + factor * (images - other)`` per image (PIL's ImageEnhance), clamped to [0, 1]."""
    return (other + factor.view(-1, 1, 1, 1) * (images - other)).clamp(0.0, 1.0)


def _enhance_factor(magnitude: torch.Tensor) -> torch.Tensor:
    return 0.05 + 0.9 * magnitude  # FixMatch's range [0.05, 0.95]: 1 would change nothing


def _grey(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
        return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return images.mean(dim=1, keepdim=True)


def _autocontrast(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    return torch.where(high > low, (images - low) / (high - low).clamp_min(1e-6), images)


def _brightness(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    return _blend(images, torch.zeros_like(images), _enhance_factor(magnitude) * 2)


def _contrast(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    mean = _grey(images).mean(dim=(1, 2, 3), keepdim=True).expand_as(images)
    return _blend(images, mean, _enhance_factor(magnitude) * 2)


def _saturation(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    return _blend(images, _grey(images).expand_as(images), _enhance_factor(magnitude) * 2)


def _sharpness(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    channels = images.shape[1]
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=images.device) / 13
    kernel = kernel.to(images.dtype).expand(channels, 1, 3, 3)
    smooth = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)
    return _blend(images, smooth, _enhance_factor(magnitude) * 2)


def _posterize(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    levels = (2 ** (4 + (magnitude * 4).round())).view(-1, 1, 1, 1)  # 4 to 8 bits
    return (images * (levels - 1)).round() / (levels - 1)


def _solarize(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    threshold = (1 - magnitude).view(-1, 1, 1, 1)  # 1 (nothing) down to 0 (inverted)
    return torch.where(images >= threshold, 1 - images, images)


def _identity(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    return images


_COLOUR = {
    "identity": _identity,
    "autocontrast": _autocontrast,
    "brightness": _brightness,
    "contrast": _contrast,
    "sharpness": _sharpness,
    "posterize": _posterize,
    "solarize": _solarize,
    "saturation": _saturation,
}


def _colour_ops(channels: int) -> tuple[str, ...]:
    names = tuple(name for name in _COLOUR if name != "saturation")
    return (*names, "saturation") if channels == 3 else names


def _geometric(images: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Rotate (up to 30 degrees), shear (up to 0.3) and translate (up to 30%) the images that drew them,
    in one affine resampling; empty borders are black."""
    n = len(images)
    if not bool(chosen.any()):
        return images
    device = images.device

    def amount(k: int, largest: float) -> torch.Tensor:
        sign = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        return chosen[:, k].float() * sign * torch.rand(n, device=device) * largest

    angle = amount(0, math.radians(30))
    shear_x, shear_y = amount(1, 0.3), amount(2, 0.3)
    tx, ty = amount(3, 0.6), amount(4, 0.6)  # affine_grid spans [-1, 1]: 0.6 is 30% of the side
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = cos - sin * shear_y, -sin + cos * shear_x
    theta[:, 1, 0], theta[:, 1, 1] = sin + cos * shear_y, cos + sin * shear_x
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(_per_image(chosen.any(dim=1)), moved, images)
