"""Lp-ball geometry of input perturbations in the unit box: norms, projection, random starts, ascent.

Shared by the attacks of ``glassnet.robustness`` and by adversarial training
(``glassnet.train.steps.adversarial``): inputs live in ``[0, 1]`` and a perturbation of budget
``eps`` stays inside both the ``eps`` ball of its norm and that box.
"""

from __future__ import annotations

import torch

NORMS = ("linf", "l2")


def flat_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example norm (``linf``, ``l2`` or ``l1``) of a batch ``N x ...``."""
    flat = t.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    return flat.norm(dim=1)


def per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values shaped to broadcast over ``like``."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float | torch.Tensor, norm: str) -> torch.Tensor:
    """Project ``x_adv`` onto the ``eps`` ball around ``x`` intersected with the box ``[0, 1]``."""
    delta = x_adv - x
    eps_t = per_example(torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(len(x)), x)
    if norm == "linf":
        delta = torch.maximum(torch.minimum(delta, eps_t), -eps_t)
    else:
        norms = per_example(flat_norm(delta, "l2"), x)
        delta = delta * torch.clamp(eps_t / (norms + 1e-12), max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    """A uniformly random point of the ``eps`` ball around ``x`` (linf), or along a random direction (l2)."""
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) * 2 - 1
    if norm == "linf":
        return project(x + eps * noise, x, eps, norm)
    direction = noise / per_example(flat_norm(noise, "l2") + 1e-12, x)
    radius = torch.rand(len(x), generator=generator, dtype=x.dtype).to(x.device)
    return project(x + eps * per_example(radius, x) * direction, x, eps, norm)


def ascent(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit norm: the sign for linf, the normalised gradient for l2."""
    if norm == "linf":
        return grad.sign()
    return grad / per_example(flat_norm(grad, "l2") + 1e-12, grad)
