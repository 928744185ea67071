"""Audit stage ``robustness``: attacks and robustness evaluation with gradient-masking checks.

Adversarial training is a training step of the learning layer (``glassnet.train.steps.adversarial``).
The names below load on first use, so that the light ``glassnet.robustness.units`` imports without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glassnet.lazy import lazy_exports

if TYPE_CHECKING:
    from glassnet.robustness.attacks import (
        AttackInfo,
        apgd_ce,
        apgd_dlr,
        apgd_targeted,
        attack_info,
        carlini_wagner,
        deepfool,
        fgsm,
        list_attacks,
        pgd,
        run_attack,
        square,
    )
    from glassnet.robustness.bounds import BoxModel, InputBounds, input_bounds
    from glassnet.robustness.embedding import embedding_apgd, embedding_pgd
    from glassnet.robustness.evaluate import RobustnessResult, robustness
    from glassnet.robustness.stage import attack_run, robustness_run

_HOMES = {
    **dict.fromkeys(
        (
            "AttackInfo",
            "apgd_ce",
            "apgd_dlr",
            "apgd_targeted",
            "attack_info",
            "carlini_wagner",
            "deepfool",
            "fgsm",
            "list_attacks",
            "pgd",
            "run_attack",
            "square",
        ),
        "glassnet.robustness.attacks",
    ),
    **dict.fromkeys(("BoxModel", "InputBounds", "input_bounds"), "glassnet.robustness.bounds"),
    **dict.fromkeys(("embedding_apgd", "embedding_pgd"), "glassnet.robustness.embedding"),
    **dict.fromkeys(("RobustnessResult", "robustness"), "glassnet.robustness.evaluate"),
    **dict.fromkeys(("attack_run", "robustness_run"), "glassnet.robustness.stage"),
}

__all__ = [
    "AttackInfo",
    "BoxModel",
    "InputBounds",
    "RobustnessResult",
    "apgd_ce",
    "apgd_dlr",
    "apgd_targeted",
    "attack_info",
    "carlini_wagner",
    "deepfool",
    "embedding_apgd",
    "embedding_pgd",
    "fgsm",
    "input_bounds",
    "list_attacks",
    "pgd",
    "attack_run",
    "robustness",
    "robustness_run",
    "run_attack",
    "square",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
