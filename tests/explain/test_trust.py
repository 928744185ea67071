"""The trust checks tell a faithful explanation from a random one, and a learned one from an input copy."""

from __future__ import annotations

import torch
from torch import nn

from glassnet.explain import trust


def linear_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(20, 2)
    x = torch.randn(32, 20)
    exact = x * (model.weight[1] - model.weight[0]).detach()  # each feature's exact share of logit 1 - logit 0
    return model.eval(), x, exact


def test_deletion_and_insertion_favour_exact_attributions():
    model, x, exact = linear_model()
    targets = torch.ones(len(x), dtype=torch.long)
    result = trust.deletion_insertion(model, x, exact, targets, torch.zeros_like(x), "tabular")
    assert result["passed"] and result["deletion_auc"] < result["random_deletion_auc"] - 0.05
    assert result["deletion"][0] == result["insertion"][-1]  # nothing removed = everything inserted
    backwards = trust.deletion_insertion(model, x, -exact, targets, torch.zeros_like(x), "tabular")
    assert not backwards["deletion_beats_random"] and not backwards["passed"]


def test_deletion_leaves_invalid_units_alone():
    model, x, exact = linear_model()
    valid = torch.zeros(x.shape, dtype=torch.bool)
    valid[:, :5] = True
    targets = torch.ones(len(x), dtype=torch.long)
    result = trust.deletion_insertion(model, x, exact, targets, torch.zeros_like(x), "tabular", valid=valid)
    kept = x.clone()
    kept[:, :5] = 0
    final = trust.output_scores(model, kept, targets, 64).mean()
    assert abs(result["deletion"][-1] - float(final)) < 1e-5


def test_infidelity_of_exact_attributions_beats_random():
    model, x, exact = linear_model()
    targets = torch.ones(len(x), dtype=torch.long)

    class Margin(nn.Module):  # logit 1 - logit 0: linear, so exact attributions have zero infidelity
        def forward(self, inputs):
            out = model(inputs)
            return torch.stack([-(out[:, 1] - out[:, 0]), out[:, 1] - out[:, 0]], dim=1)

    result = trust.infidelity_scores(Margin(), x, exact, targets, 0.1, baseline=torch.zeros_like(x))
    assert result["passed"] and result["infidelity"] < 1e-6 < result["random_infidelity"]


def test_max_sensitivity_is_zero_for_a_constant_explanation_and_positive_otherwise():
    x = torch.rand(4, 6)
    targets = torch.zeros(4, dtype=torch.long)
    steady = trust.max_sensitivity(lambda inputs, target: torch.ones_like(inputs), x, targets, 0.05)
    assert steady["max_sensitivity"] == 0
    jumpy = trust.max_sensitivity(lambda inputs, target: inputs.clone(), x, targets, 0.05)
    assert 0 < jumpy["max_sensitivity"] < 1


def test_randomised_copy_redraws_weights_but_keeps_the_original():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    before = model[0].weight.clone()
    clone = trust.randomised_copy(model, seed=1)
    assert torch.equal(model[0].weight, before)
    assert not torch.allclose(clone[0].weight, before)


def test_randomisation_test_fails_identical_and_passes_unrelated_attributions():
    torch.manual_seed(0)
    a = torch.randn(16, 30)
    same = trust.randomisation_test(a, a * 2, "tabular")
    assert same["rank_correlation"] > 0.99 and not same["passed"]
    other = trust.randomisation_test(a, torch.randn(16, 30), "tabular")
    assert abs(other["rank_correlation"]) < 0.2 and other["passed"]


def test_rank_correlation_handles_ties_and_masks():
    a = torch.tensor([[1.0, 2.0, 3.0, 3.0]])
    assert trust.rank_correlation(a, a).item() == 1.0
    valid = torch.tensor([[True, True, False, False]])
    assert trust.rank_correlation(a, -a, valid).item() == -1.0
