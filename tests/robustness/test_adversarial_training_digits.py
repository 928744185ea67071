"""Slow: a digits CNN trained with PGD at eps = 0.1 beats its undefended twin's robust accuracy by >= 30 points.

Both twins share the architecture, seed and schedule; robust accuracy is the worst case over
PGD, APGD-CE, targeted APGD-DLR and Square at linf eps = 0.1 on the digits test split (270 images).
Measured when written: undefended 0.44, PGD-trained 0.77 (clean 0.99 both).
"""

from __future__ import annotations

import pytest
import torch

import glassnet as gn
from glassnet.robustness import robustness
from glassnet.train.steps.adversarial import adversarial_step

pytestmark = pytest.mark.slow


def _robust_accuracy(adversarial: dict | None) -> tuple[float, float]:
    bundle = gn.load_dataset("digits")
    torch.manual_seed(0)
    model = gn.create_model("cnn", bundle.spec, channels=[16, 32], hidden=64, dropout=0.0)
    step = adversarial_step(adversarial, bundle.spec) if adversarial else None
    gn.Trainer(task="classify", max_epochs=15, lr=3e-3, seed=0, step=step).fit(model, bundle.train)
    result = robustness(model, bundle, eps=[0.1], attack="pgd", apgd_steps=20, square_queries=200, checks=False)
    return result.clean_accuracy, result.worst_case["accuracy"][0]


def test_pgd_training_beats_the_undefended_twin_by_30_points():
    clean_plain, robust_plain = _robust_accuracy(None)
    clean_pgd, robust_pgd = _robust_accuracy({"method": "pgd", "eps": 0.1, "steps": 5})
    assert clean_plain > 0.95 and clean_pgd > 0.9
    assert robust_pgd >= robust_plain + 0.30, (robust_plain, robust_pgd)
