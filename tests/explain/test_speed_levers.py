"""The speed levers of GradientSHAP and SmoothGrad keep Captum's attributions: cache-sized passes, channels last.

``explain`` computes both methods itself (``glassnet.explain.sampling``): Captum's random draws, made in
Captum's order, then the rows in passes sized for the CPU cache, through a channels-last copy of
convolutional image models. Under one seed the attributions must equal Captum's own, whatever the
model family and however the rows are split into passes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap, NoiseTunnel, Saliency
from torch import nn

from glassnet.data import DataSpec
from glassnet.explain import budget as budget_module
from glassnet.explain import explain, sampling
from glassnet.explain.budget import Budget, plan
from glassnet.models import create_model

RTOL, ATOL = 1e-4, 1e-6  # the tolerance of the other comparisons with Captum (test_attribute.py)


def with_data_statistics(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Give every batch norm the running statistics of ``x`` and a non-trivial scale and shift, as training would."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: one pass sets the statistics of that pass
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def image_cnn() -> tuple[nn.Module, torch.Tensor]:
    """A CNN with batch norm (conv, BN, ReLU, max-pool blocks) on 1 x 12 x 12 inputs."""
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(1, 12, 12), task="classify", num_outputs=4)
    model = create_model("cnn", spec, channels=[6, 8], hidden=16, dropout=0.0)
    x = torch.rand(24, 1, 12, 12)
    return with_data_statistics(model, x), x[:10]


def batch_norm_mlp() -> tuple[nn.Module, torch.Tensor]:
    """An MLP with batch norm after each hidden linear layer."""
    torch.manual_seed(0)
    spec = DataSpec(modality="tabular", input_shape=(7,), task="classify", num_outputs=3)
    model = create_model("mlp", spec, width=16, depth=2, norm="batch", dropout=0.0)
    x = torch.randn(40, 7)
    return with_data_statistics(model, x), x[:12]


def plain_mlp() -> tuple[nn.Module, torch.Tensor]:
    """An MLP without batch norm (nothing to fold)."""
    torch.manual_seed(0)
    spec = DataSpec(modality="tabular", input_shape=(7,), task="classify", num_outputs=3)
    return create_model("mlp", spec, width=16, dropout=0.0).eval(), torch.randn(12, 7)


def small_resnet() -> tuple[nn.Module, torch.Tensor]:
    """A ResNet: batch norms inside residual blocks (attributes, not nn.Sequential neighbours)."""
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(3, 8, 8), task="classify", num_outputs=3)
    model = create_model("resnet", spec, width=8, depth=[1, 1])
    x = torch.rand(16, 3, 8, 8)
    return with_data_statistics(model, x), x[:4]


MODELS = {"cnn": image_cnn, "bn_mlp": batch_norm_mlp, "mlp": plain_mlp, "resnet": small_resnet}


def targets_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(dim=1)


def captum_gradient_shap(model, x, t, references, n_samples=20, stdevs=0.0, seed=3):
    torch.manual_seed(seed)
    np.random.seed(seed)  # Captum draws reference rows and interpolation points with NumPy
    return GradientShap(model).attribute(x, baselines=references, n_samples=n_samples, stdevs=stdevs, target=t)


def captum_smoothgrad(model, x, t, n_samples=10, stdevs=0.1, seed=3):
    torch.manual_seed(seed)
    return NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=n_samples, stdevs=stdevs, target=t
    )


@pytest.mark.parametrize("family", list(MODELS))
def test_gradient_shap_equals_captum_under_the_same_seed(family):
    model, x = MODELS[family]()
    t = targets_of(model, x)
    ours = explain(model, x, "gradient_shap", seed=3)
    reference = captum_gradient_shap(model, x, t, torch.zeros_like(x[:1]))
    torch.testing.assert_close(ours.values, reference.detach(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("family", list(MODELS))
def test_smoothgrad_equals_captum_under_the_same_seed(family):
    model, x = MODELS[family]()
    t = targets_of(model, x)
    ours = explain(model, x, "smoothgrad", seed=3, stdevs=0.1)
    reference = captum_smoothgrad(model, x, t)
    torch.testing.assert_close(ours.values, reference.detach(), rtol=RTOL, atol=ATOL)


def test_gradient_shap_with_noise_and_a_reference_set_equals_captum():
    model, x = image_cnn()
    t = targets_of(model, x)
    references = torch.rand(5, *x.shape[1:])
    ours = explain(model, x, "gradient_shap", baselines=references, stdevs=0.05, n_samples=7, seed=11)
    reference = captum_gradient_shap(model, x, t, references, n_samples=7, stdevs=0.05, seed=11)
    torch.testing.assert_close(ours.values, reference.detach(), rtol=RTOL, atol=ATOL)
    assert ours.options["references"] == 5


class PassSizes:
    """Records the rows of every gradient pass that reaches a model.

    A forward pre-hook that is a plain function travels with the folded copy (``deepcopy`` keeps functions).
    """

    def __init__(self, model: nn.Module) -> None:
        sizes: list[int] = []

        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if args[0].requires_grad:  # not the probe or the prediction of the targets
                sizes.append(len(args[0]))

        self.sizes = sizes
        self.handle = model.register_forward_pre_hook(record)


@pytest.mark.parametrize("method", ["gradient_shap", "smoothgrad"])
def test_small_passes_change_nothing(monkeypatch, method):
    """Passes of a few rows (a tiny cache target) give Captum's one-pass attributions, draws included."""
    model, x = image_cnn()
    t = targets_of(model, x)
    monkeypatch.setattr(budget_module, "CPU_GRADIENT_PASS_BYTES", 1)
    monkeypatch.setattr(budget_module, "CPU_GRADIENT_MIN_ROWS", 7)  # does not divide the samples per example
    sizes = PassSizes(model)
    ours = explain(model, x, method, seed=5, stdevs=0.1 if method == "smoothgrad" else None)
    sizes.handle.remove()
    assert max(sizes.sizes) == 7 and len(sizes.sizes) > 10
    assert ours.options["internal_batch_size"] == 7
    if method == "gradient_shap":
        reference = captum_gradient_shap(model, x, t, torch.zeros_like(x[:1]), seed=5)
    else:
        reference = captum_smoothgrad(model, x, t, seed=5)
    torch.testing.assert_close(ours.values, reference.detach(), rtol=RTOL, atol=ATOL)


def test_passes_suit_the_cache_not_the_whole_budget():
    """The benchmark's CNN (about 250 KB of activations a row): passes of ~130 rows; the budget takes all 640."""
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(1, 28, 28), task="classify", num_outputs=10)
    model = create_model("cnn", spec, channels=[16, 32], hidden=64).eval()
    x = torch.rand(32, 1, 28, 28)
    sizes = PassSizes(model)
    result = explain(model, x, "gradient_shap")
    sizes.handle.remove()
    rows = result.budget.gradient_rows("cpu")
    assert result.budget.rows_per_pass >= len(x) * 20  # the budget alone would take every row at once
    assert rows < len(x) * 20 and result.options["internal_batch_size"] == rows
    passes = -(-len(x) * 20 // rows)
    assert len(sizes.sizes) == passes > 1 and max(sizes.sizes) <= rows
    assert sum(sizes.sizes) == len(x) * 20 and max(sizes.sizes) - min(sizes.sizes) <= 1  # even passes


def test_gradient_rows_follow_the_cache_on_a_cpu_and_the_budget_elsewhere():
    per_row = budget_module.BACKWARD_FACTOR * 2**20  # 1 MB of activations per row
    budget = Budget(memory_mb=512, bytes_per_row=int(per_row), rows_per_pass=341)
    assert budget.gradient_rows("cpu") == budget_module.CPU_GRADIENT_PASS_BYTES // 2**20
    assert budget.gradient_rows("cuda") == 341  # no cache rule on accelerators: the budget decides
    huge = Budget(memory_mb=512, bytes_per_row=int(400 * per_row), rows_per_pass=1)
    assert huge.gradient_rows("cpu") == 1  # never past the budget, even below the minimum rows
    tiny = Budget(memory_mb=512, bytes_per_row=int(200 * per_row), rows_per_pass=100)
    assert tiny.gradient_rows("cpu") == budget_module.CPU_GRADIENT_MIN_ROWS
    model, x = image_cnn()
    measured = plan(model, x[:1])
    assert 1 <= measured.gradient_rows("cpu") <= measured.rows_per_pass


class ViewsItsActivations(nn.Module):
    """A CNN whose forward calls ``.view`` on a convolution's output: it cannot take channels-last rows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv(x)))
        return self.head(h.view(len(h), -1))


def test_channels_last_runs_on_a_copy_and_falls_back_where_the_model_needs_contiguous_rows():
    model, x = image_cnn()
    passes = sampling.GradientPasses(model, x)
    assert passes.model is not model and passes.memory_format == torch.channels_last
    assert all(p.is_contiguous() for p in model.parameters())  # the user's model keeps its layout
    mlp, rows = batch_norm_mlp()
    assert sampling.GradientPasses(mlp, rows).model is mlp  # tables: no copy
    torch.manual_seed(0)
    viewing = with_data_statistics(ViewsItsActivations(), torch.rand(16, 1, 6, 6))
    x = torch.rand(6, 1, 6, 6)
    passes = sampling.GradientPasses(viewing, x)
    t = targets_of(viewing, x)
    torch.testing.assert_close(
        passes(x, t), Saliency(viewing).attribute(x.clone().requires_grad_(), target=t, abs=False)
    )
    assert passes.model is viewing and passes.memory_format is None  # fell back after the first pass failed
    ours = explain(viewing, x, "smoothgrad", seed=1, stdevs=0.1)
    torch.testing.assert_close(ours.values, captum_smoothgrad(viewing, x, t, seed=1).detach(), rtol=RTOL, atol=ATOL)


def test_smoothgrad_under_a_small_budget_draws_as_captum_does_with_that_batch_size():
    """When the budget splits the samples, the draws follow Captum's ``nt_samples_batch_size`` for that budget."""
    model, x = image_cnn()
    t = targets_of(model, x)
    ours = explain(model, x, "smoothgrad", seed=4, stdevs=0.1, n_samples=9, memory_mb=0.25)
    per_draw = ours.options["nt_samples_batch_size"]
    chunk = ours.options["examples_per_chunk"]
    assert per_draw < 9  # the samples really are split
    parts = []
    torch.manual_seed(4)
    for start in range(0, len(x), chunk):
        part = slice(start, start + chunk)
        parts.append(
            NoiseTunnel(Saliency(model)).attribute(
                x[part], nt_type="smoothgrad", nt_samples=9, nt_samples_batch_size=per_draw, stdevs=0.1, target=t[part]
            )
        )
    torch.testing.assert_close(ours.values, torch.cat(parts).detach(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_shap", "smoothgrad"])
@pytest.mark.parametrize("memory_mb", [0.25, 512.0])
def test_gradient_passes_stay_within_the_budget_and_the_cache_rows(method, memory_mb):
    """Seen from inside the channels-last copy (a wrapper around the model would be copied with it)."""
    model, x = image_cnn()
    sizes = PassSizes(model)
    result = explain(model, x, method, memory_mb=memory_mb, auto_steps=False)
    sizes.handle.remove()
    assert sizes.sizes and max(sizes.sizes) <= result.budget.gradient_rows("cpu") <= result.budget.rows_per_pass
    if memory_mb < 1:
        assert result.budget.rows_per_pass < len(x) * 10  # the budget binds: many passes
