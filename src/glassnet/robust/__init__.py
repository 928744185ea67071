"""Audit stage ``robust``: attacks, robustness evaluation with gradient-masking checks, adversarial training."""

from glassnet.robust.attacks import (
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
from glassnet.robust.bounds import BoxModel, InputBounds, input_bounds
from glassnet.robust.embedding import embedding_apgd, embedding_pgd
from glassnet.robust.evaluate import RobustnessResult, robustness

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
    "robustness",
    "run_attack",
    "square",
]
