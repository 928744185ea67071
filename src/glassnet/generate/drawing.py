"""Drawing images from an opened generative run, for sampling and for generated training data.

This module needs no ``Run`` (``glassnet.generate.sampling`` opens runs), so the training layer
can draw a generator's images while it loads a classifier's data (``data.generated=RUN``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from glassnet.errors import ConfigError, RunError, UnknownNameError

MAX_IMAGES = 100_000


def require_generative(opened: Any) -> Any:
    """``opened`` (a ``Run``) when it is generative, else ``RunError`` saying what to do."""
    if opened.spec.task != "generate":
        raise RunError(
            f"'{opened.path}' is a {opened.spec.task} run, not a generative one: generate draws images from a run "
            f"trained with a generative model, e.g. `glassnet train --data digits --model cgan --out runs/cgan`"
        )
    return opened


def class_indices(classes: Any, names: Sequence[str], n: int, conditional: bool) -> torch.Tensor | None:
    """The class of each of ``n`` images from ``classes`` (a name, an index, or a list cycled over the images).

    Raises:
        ConfigError: classes for an unconditional model, or an index out of range.
        UnknownNameError: a class name the run does not have.
    """
    if classes is None or (isinstance(classes, (list, tuple)) and not classes):
        return (torch.arange(n) % len(names)) if conditional else None
    if not conditional:
        raise ConfigError(
            "this run's model is unconditional (dcgan): it cannot be asked for a class. Drop --class, or train a "
            "class-conditional model (--model cgan)"
        )
    items = list(classes) if isinstance(classes, (list, tuple)) else [classes]
    indices = []
    for item in items:
        if isinstance(item, str) and item in names:
            indices.append(list(names).index(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(names):
                raise ConfigError(f"class index {item} is out of range; the run has classes 0..{len(names) - 1}")
            indices.append(item)
        else:
            raise UnknownNameError("class", str(item), names)
    return torch.tensor(indices).repeat((n + len(indices) - 1) // len(indices))[:n]


def draw(
    opened: Any, n: int = 64, classes: Any = None, seed: int = 0, ema: bool = True, **options: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` images from an opened generative run, and the class of each (None when unconditional).

    ``options`` go to the model's ``sample``: a diffusion model's ``steps``, ``guidance`` and ``eta``
    (None values are left out).

    Raises:
        RunError: the run is not generative.
        ConfigError: ``n`` out of range, classes for an unconditional run, or an option the model's
            sampler does not take (``steps`` on a GAN).
        UnknownNameError: a class name the run does not have.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise ConfigError(f"n must be an integer in [1, {MAX_IMAGES:,}]. Received: n={n!r}")
    model = require_generative(opened).model.cpu().eval()
    options = {key: value for key, value in options.items() if value is not None}
    accepted = inspect.signature(model.sample).parameters
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)} applies to diffusion runs (ddpm); this run's model is "
            f"{getattr(model, 'glassnet_arch', {}).get('name', type(model).__name__)}, which draws in one pass"
        )
    labels = class_indices(classes, opened.spec.class_names, n, model.conditional)
    generator = torch.Generator().manual_seed(int(seed))
    parts = []
    for start in range(0, n, 500):
        part = labels[start : start + 500] if labels is not None else None
        parts.append(model.sample(min(500, n - start), labels=part, generator=generator, ema=ema, **options).cpu())
    return torch.cat(parts), labels
