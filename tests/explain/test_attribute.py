"""explain(): equal to Captum's own attributions, chunked within the memory budget, with clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import (
    DeepLift,
    FeatureAblation,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from glassnet.errors import ConfigError, DataError, UnknownNameError
from glassnet.explain import METHODS, explain
from glassnet.explain.attribute import completeness_errors
from glassnet.explain.budget import plan

TINY_MB = 0.25  # about 15 model rows per pass on the tiny CNN: forces many chunks


def _targets(model, x):
    with torch.no_grad():
        return model(x).argmax(dim=1)


@pytest.mark.parametrize("memory_mb", [TINY_MB, 256.0])
def test_gradient_methods_equal_captum(tiny_cnn, memory_mb):
    model, x = tiny_cnn
    t = _targets(model, x)
    zeros = torch.zeros_like(x)
    expected = {
        "saliency": Saliency(model).attribute(x, target=t, abs=True),
        "input_x_gradient": InputXGradient(model).attribute(x, target=t),
        "integrated_gradients": IntegratedGradients(model).attribute(x, baselines=zeros, target=t, n_steps=50),
        "deeplift": DeepLift(model).attribute(x, baselines=zeros, target=t),
    }
    for name, reference in expected.items():
        ours = explain(model, x, name, memory_mb=memory_mb, auto_steps=False)
        assert torch.equal(ours.target, t)
        torch.testing.assert_close(ours.values, reference.detach(), rtol=1e-4, atol=1e-6, msg=name)


def test_grad_cam_equals_captum_upsampled(tiny_cnn):
    model, x = tiny_cnn
    t = _targets(model, x)
    ours = explain(model, x, "grad_cam", layer="features.0", memory_mb=TINY_MB)
    cam = LayerGradCam(model, model.features[0]).attribute(x, target=t, relu_attributions=True)
    reference = LayerAttribution.interpolate(cam, (8, 8), "bilinear")
    torch.testing.assert_close(ours.values.sum(dim=1, keepdim=True), reference.detach(), rtol=1e-4, atol=1e-6)
    assert ours.layer == "features.0"


def test_grad_cam_default_layer_is_the_activation_after_the_last_convolution(tiny_cnn):
    model, x = tiny_cnn
    assert explain(model, x, "gradcam").layer == "features.6"  # conv 4, batch norm 5, ReLU 6


def test_perturbation_methods_equal_captum(tiny_cnn):
    model, x = tiny_cnn
    x = x[:6]
    t = _targets(model, x)
    ours = explain(model, x, "occlusion", window=(1, 2, 2), memory_mb=TINY_MB)
    reference = Occlusion(model).attribute(x, sliding_window_shapes=(1, 2, 2), strides=(1, 1, 1), target=t)
    torch.testing.assert_close(ours.values, reference, rtol=1e-4, atol=1e-6)
    ours = explain(model, x, "feature_ablation", memory_mb=TINY_MB)
    reference = FeatureAblation(model).attribute(x, target=t)  # block 1 on 8 x 8: one feature per pixel
    torch.testing.assert_close(ours.values, reference, rtol=1e-4, atol=1e-6)


def test_random_methods_equal_captum_under_the_same_seed(tiny_cnn):
    model, x = tiny_cnn
    t = _targets(model, x)
    ours = explain(model, x, "gradient_shap", seed=3)
    torch.manual_seed(3)
    np.random.seed(3)  # Captum draws GradientSHAP's interpolation points with NumPy
    reference = GradientShap(model).attribute(x, baselines=torch.zeros_like(x[:1]), n_samples=20, stdevs=0.0, target=t)
    torch.testing.assert_close(ours.values, reference, rtol=1e-4, atol=1e-6)
    ours = explain(model, x, "smoothgrad", seed=3, stdevs=0.1)
    torch.manual_seed(3)
    reference = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=10, stdevs=0.1, target=t)
    torch.testing.assert_close(ours.values, reference, rtol=1e-4, atol=1e-6)


class RowCounter(nn.Module):
    """Records the largest batches that reach the wrapped model, with and without gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # a list shared by reference: explain() may run a (channels-last) copy of the model, and the
        # copy's counts must still reach this counter
        self.seen = _Seen()

    @property
    def largest(self) -> int:
        return self.seen.counts[0]

    @largest.setter
    def largest(self, value: int) -> None:
        self.seen.counts[0] = value

    @property
    def largest_no_grad(self) -> int:
        return self.seen.counts[1]

    @largest_no_grad.setter
    def largest_no_grad(self, value: int) -> None:
        self.seen.counts[1] = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slot = 0 if torch.is_grad_enabled() else 1
        self.seen.counts[slot] = max(self.seen.counts[slot], len(x))
        return self.model(x)


class _Seen:
    """Counts that a deep copy of the model shares with the original."""

    def __init__(self) -> None:
        self.counts = [0, 0]

    def __deepcopy__(self, memo: dict) -> _Seen:
        return self


@pytest.mark.parametrize(
    "method", ["integrated_gradients", "gradient_shap", "smoothgrad", "occlusion", "feature_ablation", "deeplift"]
)
def test_every_pass_stays_within_the_budget(tiny_cnn, method):
    model, x = tiny_cnn
    counted = RowCounter(model)
    budget = plan(counted, x[:1], TINY_MB)
    assert budget.rows_per_pass < len(x) * 20  # the budget really binds
    result = explain(counted, x, method, memory_mb=TINY_MB, auto_steps=False)
    assert max(counted.largest, counted.largest_no_grad) > 0  # the passes were seen (copies included)
    assert counted.largest <= max(budget.rows_per_pass, 2)  # DeepLift needs input and reference together
    assert counted.largest_no_grad <= 2 * budget.rows_per_pass  # passes without gradients hold half as much
    assert result.budget.rows_per_pass == budget.rows_per_pass


def test_gradient_shap_is_bounded_where_captum_is_not(tiny_cnn):
    """Captum pushes inputs x n_samples rows through at once; glassnet splits them to fit the budget."""
    model, x = tiny_cnn
    counted = RowCounter(model)
    GradientShap(counted).attribute(x, baselines=torch.zeros_like(x[:1]), n_samples=20, target=0)
    assert counted.largest == len(x) * 20
    counted.largest = 0
    explain(counted, x, "gradient_shap", memory_mb=TINY_MB)
    assert 0 < counted.largest < len(x) * 20


def test_completeness_raises_the_steps_until_it_holds(tiny_cnn):
    model, x = tiny_cnn
    result = explain(model, x, "ig", n_steps=4)
    report = result.completeness
    assert report["steps_start"] == 4 and report["steps_max_used"] > 4
    assert report["holds"] and report["max_relative_error"] <= 0.01
    totals = result.values.flatten(1).sum(dim=1)
    with torch.no_grad():
        difference = (
            model(x).gather(1, result.target[:, None]).squeeze(1) - model(torch.zeros_like(x))[:, result.target].diag()
        )
    assert torch.allclose(totals, difference, rtol=0.011, atol=1e-3)


def test_completeness_of_a_near_zero_difference_is_judged_against_the_batch_scale():
    # a spectrogram whose class score barely moves from the baseline (difference -0.006) failed at
    # 1,600 steps: 6e-5 of float rounding is 1% of it; it is now measured against a tenth of the median
    difference = torch.tensor([2.9, 2.4, 3.5, -0.006])
    totals = difference + torch.tensor([0.01, -0.01, 0.02, 6e-5])
    errors = completeness_errors(totals, difference)
    assert errors[3] < 0.001  # 6e-5 against 0.1 x median 2.9 (was 0.01: 6e-5 / 0.006)
    assert torch.allclose(errors[:3], torch.tensor([0.01 / 2.9, 0.01 / 2.4, 0.02 / 3.5]))
    assert completeness_errors(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0]))[1] > 999  # floor 1e-3
    # a large error on a small difference is still caught: 0.05 off a difference of 0.05
    assert completeness_errors(torch.tensor([3.0, 0.1]), torch.tensor([3.0, 0.05]))[1] > 0.1


def test_without_auto_steps_the_error_is_reported_not_fixed(tiny_cnn):
    model, x = tiny_cnn
    report = explain(model, x, "ig", n_steps=2, auto_steps=False).completeness
    assert report["steps_max_used"] == 2


def test_tabular_methods_give_one_value_per_feature(tiny_mlp):
    model, x = tiny_mlp
    for name in ("feature_ablation", "feature_permutation", "lime", "kernel_shap", "occlusion"):
        result = explain(model, x[:4], name, n_samples=40, baselines=x.mean(dim=0))
        assert result.values.shape == x[:4].shape, name
        assert torch.isfinite(result.values).all(), name


def test_every_method_runs_on_images(tiny_cnn):
    model, x = tiny_cnn
    for name in METHODS:
        result = explain(model, x[:3], name, n_samples=30, auto_steps=False)
        assert result.values.shape == x[:3].shape, name
        assert result.method == name


def test_explicit_targets(tiny_cnn):
    model, x = tiny_cnn
    assert explain(model, x, "saliency", target=2).target.tolist() == [2] * len(x)
    per_example = list(range(len(x)))
    per_example = [i % 4 for i in per_example]
    assert explain(model, x, "saliency", target=per_example).target.tolist() == per_example


def test_unknown_method_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'saliency'"):
        explain(nn.Linear(3, 2), torch.zeros(2, 3), "salency")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": 7}, DataError, r"target indices must be in \[0, 3\]"),
        ({"target": [0, 1]}, DataError, "one per example"),
        ({"n_steps": 0}, ConfigError, "n_steps must be a positive integer"),
        ({"memory_mb": -1}, ConfigError, "memory_mb must be a positive number"),
        ({"modality": "video"}, ConfigError, "modality must be one of"),
        ({"method": "occlusion", "window": (1, 20, 2)}, ConfigError, "window must have one size per input axis"),
        ({"method": "grad_cam", "layer": "nope"}, ConfigError, "no layer 'nope'. Convolution layers: features.0"),
        ({"method": "grad_cam", "layer": "classifier.1"}, ConfigError, "must be a convolution"),
    ],
)
def test_bad_arguments_get_clear_errors(tiny_cnn, kwargs, error, match):
    model, x = tiny_cnn
    kwargs = {"method": "saliency", **kwargs}
    with pytest.raises(error, match=match):
        explain(model, x, **kwargs)


def test_bad_inputs_get_clear_errors(tiny_cnn):
    model, x = tiny_cnn
    with pytest.raises(DataError, match="non-empty batch"):
        explain(model, x[0, 0, 0], "saliency")
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        explain(model, bad, "saliency")


def test_model_mode_and_global_random_state_are_left_alone(tiny_cnn):
    model, x = tiny_cnn
    model.train()
    torch.manual_seed(11)
    expected = torch.rand(1)
    torch.manual_seed(11)
    explain(model, x, "gradient_shap")
    assert model.training
    assert torch.equal(torch.rand(1), expected)


def test_the_budget_probe_is_reused_and_its_output_is_the_first_prediction(tiny_cnn):
    model, x = tiny_cnn
    model = copy.deepcopy(model)  # a model no earlier test has probed
    rows: list[int] = []
    model.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    first = explain(model, x, "saliency")
    assert rows == [1, len(x) - 1, len(x)]  # probe (also example 0's prediction), the others, the attribution
    rows.clear()
    again = explain(model, x, "saliency")
    assert rows == [len(x), len(x)]  # same architecture and input shape: no probe
    assert again.budget == first.budget and torch.equal(again.target, first.target)
    rows.clear()
    explain(model, x, "saliency", target=2)
    assert rows == [len(x)]  # given targets need no prediction pass
    small = explain(model, x, "saliency", target=2, memory_mb=0.05)  # another budget: sized from the same probe
    assert small.budget.bytes_per_row == first.budget.bytes_per_row
    assert small.budget.rows_per_pass < first.budget.rows_per_pass


def test_perturbation_passes_on_a_cpu_hold_no_more_rows_than_the_cap_with_a_large_budget(tiny_cnn):
    """On a CPU, occlusion with a large budget runs Captum's one-position-per-pass once the examples fill the cap."""
    from glassnet.explain.budget import CPU_PERTURBATION_ROWS

    model, x = tiny_cnn
    many = x.repeat(CPU_PERTURBATION_ROWS // len(x) + 1, *([1] * (x.dim() - 1)))[: CPU_PERTURBATION_ROWS + 3]
    counted = RowCounter(model)
    result = explain(counted, many, "occlusion", memory_mb=4096)
    assert result.budget.rows_per_pass > 4 * len(many)  # the budget alone would allow several positions per pass
    assert counted.largest_no_grad == len(many)  # one window position per pass, as Captum's default
    counted.largest_no_grad = 0
    explain(counted, x[:2], "occlusion", memory_mb=4096)
    assert 2 < counted.largest_no_grad <= CPU_PERTURBATION_ROWS  # few examples: positions share a pass, up to the cap


def test_perturbations_per_pass_fills_the_budget_off_the_cpu():
    from glassnet.explain.budget import CPU_PERTURBATION_ROWS, Budget

    budget = Budget(memory_mb=512, bytes_per_row=1000, rows_per_pass=10_000)
    assert budget.perturbations_per_pass(100, "cpu") == 1
    assert budget.perturbations_per_pass(2, "cpu") == CPU_PERTURBATION_ROWS // 2
    assert budget.perturbations_per_pass(100, "meta") == 100  # elsewhere (GPUs) the budget decides
    assert budget.perturbations_per_pass(1, "meta", limit=7) == 7
