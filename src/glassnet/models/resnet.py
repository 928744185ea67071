"""Residual network of basic blocks (He et al., 2016) for small images and spectrograms.

Stages of two-convolution residual blocks; each stage after the first halves the resolution and
doubles the channels; global average pooling feeds the head. Images under 64 pixels keep their
full resolution in the stem (one 3x3 convolution, no max-pool, as for CIFAR), larger ones get the
ImageNet stem (7x7 stride-2 convolution and a max-pool) so the first stage does not run at full size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.cnn import ConvNet
from glassnet.models.layers import (
    Dropout,
    check_positive,
    check_probability,
    input_layer,
    make_activation,
    output_layer,
)
from glassnet.models.registry import register_model

STEMS = ("auto", "small", "large")
LARGE_IMAGE = 64  # the smaller side from which ``stem="auto"`` picks the ImageNet stem


class BasicBlock(nn.Module):
    """``activation(branch(x) + shortcut(x))`` with a branch of two 3x3 convolutions.

    The shortcut is the identity, or a strided 1x1 convolution with batch norm when the block
    changes the resolution or the number of channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.act2 = make_activation(activation)  # a second instance: hooks must see each use apart

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(branch + self.shortcut(x))


def make_stem(in_channels: int, width: int, activation: str, large: bool) -> nn.Sequential:
    """The first convolution: 3x3 at full resolution, or 7x7 stride 2 plus a max-pool (4x smaller)."""
    if large:
        conv = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(width), make_activation(activation), nn.MaxPool2d(3, 2, padding=1))
    conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(width), make_activation(activation))


def make_stage(in_channels: int, out_channels: int, blocks: int, stride: int, activation: str) -> nn.Sequential:
    """``blocks`` basic blocks; the first one applies ``stride`` and the change of width."""
    layers = [BasicBlock(in_channels, out_channels, stride, activation)]
    layers += [BasicBlock(out_channels, out_channels, 1, activation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def zero_init_residuals(model: nn.Module) -> None:
    """Set the last batch-norm scale of every residual branch to zero.

    Each block then starts as its shortcut, so the network starts as a shallow one and its
    gradients do not grow with depth; this allows large learning rates from the first step
    (Goyal et al., 2017, "Accurate, Large Minibatch SGD", section 5.1). The scale still gets
    gradients and grows as soon as training starts.
    """
    for module in model.modules():
        if isinstance(module, BasicBlock):
            nn.init.zeros_(module.bn2.weight)


def _check(spec: DataSpec, depth: list[int], width: int, dropout: float, stem: str) -> None:
    if len(spec.input_shape) != 3:
        raise ConfigError(
            f"resnet needs C x H x W inputs (images or 1 x mels x frames spectrograms). "
            f"Received: input_shape={spec.input_shape}"
        )
    if not depth:
        raise ConfigError("depth must list the blocks of at least one stage. Received: depth=[]")
    for blocks in depth:
        check_positive("depth", blocks)
    check_positive("width", width)
    check_probability("dropout", dropout)
    if stem not in STEMS:
        raise ConfigError(f"stem must be one of {', '.join(STEMS)}. Received: stem={stem!r}")


@register_model(
    "resnet",
    modalities=("image", "audio"),
    tasks=("classify", "regress", "contrastive"),
    description="ResNet of basic residual blocks for small images; width doubles each stage; global pooling",
)
def resnet(
    spec: DataSpec,
    depth: Sequence[int] = (2, 2, 2),
    width: int = 32,
    activation: str = "relu",
    dropout: float = 0.0,
    stem: str = "auto",
    zero_init_residual: bool = True,
) -> nn.Module:
    """Residual network for ``C x H x W`` images (and ``1 x mels x frames`` spectrograms).

    The returned ``ConvNet`` has ``normalize`` (standardisation), ``features`` (stem, then one
    ``nn.Sequential`` per stage; its last element ends with the last convolution, for Grad-CAM)
    and ``classifier`` (global average pooling, dropout, linear layer, rescaling).

    Args:
        spec: the data the model is built for (an image or audio spec).
        depth: residual blocks in each stage, e.g. ``[2, 2, 2]`` (ResNet-14) or ``[2, 2, 2, 2]``
            (ResNet-18 layout); every stage after the first halves the resolution.
        width: channels of the first stage; each later stage doubles them.
        activation: relu, gelu, tanh, sigmoid or silu.
        dropout: dropout probability before the output layer.
        stem: ``small`` (3x3 convolution at full resolution), ``large`` (7x7 stride-2 convolution
            and max-pool) or ``auto`` (``large`` when both image sides are at least 64 pixels).
        zero_init_residual: start every residual branch at zero (see ``zero_init_residuals``).

    Raises:
        ConfigError: the inputs are not ``C x H x W`` or a hyper-parameter is out of range.
    """
    depth = list(depth)
    _check(spec, depth, width, dropout, stem)
    channels, height, image_width = spec.input_shape
    large = stem == "large" or (stem == "auto" and min(height, image_width) >= LARGE_IMAGE)
    stages: list[nn.Module] = [make_stem(channels, width, activation, large)]
    in_channels = width
    for index, blocks in enumerate(depth):
        out_channels = width * 2**index
        stages.append(make_stage(in_channels, out_channels, blocks, 1 if index == 0 else 2, activation))
        in_channels = out_channels
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout:
        head.append(Dropout(dropout))
    head += [nn.Linear(in_channels, spec.num_outputs), output_layer(spec)]
    model = ConvNet(input_layer(spec), nn.Sequential(*stages), nn.Sequential(*head))
    if zero_init_residual:
        zero_init_residuals(model)
    return model
