"""``fast_dropout`` / ``Dropout``: the CPU mask from random bits drops at the asked rate, in every lane
of its 64-bit draws, scales what it keeps, passes gradients through the same mask and follows the seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassnet.models.layers import Dropout, fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_element_drops_at_the_asked_rate_and_the_kept_ones_are_scaled(p):
    torch.manual_seed(0)
    x = torch.ones(250_000, 4)
    out = fast_dropout(x, p)
    kept = out != 0
    # four 16-bit lanes come from one 64-bit draw: each column is one lane, and each must drop at p
    assert torch.allclose(kept.float().mean(dim=0), torch.full((4,), 1 - p), atol=0.005)
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    assert abs(out.mean().item() - 1.0) < 0.02  # the expectation is kept


def test_gradients_go_through_the_same_mask_and_scale():
    torch.manual_seed(1)
    x = torch.randn(33, 7, requires_grad=True)  # a size that is not a multiple of the four lanes
    out = fast_dropout(x, 0.3)
    out.sum().backward()
    expected = (out.detach() != 0).float() / 0.7
    assert torch.equal(x.grad, expected)


def test_the_mask_follows_torch_s_seed():
    x = torch.ones(1000)
    torch.manual_seed(5)
    first = fast_dropout(x, 0.2)
    torch.manual_seed(5)
    assert torch.equal(first, fast_dropout(x, 0.2))
    assert not torch.equal(first, fast_dropout(x, 0.2))


def test_evaluation_and_zero_rate_return_the_input_and_bf16_stays_bf16():
    x = torch.randn(8, 8)
    assert fast_dropout(x, 0.5, training=False) is x
    assert fast_dropout(x, 0.0) is x
    assert fast_dropout(x.bfloat16(), 0.5).dtype == torch.bfloat16


def test_the_module_is_nn_dropout_with_the_fast_mask():
    layer = Dropout(0.25)
    assert isinstance(layer, nn.Dropout) and repr(layer) == repr(nn.Dropout(0.25))
    torch.manual_seed(2)
    train = layer(torch.ones(100_000))
    assert abs((train == 0).float().mean().item() - 0.25) < 0.01
    torch.manual_seed(2)
    assert torch.equal(train, fast_dropout(torch.ones(100_000), 0.25))
    assert torch.equal(layer.eval()(torch.ones(10)), torch.ones(10))
