"""What ``attack`` says: a progress bar per (attack, eps) point when asked, and eps errors in the data's own units."""

from __future__ import annotations

import io

import pytest

from glassnet.errors import ConfigError
from glassnet.robustness import robustness
from glassnet.robustness.units import check_budget


def test_robustness_draws_a_bar_over_the_attack_points_only_when_asked(image_model, quadrants, capsys):
    stream = io.StringIO()
    robustness(
        image_model, quadrants, eps=[0.05, 0.1], attack=["fgsm", "deepfool"], limit=24, worst_case=False, checks=False,
        progress=stream,
    )  # fmt: skip
    last = stream.getvalue().splitlines()[-1]
    # fgsm at 2 eps, deepfool once (one run of a minimum-norm attack gives every eps)
    assert last.startswith("attack: 100%") and "3/3 points" in last and "[00:0" in last
    robustness(image_model, quadrants, eps=[0.05], attack=["fgsm"], limit=8, worst_case=False, checks=False)
    assert capsys.readouterr().err == ""


def test_image_eps_on_the_pixel_scale_is_refused_with_the_value_to_use(image_model, quadrants):
    with pytest.raises(
        ConfigError,
        match=r"images, whose pixels are in \[0, 1\]; eps 8 is on the 0-255 scale: use eps 0.0314 \(= 8/255\)",
    ):
        robustness(image_model, quadrants, eps=[8], attack=["fgsm"], limit=8)


def test_table_eps_is_a_fraction_of_each_feature_range(tabular_model, blobs_bundle):
    with pytest.raises(ConfigError, match="for tables: eps is a fraction of each feature's range, between 0 and 1"):
        robustness(tabular_model, blobs_bundle, eps=[5], attack=["fgsm"], limit=8)
    with pytest.raises(ConfigError, match="for 5% use eps 0.05"):
        robustness(tabular_model, blobs_bundle, eps=[0.1, 5], attack=["fgsm"], limit=8)
    result = robustness(tabular_model, blobs_bundle, eps=[0.1], attack=["fgsm"], limit=8, worst_case=False)
    assert result.eps == [0.1]


@pytest.mark.parametrize(
    ("eps", "norm", "modality", "size", "message"),
    [
        (300, "linf", "image", 64, r"must be <= 1 for images.*Received: eps=300"),
        (0, "linf", "image", 64, r"eps must be a finite number > 0 \(pixel values in \[0, 1\]\)"),
        (-1, "linf", "text", 12, "a fraction of the mean embedding norm per token"),
        (float("nan"), "linf", "tabular", 5, "finite number > 0"),
        (2, "linf", "sequence", 30, "for time series: eps is a fraction of each feature's range"),
        (1.5, "linf", "audio", 100, "for spectrograms: eps is a fraction"),
        (9, "l2", "image", 64, r"longer than the diagonal of the input box \(8 for 64 values"),
    ],
)
def test_budgets_outside_the_sensible_range_say_what_eps_means(eps, norm, modality, size, message):
    with pytest.raises(ConfigError, match=message):
        check_budget(eps, norm, modality, size)


@pytest.mark.parametrize(
    ("eps", "norm", "modality"),
    [(1, "linf", "image"), (0.031, "linf", "tabular"), (3, "l2", "image"), (2, "l2", "text")],
)
def test_budgets_in_range_pass(eps, norm, modality):
    check_budget(eps, norm, modality, 64)
