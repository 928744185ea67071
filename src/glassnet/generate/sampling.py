"""Sampling from a generative run: ``gn.generate(run, n, classes=..., seed=...)`` and ``glassnet generate``'s PNGs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from glassnet.errors import ConfigError
from glassnet.generate.drawing import MAX_IMAGES, draw, require_generative


def _open(run: Any) -> Any:
    """The ``Run`` of a generative run (``RunError`` with what to do for any other run)."""
    from glassnet.train.run import Run

    return require_generative(Run.open(run))


def generate(
    run: Any, n: int = 64, classes: Any = None, seed: int = 0, ema: bool = True, **options: Any
) -> torch.Tensor:
    """New images from a generative run, in the data's value range (images in [0, 1]).

    Args:
        run: a ``Run`` or the directory of a run trained with ``dcgan`` or ``cgan``.
        n: how many images.
        classes: for a conditional run: a class name (or index) for every image, or a list of
            them cycled over the images; None draws every class in turn.
        seed: seeds the noise: the same seed gives the same images.
        ema: draw from the generator's moving average (default) or from the last trained weights.
        **options: a diffusion run's sampling options: ``steps`` (DDIM steps), ``guidance``
            (classifier-free guidance weight), ``eta`` (0: deterministic DDIM, 1: DDPM's noise).

    Returns:
        ``n x C x H x W`` images on the CPU.

    Raises:
        RunError: the run is missing or not generative.
        ConfigError: ``n`` below 1, classes for an unconditional run, or sampling options for a GAN.
        UnknownNameError: a class name the run does not have.
    """
    return sample_run(run, n, classes, seed, ema, **options)[0]


def sample_run(
    run: Any, n: int = 64, classes: Any = None, seed: int = 0, ema: bool = True, **options: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``generate``, and the class of each image (None for an unconditional run)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise ConfigError(f"n must be an integer in [1, {MAX_IMAGES:,}]. Received: n={n!r}")
    return draw(_open(run), n, classes, seed, ema, **options)


def with_generated(bundle: Any, run: Any, per_class: int | None = None, seed: int = 0) -> Any:
    """``bundle`` with ``per_class`` images of every class from the cgan ``run`` (a ``Run`` or its directory)
    appended to its training split: ``glassnet.generate.augment.add_generated`` on the opened run."""
    from glassnet.generate.augment import add_generated

    return add_generated(bundle, _open(run), per_class, seed)


def write_samples(
    images: torch.Tensor, out: str | os.PathLike[str], names: Sequence[str] = (), labels: Any = None
) -> list[Path]:
    """Write images as one PNG grid (``out`` ends in ``.png``) or one PNG per image into the folder ``out``.

    Returns:
        The files written.

    Raises:
        ConfigError: ``out`` is an existing file that is not a ``.png``, or a folder path is a file.
    """
    from glassnet.generate.figures import mosaic, upscale, write_png

    out = Path(out)
    scale = upscale(*images.shape[2:4])
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        return [write_png(mosaic(images), out, scale)]
    if out.suffix:
        raise ConfigError(f"--out must be a .png file (one grid) or a folder (one PNG per image). Received: {out}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder or a .png path")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images):
        tag = f"-{_safe(names[int(labels[i])])}" if labels is not None and names else ""
        written.append(write_png(mosaic(image[None], pad=0), out / f"sample-{i:04d}{tag}.png", scale))
    return written


def _safe(name: str) -> str:
    """A class name as a file-name part (letters, digits, ``-`` and ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40] or "class"
