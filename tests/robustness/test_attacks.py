"""The attacks: they stay in the eps ball and the valid box, they fool an undefended model, they reject bad input."""

from __future__ import annotations

import pytest
import torch

from glassnet.errors import ConfigError, UnknownNameError
from glassnet.robustness import BoxModel, InputBounds, apgd_targeted, attack_info, list_attacks, run_attack
from glassnet.robustness.attacks import _bump, _bump_pair, dlr_loss, margin, project


def _data(bundle, n=64):
    x, y = bundle.test.tensors if len(bundle.test) >= n else bundle.train.tensors
    return x[:n], y[:n]


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _norm(delta, norm):
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def test_registry_lists_every_attack_of_the_issue():
    assert set(list_attacks()) == {"fgsm", "pgd", "apgd-ce", "apgd-dlr", "cw", "deepfool", "square"}
    assert attack_info("square").gradient_free
    assert attack_info("cw").minimum_norm and attack_info("deepfool").minimum_norm
    assert not attack_info("deepfool").targeted


BUDGET = [
    (name, norm)
    for name in ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "square")
    for norm in ("linf", "l2")
    if norm in attack_info(name).norms
]


@pytest.mark.parametrize(("name", "norm"), BUDGET)
def test_budget_attacks_stay_inside_the_ball_and_the_box(image_model, quadrants, name, norm):
    x, y = _data(quadrants)
    eps = 0.1 if norm == "linf" else 0.5
    options = {"steps": 5} if name in ("pgd", "apgd-ce", "apgd-dlr") else {}
    adv = run_attack(name, image_model, x, y, eps, norm, **options)
    assert adv.shape == x.shape and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    assert (_norm(adv - x, norm) <= eps * (1 + 1e-5)).all()


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "square"])
def test_budget_attacks_fool_an_undefended_model_at_a_large_eps(image_model, quadrants, name):
    x, y = _data(quadrants)
    clean = _accuracy(image_model, x, y)
    assert clean > 0.9
    options = {"queries": 300} if name == "square" else {}
    adv = run_attack(name, image_model, x, y, 0.4, "linf", **options)
    assert _accuracy(image_model, adv, y) < clean - 0.5


def test_pgd_is_at_least_as_strong_as_fgsm(image_model, quadrants):
    x, y = _data(quadrants)
    fgsm = _accuracy(image_model, run_attack("fgsm", image_model, x, y, 0.25), y)
    pgd = _accuracy(image_model, run_attack("pgd", image_model, x, y, 0.25, steps=20), y)
    assert pgd <= fgsm


def test_targeted_pgd_reaches_the_target(image_model, quadrants):
    x, y = _data(quadrants)
    target = (y + 1) % 4
    adv = run_attack("pgd", image_model, x, y, 0.6, "linf", target=target, steps=30)
    with torch.no_grad():
        reached = (image_model(adv).argmax(1) == target).float().mean()
    assert reached > 0.9


def test_targeted_apgd_over_several_classes_fools_as_an_untargeted_attack(image_model, quadrants):
    x, y = _data(quadrants)
    adv = apgd_targeted(image_model, x, y, 0.4, "linf", classes=3, steps=20)
    assert _accuracy(image_model, adv, y) < 0.2
    assert ((adv - x).abs().amax() <= 0.4 + 1e-6).item()


@pytest.mark.parametrize(("name", "norm"), [("cw", "l2"), ("deepfool", "l2"), ("deepfool", "linf")])
def test_minimum_norm_attacks_succeed_with_default_settings(image_model, quadrants, name, norm):
    x, y = _data(quadrants, 32)
    adv = run_attack(name, image_model, x, y, 0.0, norm)
    assert adv.min() >= 0 and adv.max() <= 1
    assert _accuracy(image_model, adv, y) < 0.1
    sizes = _norm(adv - x, norm)
    assert sizes.median() < (2.0 if norm == "l2" else 0.5)  # a small perturbation, not a different image


def test_cw_perturbations_are_close_to_minimal(image_model, quadrants):
    x, y = _data(quadrants, 32)
    cw = _norm(run_attack("cw", image_model, x, y, 0.0, "l2") - x, "l2")
    fgm = run_attack("fgsm", image_model, x, y, float(cw.median()) / 2, "l2")
    # half the median CW norm is not enough for a one-step attack: CW's sizes are close to minimal
    assert _accuracy(image_model, fgm, y) > 0.3


def test_targeted_cw_reaches_the_target(image_model, quadrants):
    x, y = _data(quadrants, 16)
    target = (y + 2) % 4
    adv = run_attack("cw", image_model, x, y, 0.0, "l2", target=target)
    with torch.no_grad():
        assert (image_model(adv).argmax(1) == target).float().mean() > 0.9


def test_square_never_asks_for_gradients(image_model, quadrants):
    x, y = _data(quadrants, 16)

    class NoGradient(torch.nn.Module):
        def forward(self, inputs):
            assert not torch.is_grad_enabled(), "a black-box attack used gradients"
            return image_model(inputs)

    run_attack("square", NoGradient(), x, y, 0.3, queries=20)


def test_l2_square_fools_an_undefended_digits_model_inside_the_ball_and_the_box(digits_model):
    model, x, y = digits_model
    assert _accuracy(model, x, y) > 0.95
    adv = run_attack("square", model, x, y, 1.0, "l2", queries=500, generator=torch.Generator().manual_seed(0))
    assert _accuracy(model, adv, y) < 0.15  # measured 0.055 (APGD-CE, 50 steps: 0.023); clean 0.99
    assert adv.min() >= 0 and adv.max() <= 1
    assert (_norm(adv - x, "l2") <= 1.0 * (1 + 1e-5)).all()


def test_l2_square_never_asks_for_gradients_and_respects_a_small_ball(image_model, quadrants):
    x, y = _data(quadrants, 16)

    class NoGradient(torch.nn.Module):
        def forward(self, inputs):
            assert not torch.is_grad_enabled(), "a black-box attack used gradients"
            return image_model(inputs)

    adv = run_attack("square", NoGradient(), x, y, 0.05, "l2", queries=30)
    assert (_norm(adv - x, "l2") <= 0.05 * (1 + 1e-5)).all() and adv.min() >= 0 and adv.max() <= 1


def test_square_l2_building_blocks():
    block = _bump(5, 5)
    assert block.argmax() == 12 and torch.equal(block, block.flip(0)) and torch.equal(block, block.T)
    assert block[0, 0] < block[1, 1] < block[2, 2]
    pair = _bump_pair(4, 6)
    assert torch.allclose(pair[:, :3], -pair[:, 3:].flip(1)) and pair.sum().abs() < 1e-6
    assert _bump_pair(1, 5).shape == (1, 5)  # tables: windows are segments


def test_square_on_tables_views_rows_as_segments(tabular_model, blobs_bundle):
    x, y = blobs_bundle.test.tensors
    bounds = InputBounds(x.amin(0), x.amax(0), "test")
    boxed = BoxModel(tabular_model, bounds)
    z = bounds.to_unit(x)
    for norm, eps in (("linf", 0.3), ("l2", 0.6)):
        adv = run_attack("square", boxed, z, y, eps, norm, queries=200, generator=torch.Generator().manual_seed(0))
        assert adv.shape == z.shape and adv.min() >= 0 and adv.max() <= 1
        assert (_norm(adv - z, norm) <= eps * (1 + 1e-5)).all()
        assert _accuracy(boxed, adv, y) < _accuracy(boxed, z, y)


def test_attacks_are_reproducible_with_a_seeded_generator(image_model, quadrants):
    x, y = _data(quadrants, 16)
    first = run_attack("pgd", image_model, x, y, 0.1, generator=torch.Generator().manual_seed(3), steps=3)
    second = run_attack("pgd", image_model, x, y, 0.1, generator=torch.Generator().manual_seed(3), steps=3)
    assert torch.equal(first, second)


def test_project_clips_to_the_ball_and_the_box():
    x = torch.full((2, 3), 0.5)
    far = torch.tensor([[2.0, -1.0, 0.55], [0.5, 0.5, 0.9]])
    linf = project(far, x, 0.1, "linf")
    assert torch.allclose(linf, torch.tensor([[0.6, 0.4, 0.55], [0.5, 0.5, 0.6]]))
    l2 = project(far, x, 0.1, "l2")
    assert torch.all((l2 - x).norm(dim=1) <= 0.1 + 1e-6) and l2.min() >= 0 and l2.max() <= 1


def test_margin_is_negative_exactly_on_success():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 0])
    assert margin(logits, y).tolist() == [2.0, -2.0]
    assert margin(logits, y, target=torch.tensor([2, 1])).tolist() == [3.0, -1.0]


def test_dlr_loss_ignores_the_scale_and_shift_of_the_logits():
    logits = torch.randn(5, 10)
    y = torch.arange(5)
    assert torch.allclose(dlr_loss(logits, y), dlr_loss(7 * logits + 3, y), atol=1e-5)
    target = (y + 1) % 10
    assert torch.allclose(dlr_loss(logits, y, target), dlr_loss(0.5 * logits - 1, y, target), atol=1e-5)


def test_unknown_attack_names_the_choices(image_model, quadrants):
    x, y = _data(quadrants, 4)
    with pytest.raises(UnknownNameError, match="Did you mean 'pgd'"):
        run_attack("pgdd", image_model, x, y, 0.1)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("cw", {"norm": "linf"}, "supports norm l2"),
        ("square", {"p_init": 1.5}, "p_init must be in"),
        ("square", {"queries": 0}, "queries must be an integer >= 1"),
        ("pgd", {"norm": "l3"}, "norm must be one of"),
        ("pgd", {"eps": 0.0}, "eps must be a finite number > 0"),
        ("pgd", {"eps": float("nan")}, "eps must be a finite number > 0"),
        ("pgd", {"eps": 1.5}, "linf eps must be <= 1"),
        ("deepfool", {"target": torch.zeros(4, dtype=torch.long)}, "untargeted only"),
        ("pgd", {"steps": 0}, "steps must be an integer >= 1"),
        ("pgd", {"loss": "hinge"}, "unknown loss"),
        ("fgsm", {"steps": 3}, "unexpected keyword"),
    ],
)
def test_bad_attack_arguments_get_a_clear_error(image_model, quadrants, name, kwargs, message):
    x, y = _data(quadrants, 4)
    kwargs = {"eps": 0.1, **kwargs}
    with pytest.raises((ConfigError, UnknownNameError), match=message):
        run_attack(name, image_model, x, y, **kwargs)
