"""The ``cnn`` family's block options: ``convs`` (VGG-style blocks) and ``pool_first``."""

import pytest
import torch
from torch import nn

from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import count_parameters, create_model

IMAGE = DataSpec(modality="image", input_shape=(1, 12, 12), task="classify", num_outputs=3, name="tiny")


def _kinds(model: nn.Module) -> list[str]:
    return [type(layer).__name__ for layer in model.features]


def test_pool_first_pools_each_convolution_before_its_norm_and_activation():
    standard = create_model("cnn", IMAGE, channels=[4, 8])
    pooled = create_model("cnn", IMAGE, channels=[4, 8], pool_first=True)
    block = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert _kinds(standard) == block * 2
    assert _kinds(pooled) == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    assert count_parameters(pooled) == count_parameters(standard)


def test_pool_first_changes_only_where_batch_norm_sees_the_values():
    """With batch norm as the identity (fresh, in eval mode), both orders compute the same function:
    max pooling commutes with ReLU."""
    torch.manual_seed(0)
    standard = create_model("cnn", IMAGE, channels=[4, 8]).eval()
    pooled = create_model("cnn", IMAGE, channels=[4, 8], pool_first=True).eval()
    pooled.load_state_dict(_renamed(standard.state_dict(), pooled.state_dict()))
    x = torch.rand(5, 1, 12, 12)
    torch.testing.assert_close(pooled(x), standard(x))
    # once batch norm's statistics differ (a negative scale), the orders differ too
    for layer in (*standard.features, *pooled.features):
        if isinstance(layer, nn.BatchNorm2d):
            layer.weight.data.fill_(-1.0)
    assert not torch.allclose(pooled(x), standard(x))


def _renamed(source: dict, target: dict) -> dict:
    """``source``'s tensors under ``target``'s names, in order (the layers' positions differ)."""
    assert len(source) == len(target)
    return dict(zip(target, source.values(), strict=True))


def test_convs_stacks_convolutions_in_each_block_and_pools_once():
    model = create_model("cnn", IMAGE, channels=[4, 8], convs=2, pool_first=True)
    assert _kinds(model) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    convs = [layer for layer in model.features if isinstance(layer, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 4), (4, 4), (4, 8), (8, 8)]
    assert model(torch.rand(2, 1, 12, 12)).shape == (2, 3)
    assert model.glassnet_arch["hparams"]["convs"] == 2 and model.glassnet_arch["hparams"]["pool_first"] is True


@pytest.mark.parametrize(
    "hparams,message",
    [
        ({"convs": 0}, r"convs must be a positive integer. Received: convs=0"),
        ({"convs": 1.5}, r"convs must be an integer. Received: convs=1.5"),
        ({"convs": True}, r"convs must be an integer. Received: convs=True"),
        ({"pool_first": "yes"}, r"pool_first must be true or false. Received: pool_first='yes'"),
    ],
)
def test_bad_block_options_are_quoted(hparams, message):
    with pytest.raises(ConfigError, match=message):
        create_model("cnn", IMAGE, **hparams)


@pytest.mark.slow
def test_vgg_blocks_pooled_first_learn_digits(tmp_path):
    """The 0.94-in-3-minutes network's blocks (two convolutions, pooling first) learn real images:
    digits, 8 epochs, a few seconds (0.985, 0.989, 0.985 for seeds 0, 1, 2 when written)."""
    import glassnet as gn

    config = gn.RunConfig(
        data="digits",
        model="cnn",
        model_args={"channels": [16, 32], "convs": 2, "pool_first": True},
        epochs=8,
        baseline=False,
    )
    run = gn.train(config, out=tmp_path / "run")
    assert run.result("train")["test"]["accuracy"] >= 0.97
