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


def _texts(n: int = 24, length: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid-token masks of texts with random lengths (padding at the end), and each token's index."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, length + 1, (n,), generator=g)
    steps = torch.arange(length).expand(n, length)
    return steps < lengths[:, None], steps


def test_text_randomisation_fails_attributions_that_depend_on_position_only():
    valid, steps = _texts()
    last = torch.where(valid, steps, torch.full_like(steps, -1)).max(dim=1).values[:, None]
    from_end = (last - steps).float()
    trained = torch.exp(-0.3 * from_end) * valid  # a recurrence fading with the distance to the end
    randomised = (12.0 - steps.float()) * valid  # another profile, falling from the start
    result = trust.randomisation_test(trained, randomised, "text", valid=valid)
    assert result["example_share"] < 1e-6  # nothing is left once the position profile is removed
    assert not result["passed"]
    # and without the removal the two profiles would have passed as "different"
    assert trust.randomisation_test(trained, randomised, "text", valid=valid, positional=False)["passed"]


def test_text_randomisation_fails_the_same_attributions_for_both_models():
    valid, steps = _texts()
    torch.manual_seed(0)
    same = (torch.randn(valid.shape) + 0.2 * steps) * valid
    result = trust.randomisation_test(same, 3 * same, "text", valid=valid)
    assert result["rank_correlation"] > 0.99 and not result["passed"]


def test_text_randomisation_compares_what_varies_beyond_position():
    valid, steps = _texts()
    torch.manual_seed(0)
    profile = torch.exp(-0.3 * (11 - steps.float()))
    trained = (profile + 0.6 * torch.rand(valid.shape)) * valid  # the shared profile plus what the text adds
    randomised = (profile + 0.02 * torch.rand(valid.shape)) * valid  # the profile and noise
    result = trust.randomisation_test(trained, randomised, "text", valid=valid)
    assert result["raw_rank_correlation"] > 0.35  # the raw comparison is dominated by the shared profile
    assert abs(result["rank_correlation"]) < 0.3 and result["example_share"] > 0.25 and result["passed"]


def test_position_residuals_remove_profiles_anchored_at_either_end():
    valid, steps = _texts(seed=1)
    last = torch.where(valid, steps, torch.full_like(steps, -1)).max(dim=1).values[:, None]
    values = (torch.log1p(steps.float()) + 0.7 * (last - steps).float()) * valid
    residual, share = trust.position_residuals(values, valid)
    assert residual[valid].abs().max() < 1e-4 and share < 1e-6
    assert torch.all(residual[~valid] == 0)
