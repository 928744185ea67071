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
from dataclasses import dataclass

import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.robustness.attacks import _apgd, _apgd_targeted, _check_count, ce_loss, succeeded


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
    _check_eps(eps)
    _check_count("steps", steps)
    table = find_embedding(model)
    pad = table.padding_idx if pad_index is None else pad_index
    radius = eps * embedding_scale(table)
    size = radius * (2.5 / steps if step_size is None else step_size / eps)
    mask = torch.ones(*tokens.shape, 1, device=tokens.device) if pad is None else (tokens != pad)[..., None].float()
    shape = (*tokens.shape, table.embedding_dim)
    noise = torch.randn(shape, generator=generator).to(tokens.device)
    delta = _project(noise * radius / shape[-1] ** 0.5, radius, mask)
    result = delta.clone()  # the first fooling perturbation per example, else the last one
    active, toks, labels = torch.arange(len(tokens), device=tokens.device), tokens, y
    for _ in range(steps):
        delta.requires_grad_(True)
        with perturbed(model, delta):
            logits = model(toks)
        (grad,) = torch.autograd.grad(ce_loss(logits, labels).sum(), delta)
        with torch.no_grad():
            delta = delta.detach()
            fooled = succeeded(logits, labels)
            if fooled.any():  # fooled examples leave the batch: their answer is fixed
                result[active[fooled]] = delta[fooled]
                keep = ~fooled
                if not keep.any():
                    return result
                active, toks, labels = active[keep], toks[keep], labels[keep]
                delta, grad, mask = delta[keep], grad[keep], mask[keep]
            unit = grad / (grad.norm(dim=-1, keepdim=True) + 1e-12)
            delta = _project(delta + size * unit, radius, mask)
    result[active] = delta
    return result.detach()


# ----------------------------------------------------------------------------------------------
# APGD in embedding space (the worst case for text models)


def _check_eps(eps: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0 or eps != eps or eps == float("inf"):
        raise ConfigError(f"eps must be a finite number > 0. Received: eps={eps!r}")


@dataclass(frozen=True)
class TokenBall:
    """Per-token L2 balls of ``eps`` (absolute units) around the clean embeddings; padding stays fixed.

    The APGD loop of ``glassnet.robustness.attacks`` searches it with the token ids as ``context``.
    """

    eps: float
    pad: int | None

    def _mask(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.pad is None:
            return torch.ones(*tokens.shape, 1, device=tokens.device)
        return (tokens != self.pad)[..., None].float()

    def start(self, e: torch.Tensor, tokens: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(e.shape, generator=generator).to(e.device)
        return e + _project(noise * self.eps / e.shape[-1] ** 0.5, self.eps, self._mask(tokens))

    def project(self, z: torch.Tensor, e: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return e + _project(z - e, self.eps, self._mask(tokens))

    def ascent(self, grad: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return grad / (grad.norm(dim=-1, keepdim=True) + 1e-12)


class EmbeddingInput(nn.Module):
    """``model`` seen from its embedding space: ``forward(e, tokens)`` runs ``model(tokens)`` with the
    embedding table's output replaced by ``e`` (so the model still sees the ids, e.g. for its padding)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.table = find_embedding(model)

    def forward(self, e: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        handle = self.table.register_forward_hook(lambda module, args, output: e)
        try:
            return self.model(tokens)
        finally:
            handle.remove()


def embedding_apgd(
    model: nn.Module,
    tokens: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    loss: str = "ce",
    steps: int = 100,
    target_classes: int | None = None,
    pad_index: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """APGD (Croce & Hein, 2020) in embedding space; returns the perturbation ``delta`` (``n x T x dim``).

    The budget is ``embedding_pgd``'s: a per-token L2 ball of radius ``eps`` x the mean embedding
    norm, padding never perturbed. Fooled examples leave the batch as in the input-space APGD.

    Args:
        model: a token classifier with an ``nn.Embedding``.
        tokens: token ids, ``n x T``.
        y: true classes.
        eps: per-token radius, as a fraction of the mean embedding norm.
        loss: ``ce`` (APGD-CE, untargeted) or ``dlr``.
        steps: iterations per run.
        target_classes: with ``dlr``, target each of this many likeliest wrong classes in turn
            (AutoAttack's APGD-T); None for the untargeted run.
        pad_index: padding id (default: the table's ``padding_idx``).
        generator: for the random starts.

    Raises:
        ConfigError: bad eps, steps, loss or target_classes.
    """
    _check_eps(eps)
    _check_count("steps", steps)
    if loss not in ("ce", "dlr"):
        raise ConfigError(f"loss must be ce or dlr. Received: loss={loss!r}")
    if target_classes is not None and (loss != "dlr" or not isinstance(target_classes, int) or target_classes < 1):
        raise ConfigError(f"target_classes needs loss='dlr' and an integer >= 1. Received: {target_classes!r}")
    table = find_embedding(model)
    ball = TokenBall(eps * embedding_scale(table), table.padding_idx if pad_index is None else pad_index)
    wrapped = EmbeddingInput(model)
    with torch.no_grad():
        clean = table(tokens)
    if target_classes is None:
        adv = _apgd(wrapped, clean, y, ball, None, steps, 1, loss, generator, tokens)
    else:
        adv = _apgd_targeted(wrapped, clean, y, ball, target_classes, steps, generator, tokens)
    return (adv - clean).detach()
