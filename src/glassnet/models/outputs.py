"""Structured model outputs and the batched, gradient-free inference every stage shares.

Most models return one tensor. A model whose training objective needs more than its prediction
returns a ``NamedTuple`` whose first field is the prediction and whose other fields are per-example
tensors (``N x ...``) or per-model constants (0-dim tensors): e.g. a VAE's
``VariationalOutput(reconstruction, kl, decoder_var)``. Tasks read the fields they need; everything
that only wants the prediction calls ``prediction(outputs)``; ``concat_outputs`` joins batches of
either kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

Outputs = Any  # a tensor, or a NamedTuple of tensors whose first field is the prediction


class VariationalOutput(NamedTuple):
    """What a variational autoencoder returns.

    Attributes:
        reconstruction: ``N x ...`` in natural units (the prediction).
        kl: ``N`` KL divergences of the posterior from the prior, in nats.
        decoder_var: 0-dim tensor, the Gaussian decoder's variance in natural units.
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor
    decoder_var: torch.Tensor


def prediction(outputs: Outputs) -> torch.Tensor:
    """The prediction of a model's outputs: the tensor itself, or a structured output's first field."""
    return outputs if isinstance(outputs, torch.Tensor) else outputs[0]


def map_outputs(function: Callable[[torch.Tensor], torch.Tensor], outputs: Outputs) -> Outputs:
    """Apply ``function`` to every tensor of ``outputs``, keeping the structure."""
    if isinstance(outputs, torch.Tensor):
        return function(outputs)
    return type(outputs)(*(function(value) for value in outputs))


def concat_outputs(chunks: Sequence[Outputs]) -> Outputs:
    """Join per-batch outputs: tensors along the batch, 0-dim fields of structured outputs kept once."""
    first = chunks[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(chunks))
    fields = []
    for i, value in enumerate(first):
        fields.append(value if value.dim() == 0 else torch.cat([chunk[i] for chunk in chunks]))
    return type(first)(*fields)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block (no dropout, frozen batch-norm statistics); the previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; the CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def batched_outputs(
    model: nn.Module,
    inputs: torch.Tensor,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    to_cpu: bool = True,
) -> Outputs:
    """The model's float outputs for ``inputs``, in eval mode without gradients.

    Args:
        model: any module; it runs where it is (or on ``device``) and keeps its mode afterwards.
        inputs: ``N x ...`` inputs (at least one).
        batch_size: examples per forward pass.
        device: where to run; default the model's device.
        to_cpu: gather the outputs on the CPU (False: leave them where the model ran).
    """
    device = torch.device(device) if device is not None else model_device(model)
    chunks = []
    with eval_mode(model), torch.no_grad():
        for begin in range(0, len(inputs), batch_size):
            out = map_outputs(
                lambda t: t.float() if t.is_floating_point() else t,
                model(inputs[begin : begin + batch_size].to(device)),
            )
            chunks.append(map_outputs(lambda t: t.cpu(), out) if to_cpu else out)
    return concat_outputs(chunks)
