"""Multilayer perceptron: standardised inputs, ``depth`` hidden layers, a task head."""

from __future__ import annotations

import math

from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import (
    Dropout,
    check_positive,
    check_probability,
    input_layer,
    make_activation,
    output_layer,
)
from glassnet.models.registry import register_model

NORMS = ("none", "batch", "layer")


@register_model(
    "mlp",
    modalities=("tabular", "image", "sequence", "audio"),
    tasks=("classify", "regress", "forecast"),
    description="multilayer perceptron: hidden layers of one width, activation, dropout, optional norm",
)
def mlp(
    spec: DataSpec,
    depth: int = 2,
    width: int = 128,
    activation: str = "relu",
    dropout: float = 0.1,
    norm: str = "none",
) -> nn.Module:
    """Multilayer perceptron.

    Args:
        spec: the data the model is built for (input size, outputs, normalisation).
        depth: number of hidden layers (0 gives a linear model).
        width: units per hidden layer.
        activation: relu, gelu, tanh, sigmoid or silu.
        dropout: dropout probability after each hidden layer.
        norm: ``none``, ``batch`` or ``layer`` normalisation after each hidden linear layer.
    """
    if not isinstance(depth, int) or depth < 0:
        raise ConfigError(f"depth must be an integer >= 0. Received: depth={depth!r}")
    check_positive("width", width)
    check_probability("dropout", dropout)
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {', '.join(NORMS)}. Received: norm={norm!r}")
    layers: list[nn.Module] = [input_layer(spec), nn.Flatten()]
    features = math.prod(spec.input_shape)
    for _ in range(depth):
        layers.append(nn.Linear(features, width))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(make_activation(activation))
        if dropout:
            layers.append(Dropout(dropout))
        features = width
    layers += [nn.Linear(features, spec.num_outputs), output_layer(spec)]
    return nn.Sequential(*layers)
