"""``centernet``: an anchor-free detector in the manner of CenterNet ("Objects as Points", Zhou et al., 2019).

Each object is found as a peak of its class's heatmap at the centre of its box; two more maps give
the box's width and height (as logarithms of its share of the image) and the centre's offset within
its cell. The backbone is the U-Net encoder of ``glassnet.models.unet`` (conv-BN-ReLU stages,
max pooling between them) with its decoder stopped at the output stride (4 by default, 2 for images
under 64 pixels), so each cell sees the whole object. An image whose sides are not multiples of
``2^(stages-1)`` is stretched to the next ones, so the output grid spans exactly the image. The
forward pass returns one tensor, ``N x (classes + 4) x h x w``: class logits, then ``log w``,
``log h``, ``dx``, ``dy``; the ``detect`` task (``glassnet.train.detection``) turns it into boxes.
Peaks are extracted with a 3x3 max pooling, which replaces non-maximum suppression (CenterNet's design).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import check_positive, input_layer
from glassnet.models.registry import register_model
from glassnet.models.unet import features, stages

PRIOR = 0.1  # initial probability of an object at a cell (the heatmap bias), as in RetinaNet and CenterNet


def _head(inputs: int, outputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, outputs, 1))


class Join(nn.Module):
    """Concatenates the heads' outputs along the channels (a module, so quantisation can leave it in float)."""

    def forward(self, heatmap: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        return torch.cat([heatmap, box], dim=1)


class CenterNet(nn.Module):
    """``normalize -> encoder -> decoder to the output stride -> heads`` (heatmap, size, offset).

    ``float_modules`` names the submodules that static int8 quantisation keeps in float: the join of
    the heads, whose inputs span very different ranges (heatmap logits of +-10, offsets in [0, 1]);
    one shared 8-bit scale for both loses the box precision that mAP at IoU 0.75 needs.
    """

    float_modules = ("join",)

    def __init__(self, normalize: nn.Module, channels: Sequence[int], in_channels: int, classes: int, stride: int):
        super().__init__()
        self.normalize = normalize
        self.multiple = 2 ** (len(channels) - 1)
        first = int(math.log2(stride))  # the encoder stage whose resolution is the output's
        self.encoder, self.decoder = stages(channels, in_channels, first)
        width = channels[first]
        self.heatmap = _head(width, classes, width)
        self.box = _head(width, 4, width)
        nn.init.constant_(self.heatmap[-1].bias, math.log(PRIOR / (1 - PRIOR)))
        self.join = Join()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = self.normalize(x)
        # stretched (not padded) to a multiple of 2^(stages-1): the output grid then spans exactly the image,
        # so box coordinates as shares of the image need no correction
        size = (height + (-height) % self.multiple, width + (-width) % self.multiple)
        x = features(self.encoder, self.decoder, F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.join(self.heatmap(x), self.box(x))


@register_model(
    "centernet",
    modalities=("image",),
    tasks=("detect",),
    description="anchor-free detector (CenterNet): class heatmaps of box centres, box sizes and offsets",
)
def centernet(spec: DataSpec, channels: Sequence[int] = (16, 32, 64, 128), stride: int = 0) -> nn.Module:
    """CenterNet-style detector for ``C x H x W`` images and ``num_outputs`` object classes.

    Args:
        spec: the data the model is built for (an image spec of the ``detect`` task).
        channels: channels of each encoder stage, finest first (the resolution halves between stages).
        stride: the output stride, a power of two below ``2^len(channels)``; 0 picks 4, or 2 for
            images under 64 pixels on their short side.
    """
    if len(spec.input_shape) != 3:
        raise ConfigError(f"centernet needs C x H x W images; the data has input_shape {list(spec.input_shape)}")
    channels = list(channels)
    if not channels:
        raise ConfigError("centernet channels must list at least one stage, e.g. channels=[16,32,64,128]")
    for value in channels:
        check_positive("channels", value)
    if stride == 0:
        stride = 4 if min(spec.input_shape[1:]) >= 64 else 2
    if stride < 1 or stride & (stride - 1) or stride >= 2 ** len(channels):
        raise ConfigError(
            f"stride must be a power of two below 2^{len(channels)} (one per encoder stage) or 0 for automatic. "
            f"Received: stride={stride}"
        )
    return CenterNet(input_layer(spec), channels, spec.input_shape[0], spec.num_outputs, stride)
