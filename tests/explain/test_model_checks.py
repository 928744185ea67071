"""Methods that do not fit a model are refused with the reason and the methods that fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.explain import explain


class SharedReLU(nn.Module):
    """One ReLU module called twice per forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.act = nn.Linear(4, 8), nn.Linear(8, 3), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.b(self.act(self.a(x))))


class TokenCounter(nn.Module):
    """Takes token ids but has no embedding layer."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.float())


X = torch.rand(5, 4)


def test_deeplift_refuses_in_place_activations():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))
    with pytest.raises(ConfigError, match=r"DeepLift cannot explain this model: modules 1 work in place") as info:
        explain(model, X, "deeplift")
    assert "Methods that fit it: integrated_gradients" in str(info.value)


def test_deeplift_refuses_reused_modules():
    with pytest.raises(ConfigError, match="act are called more than once per forward pass"):
        explain(SharedReLU(), X, "deeplift")


def test_deeplift_refuses_recurrent_layers(untrained_gru):
    model, ids = untrained_gru
    with pytest.raises(ConfigError, match="DeepLift"):
        explain(model, ids, "deeplift")


def test_grad_cam_refuses_a_model_without_convolution():
    with pytest.raises(ConfigError, match="Grad-CAM cannot explain this model: the model has no convolution layer"):
        explain(nn.Sequential(nn.Linear(4, 3)), X, "grad_cam")


def test_token_methods_need_an_embedding_layer():
    ids = torch.randint(2, 9, (3, 6))
    with pytest.raises(ConfigError, match="no nn.Embedding layer") as info:
        explain(TokenCounter(), ids, "integrated_gradients")
    assert "occlusion" in str(info.value) and "feature_ablation" in str(info.value)


@pytest.mark.parametrize(
    ("method", "why"),
    [("smoothgrad", "noise on token ids"), ("gradient_shap", "cannot be interpolated"), ("grad_cam", "text model")],
)
def test_text_refusals_say_why(untrained_gru, method, why):
    model, ids = untrained_gru
    with pytest.raises(ConfigError, match=why):
        explain(model, ids, method)


def test_a_fitting_model_is_not_refused():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert explain(model, X, "deeplift").values.shape == X.shape
