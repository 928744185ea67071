"""``unet``: a U-Net for semantic segmentation (Ronneberger et al., 2015), sized for CPUs.

The encoder runs ``depth + 1`` stages of two 3x3 conv-BN-ReLU layers, halving the resolution
between stages with max pooling; the decoder upsamples (bilinear, then a 1x1 convolution) and
joins each encoder stage's output by concatenation before its two convolutions; a 1x1
convolution gives one logit per class and pixel (``N x classes x H x W``). Any ``H x W`` works:
the input is padded to a multiple of ``2^depth`` and the logits are cropped back. The attribute
names are stable: Grad-CAM finds the last convolution in ``decoder``, the head is ``head``.

``instance_unet`` adds the heads of centre-based instance grouping (Panoptic-DeepLab, Cheng et al.,
2020) on the same decoder: a heatmap logit of instance centres and, at every pixel, the offset from
the pixel to the centre of its instance (``glassnet.train.instances`` groups the pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import check_positive, input_layer
from glassnet.models.registry import register_model


def _double_conv(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Upsample by 2, reduce channels with a 1x1 convolution, concatenate the skip, two convolutions."""

    def __init__(self, inputs: int, skip: int, outputs: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(inputs, skip, 1)
        self.conv = _double_conv(2 * skip, outputs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([self.reduce(x), skip], dim=1))


def stages(channels: Sequence[int], in_channels: int, last: int = 0) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The encoder (one double convolution per entry of ``channels``) and the decoder that climbs back
    to the resolution of encoder stage ``last`` (0: the input's), for ``features``."""
    widths = [in_channels, *channels]
    encoder = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(len(channels)))
    decoder = nn.ModuleList(
        Up(channels[i + 1], channels[i], channels[i]) for i in reversed(range(last, len(channels) - 1))
    )
    return encoder, decoder


def features(encoder: nn.ModuleList, decoder: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Run the encoder (max pooling between stages, each stage's output kept) and the decoder, which joins
    those outputs from the coarsest up; returns the decoder's last features."""
    skips = []
    for i, stage in enumerate(encoder):
        x = stage(x if i == 0 else F.max_pool2d(x, 2))
        skips.append(x)
    skips.pop()
    for up in decoder:
        x = up(x, skips.pop())
    return x


class UNet(nn.Module):
    """``normalize -> encoder (with skips) -> decoder -> head``: per-pixel class logits."""

    def __init__(self, normalize: nn.Module, channels: Sequence[int], in_channels: int, classes: int, dropout: float):
        super().__init__()
        self.normalize = normalize
        self.multiple = 2 ** (len(channels) - 1)
        self.encoder, self.decoder = stages(channels, in_channels)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(channels[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = self.normalize(x)
        # padded even by 0 pixels: no branch on the shape, so torch.fx can trace the model (static int8)
        x = F.pad(x, (0, (-width) % self.multiple, 0, (-height) % self.multiple), mode="replicate")
        logits = self.head(self.dropout(features(self.encoder, self.decoder, x)))
        return logits[..., :height, :width]


@register_model(
    "unet",
    modalities=("image",),
    tasks=("segment",),
    description="U-Net: conv encoder and decoder joined by skip connections, one class per pixel",
)
def unet(spec: DataSpec, channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0) -> nn.Module:
    """U-Net for ``C x H x W`` images and ``num_outputs`` classes per pixel.

    Args:
        spec: the data the model is built for (an image spec of the ``segment`` task).
        channels: channels of each encoder stage, finest first; the resolution halves between
            stages (``len(channels) - 1`` times), and the decoder mirrors them.
        dropout: channel dropout before the classifier (0 for none).
    """
    _check(spec, "unet", channels, dropout)
    return UNet(input_layer(spec), list(channels), spec.input_shape[0], spec.num_outputs, dropout)


def _check(spec: DataSpec, name: str, channels: Sequence[int], dropout: float) -> None:
    if len(spec.input_shape) != 3:
        raise ConfigError(f"{name} needs C x H x W images; the data has input_shape {list(spec.input_shape)}")
    if not list(channels):
        raise ConfigError(f"{name} channels must list at least one stage, e.g. channels=[16,32,64]")
    for value in channels:
        check_positive("channels", value)
    if not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")


class Join(nn.Module):
    """Concatenates the class logits, the centre logit and the offsets (a module, so static int8 can leave it
    in float)."""

    def forward(self, logits: torch.Tensor, centre: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return torch.cat([logits, centre, offset], dim=1)


def _head(width: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, outputs, 1))


class InstanceUNet(UNet):
    """``UNet`` plus a centre head and an offset head: ``N x (classes + 3) x H x W``, the class logits, then the
    centre heatmap logit and the offset (``dy``, ``dx``) from each pixel to its instance's centre.

    The three outputs come from three convolutions, and ``float_modules`` names their join, which static int8
    quantisation keeps in float: class logits, centre logits (about +-10) and offsets (a few tenths of the
    image) then each get their own 8-bit scale; one shared scale blurred the offsets and the centres (measured
    on digits-instances: mask mAP 0.760 in fp32, 0.49 in torch static int8 and 0.61 in ONNX Runtime int8 with
    one head for both).
    """

    float_modules = ("join",)

    def __init__(self, normalize: nn.Module, channels: Sequence[int], in_channels: int, classes: int, dropout: float):
        super().__init__(normalize, channels, in_channels, classes, dropout)
        width = channels[0]
        self.centre, self.offset = _head(width, 1), _head(width, 2)
        nn.init.constant_(self.centre[-1].bias, -2.2)  # a centre at about 1 pixel in 10 before training
        self.join = Join()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = self.normalize(x)
        x = F.pad(x, (0, (-width) % self.multiple, 0, (-height) % self.multiple), mode="replicate")
        x = features(self.encoder, self.decoder, x)
        # cropped before the join, so the join is the graph's output (which ONNX Runtime's int8 keeps in float)
        heads = (self.head(self.dropout(x)), self.centre(x), self.offset(x))
        return self.join(*(out[..., :height, :width] for out in heads))


@register_model(
    "instance_unet",
    modalities=("image",),
    tasks=("instances",),
    description="U-Net with centre and offset heads: class per pixel, pixels grouped into instances by their centre",
)
def instance_unet(spec: DataSpec, channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0) -> nn.Module:
    """U-Net for instance segmentation of ``C x H x W`` images into ``num_outputs`` classes (class 0 the background).

    Args:
        spec: the data the model is built for (an image spec of the ``instances`` task).
        channels: channels of each encoder stage, finest first (as ``unet``).
        dropout: channel dropout before the class logits (0 for none).
    """
    _check(spec, "instance_unet", channels, dropout)
    return InstanceUNet(input_layer(spec), list(channels), spec.input_shape[0], spec.num_outputs, dropout)
