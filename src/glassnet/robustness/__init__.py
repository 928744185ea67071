"""Audit stage ``robustness``: attacks and robustness evaluation with gradient-masking checks.

Adversarial training is a training step of the learning layer (``glassnet.train.steps.adversarial``).
"""

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
