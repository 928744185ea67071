"""Embedding-space PGD for text models: the perturbation is added to the token embeddings.

Token ids have no continuous neighbourhood, so text robustness is measured where the model first
sees continuous values: the output of its embedding table. This is a statement about the
embedding space, not about any edit a person could make to the text, and it is reported as such.
The budget is an L2 ball per token whose radius is ``eps`` times the mean norm of the embedding
table's rows; padding positions are never perturbed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.robust.attacks import _check_count, ce_loss, succeeded


def find_embedding(model: nn.Module) -> nn.Embedding:
    """The model's first ``nn.Embedding`` (the token table).

    Raises:
        ConfigError: the model has no embedding table.
    """
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return module
    raise ConfigError(f"{type(model).__name__} has no nn.Embedding; embedding-space attacks need a token model")


def embedding_scale(table: nn.Embedding) -> float:
    """Mean L2 norm of the table's rows (the padding row excluded): the unit of ``eps``."""
    weight = table.weight.detach()
    if table.padding_idx is not None:
        keep = torch.ones(len(weight), dtype=torch.bool, device=weight.device)
        keep[table.padding_idx] = False
        weight = weight[keep]
    return float(weight.norm(dim=1).mean())


@contextmanager
def perturbed(model: nn.Module, delta: torch.Tensor) -> Iterator[None]:
    """While inside, the model's embedding output is shifted by ``delta`` (``n x T x dim``)."""
    handle = find_embedding(model).register_forward_hook(lambda module, args, output: output + delta)
    try:
        yield
    finally:
        handle.remove()


def _project(delta: torch.Tensor, radius: float, mask: torch.Tensor) -> torch.Tensor:
    norms = delta.norm(dim=-1, keepdim=True)
    return delta * torch.clamp(radius / (norms + 1e-12), max=1.0) * mask


def embedding_pgd(
    model: nn.Module,
    tokens: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    pad_index: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD on the cross-entropy in embedding space; returns the perturbation ``delta`` (``n x T x dim``).

    Args:
        model: a token classifier (``text`` modality) with an ``nn.Embedding``.
        tokens: token ids, ``n x T``.
        y: true classes.
        eps: per-token L2 radius, as a fraction of the mean embedding norm.
        steps: iterations.
        step_size: per step, in the same units (default ``2.5 * eps / steps``).
        pad_index: padding id (default: the table's ``padding_idx``); those positions stay unperturbed.
        generator: for the random start.

    Raises:
        ConfigError: eps is not a finite positive number, or steps is not a positive integer.
    """
    if not isinstance(eps, (int, float)) or not eps > 0 or eps != eps or eps == float("inf"):
        raise ConfigError(f"eps must be a finite number > 0. Received: eps={eps!r}")
    _check_count("steps", steps)
    table = find_embedding(model)
    pad = table.padding_idx if pad_index is None else pad_index
    radius = eps * embedding_scale(table)
    size = radius * (2.5 / steps if step_size is None else step_size / eps)
    mask = torch.ones(*tokens.shape, 1, device=tokens.device) if pad is None else (tokens != pad)[..., None].float()
    shape = (*tokens.shape, table.embedding_dim)
    noise = torch.randn(shape, generator=generator).to(tokens.device)
    delta = _project(noise * radius / shape[-1] ** 0.5, radius, mask)
    best, found = delta.clone(), torch.zeros(len(tokens), dtype=torch.bool, device=tokens.device)
    for _ in range(steps):
        delta.requires_grad_(True)
        with perturbed(model, delta):
            logits = model(tokens)
        (grad,) = torch.autograd.grad(ce_loss(logits, y).sum(), delta)
        with torch.no_grad():
            fooled = succeeded(logits, y) & ~found
            best[fooled], found = delta.detach()[fooled], found | fooled
            unit = grad / (grad.norm(dim=-1, keepdim=True) + 1e-12)
            delta = _project(delta.detach() + size * unit, radius, mask)
    with torch.no_grad(), perturbed(model, delta):
        fooled = succeeded(model(tokens), y) & ~found
    best[fooled], found = delta[fooled], found | fooled
    return torch.where(found[:, None, None], best, delta).detach()
