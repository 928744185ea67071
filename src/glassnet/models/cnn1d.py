"""One-dimensional convolutional network over time, for multichannel signals and spectrograms.

A ``T x C`` sequence is read as ``C`` channels over ``T`` steps; a ``1 x mels x frames``
spectrogram as ``mels`` channels over ``frames`` (each mel band is a channel, so a kernel spans
all frequencies at once and slides only in time). Convolution blocks halve the time axis; the
head pools it away (average, max, or flatten to keep where in time a pattern occurred).
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

POOLS = ("avg", "max", "flatten")


class TimeLast(nn.Module):
    """Reshapes a batch to ``N x channels x time``, the layout of ``nn.Conv1d``.

    Sequences (``N x T x C``) are transposed; spectrograms (``N x C x mels x frames``) fold their
    channels and mel bands into ``C * mels`` channels.
    """

    def __init__(self, modality: str) -> None:
        super().__init__()
        self.modality = modality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality == "sequence":
            return x.transpose(1, 2)
        return x.flatten(1, -2)

    def extra_repr(self) -> str:
        return f"modality={self.modality!r}"


def time_layout(spec: DataSpec) -> tuple[int, int]:
    """``(channels, steps)`` of the convolution's input for a sequence or audio spec.

    Raises:
        ConfigError: the inputs are not ``T x C`` sequences or ``C x mels x frames`` spectrograms.
    """
    shape = spec.input_shape
    if spec.modality == "sequence" and len(shape) == 2:
        return shape[1], shape[0]
    if spec.modality == "audio" and len(shape) == 3:
        return shape[0] * shape[1], shape[2]
    expected = "T x C" if spec.modality == "sequence" else "1 x mels x frames"
    raise ConfigError(f"cnn1d needs {expected} {spec.modality} inputs. Received: input_shape={shape}")


def conv_block(in_channels: int, out_channels: int, kernel_size: int, activation: str, pool: bool) -> list[nn.Module]:
    """Convolution ("same" padding), batch norm, activation and, if ``pool``, a max-pool halving time."""
    layers = [
        nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm1d(out_channels),
        make_activation(activation),
    ]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return layers


def _check(channels: list[int], kernel_size: int, dropout: float, pool: str) -> None:
    if not channels:
        raise ConfigError("channels must list at least one convolution block. Received: channels=[]")
    for c in channels:
        check_positive("channels", c)
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size must be a positive odd integer. Received: kernel_size={kernel_size!r}")
    check_probability("dropout", dropout)
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {', '.join(POOLS)}. Received: pool={pool!r}")


def _pooling(pool: str) -> list[nn.Module]:
    if pool == "avg":
        return [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    if pool == "max":
        return [nn.AdaptiveMaxPool1d(1), nn.Flatten()]
    return [nn.Flatten()]


@register_model(
    "cnn1d",
    modalities=("sequence", "audio"),
    tasks=("classify", "regress", "forecast"),
    description="1-D CNN over time for T x C signals and mel spectrograms; conv-BN-activation-pool blocks",
)
def cnn1d(
    spec: DataSpec,
    channels: Sequence[int] = (32, 64, 64),
    kernel_size: int = 5,
    activation: str = "relu",
    dropout: float = 0.1,
    pool: str = "avg",
) -> nn.Module:
    """Convolutional network over the time axis of sequences and spectrograms.

    The returned ``ConvNet`` has ``normalize`` (standardisation in the spec's layout),
    ``features`` (``TimeLast`` then the convolution blocks; it ends with the last block, for
    Grad-CAM) and ``classifier`` (pooling over time, dropout, linear layer, rescaling).

    Args:
        spec: a ``sequence`` (``T x C``) or ``audio`` (``1 x mels x frames``) spec.
        channels: output channels of each convolution block; every block but the last halves
            the time axis while it is at least 2 steps long.
        kernel_size: odd kernel size in time steps ("same" padding).
        activation: relu, gelu, tanh, sigmoid or silu.
        dropout: dropout probability before the output layer.
        pool: how the head summarises time: ``avg`` or ``max`` over all steps (any pattern,
            anywhere), or ``flatten`` (keeps each step's features, so the head knows when a
            pattern happened, which forecasting usually needs).

    Raises:
        ConfigError: the inputs do not have a time axis or a hyper-parameter is out of range.
    """
    channels = list(channels)
    _check(channels, kernel_size, dropout, pool)
    in_channels, steps = time_layout(spec)
    layers: list[nn.Module] = [TimeLast(spec.modality)]
    for index, out_channels in enumerate(channels):
        # the last block keeps its resolution: the pooling head follows it directly
        halve = index < len(channels) - 1 and steps >= 2
        layers += conv_block(in_channels, out_channels, kernel_size, activation, halve)
        steps = steps // 2 if halve else steps
        in_channels = out_channels
    head = _pooling(pool)
    features = in_channels * (steps if pool == "flatten" else 1)
    if dropout:
        head.append(Dropout(dropout))
    head += [nn.Linear(features, spec.num_outputs), output_layer(spec)]
    return ConvNet(input_layer(spec), nn.Sequential(*layers), nn.Sequential(*head))
