"""What an attack budget ``eps`` means for each modality, and the errors that say so in its own words.

Every continuous input is attacked in the unit box (``glassnet.robustness.bounds``): images are
already in [0, 1], so linf eps is on the pixel scale (8/255 = 0.031); the values of tables, time
series and spectrograms are scaled to their training range, so linf eps is a fraction of each
feature's range. Text is attacked in embedding space: eps is the radius of each token's L2 ball as
a fraction of the mean embedding norm. No torch here: the command line reads ``EPS_HELP``.
"""

from __future__ import annotations

import math

from glassnet.errors import ConfigError

EPS_HELP = (
    "budgets in the data's own units (default: 0.01 0.02 0.05 0.1 for linf): images on the 0-1 pixel scale "
    "(8/255 = 0.031); tables, time series and spectrograms a fraction of each feature's range, between 0 and 1; "
    "text the radius per token as a fraction of the mean embedding norm"
)
RANGED = {"tabular": "tables", "sequence": "time series", "audio": "spectrograms"}


def units(modality: str | None) -> str:
    """What eps measures for ``modality``, in a few words."""
    if modality == "image":
        return "pixel values in [0, 1]"
    if modality == "text":
        return "a fraction of the mean embedding norm per token"
    return "a fraction of each feature's range"


def check_budget(eps: float, norm: str, modality: str | None, size: int) -> None:
    """Refuse an ``eps`` outside the sensible range of ``modality``, saying what eps means there.

    Args:
        eps: one budget.
        norm: ``linf`` or ``l2``.
        modality: the data's modality (None: unknown, the values' range is the box).
        size: values in one example (the diagonal of the unit box is ``sqrt(size)``).

    Raises:
        ConfigError: eps is not a finite number > 0, or lies beyond the box the inputs live in.
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"eps must be a finite number > 0 ({units(modality)}). Received: eps={eps!r}")
    if modality == "text":
        return  # a radius relative to the embeddings' norm: any positive value is a ball
    if norm == "l2":
        diagonal = math.sqrt(max(size, 1))
        if eps > diagonal:
            raise ConfigError(
                f"l2 eps {eps:g} is longer than the diagonal of the input box ({diagonal:.3g} for {size} values "
                f"in [0, 1]{'' if modality == 'image' else ', each scaled to its range'}): every input would be "
                "within reach. Choose eps below it"
            )
        return
    if eps <= 1:
        return
    if modality == "image":
        if eps <= 255:
            raise ConfigError(
                f"linf eps must be <= 1 for images, whose pixels are in [0, 1]; eps {eps:g} is on the 0-255 scale: "
                f"use eps {eps / 255:.3g} (= {eps:g}/255)"
            )
        raise ConfigError(f"linf eps must be <= 1 for images, whose pixels are in [0, 1]. Received: eps={eps:g}")
    what = RANGED.get(modality or "", "these inputs")
    hint = f"; for {eps:g}% use eps {eps / 100:g}" if eps <= 100 else ""
    raise ConfigError(
        f"linf eps must be <= 1 for {what}: eps is a fraction of each feature's range, between 0 and 1 (0.05 lets "
        f"each feature move by 5% of its training range). Received: eps={eps:g}{hint}"
    )
