"""Adversarial attacks on classifiers: FGSM, PGD, APGD (CE / DLR), Carlini-Wagner L2, DeepFool, Square.

Every attack is batched torch code with one convention: inputs live in the box ``[0, 1]`` (images
in natural units; other inputs are mapped there by ``glassnet.robustness.bounds.BoxModel``), the model
returns logits (or log-probabilities) and the attack returns adversarial inputs inside the box and
inside the ``eps`` ball of the requested norm (``linf`` or ``l2``). Untargeted attacks make the
model leave the true class ``y``; targeted ones (``target=`` a tensor of classes) make it choose
``target``.

Budget attacks (``fgsm``, ``pgd``, ``apgd-ce``, ``apgd-dlr``, ``square``) search inside an ``eps``
ball; minimum-norm attacks (``cw``, ``deepfool``) ignore ``eps`` and return the smallest
perturbation they find, so one run gives the accuracy at every ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.errors import ConfigError, UnknownNameError
from glassnet.train.perturbation import NORMS, ascent, flat_norm, per_example, project
from glassnet.train.perturbation import random_start as _random_start

Attack = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class AttackInfo:
    """What the evaluation needs to know about an attack.

    Attributes:
        name: registry name.
        norms: norms the attack supports.
        minimum_norm: finds the smallest perturbation instead of searching an ``eps`` ball.
        targeted: supports targeted attacks.
        gradient_free: needs only the model's outputs (a black-box check against gradient masking).
        description: one line for listings and the report.
    """

    name: str
    norms: tuple[str, ...]
    minimum_norm: bool
    targeted: bool
    gradient_free: bool
    description: str


_ATTACKS: dict[str, tuple[Attack, AttackInfo]] = {}


def register_attack(name: str, norms: tuple[str, ...], description: str, **flags: bool) -> Callable[[Attack], Attack]:
    """Register ``function`` under ``name`` with the facts that ``AttackInfo`` lists."""

    def decorate(function: Attack) -> Attack:
        info = AttackInfo(
            name=name,
            norms=norms,
            minimum_norm=flags.get("minimum_norm", False),
            targeted=flags.get("targeted", True),
            gradient_free=flags.get("gradient_free", False),
            description=description,
        )
        _ATTACKS[name] = (function, info)
        return function

    return decorate


def list_attacks() -> list[str]:
    """Names of the registered attacks."""
    return sorted(_ATTACKS)


def attack_info(name: str) -> AttackInfo:
    """The ``AttackInfo`` of ``name``; raises ``UnknownNameError`` for an unknown name."""
    if name not in _ATTACKS:
        raise UnknownNameError("attack", name, _ATTACKS)
    return _ATTACKS[name][1]


def get_attack(name: str) -> Attack:
    """The attack function registered as ``name``."""
    attack_info(name)
    return _ATTACKS[name][0]


def run_attack(
    name: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor:
    """Run the attack ``name`` on a batch; checks the norm, target and options first.

    Args:
        name: a registered attack (see ``list_attacks``).
        model: classifier returning logits; put in eval mode by the caller.
        x: inputs in ``[0, 1]``.
        y: true classes.
        eps: perturbation budget (ignored by minimum-norm attacks).
        norm: ``linf`` or ``l2``.
        target: classes to reach (targeted attack); None for untargeted.
        **options: the attack's own keyword arguments (e.g. ``steps=20``).

    Returns:
        Adversarial inputs, detached, same shape as ``x``.

    Raises:
        UnknownNameError: unknown attack.
        ConfigError: unsupported norm, a targeted run of an untargeted-only attack, a bad option.
    """
    info = attack_info(name)
    check_norm(norm)
    if norm not in info.norms:
        raise ConfigError(f"attack {name!r} supports norm {' or '.join(info.norms)}. Received: norm={norm!r}")
    if target is not None and not info.targeted:
        raise ConfigError(f"attack {name!r} is untargeted only; drop the target or choose pgd, apgd-dlr or cw")
    if not info.minimum_norm:
        check_eps(eps, norm)
    function = get_attack(name)
    try:
        return function(model, x, y, eps=eps, norm=norm, target=target, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"attack {name!r}: {exc}") from exc
        raise


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {', '.join(NORMS)}. Received: norm={norm!r}")


def check_eps(eps: float, norm: str) -> None:
    """``eps`` must be a finite number > 0 (and <= 1 for linf, the width of the box)."""
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"eps must be a finite number > 0. Received: eps={eps!r}")
    if norm == "linf" and eps > 1:
        raise ConfigError(f"linf eps must be <= 1 (inputs live in [0, 1]). Received: eps={eps}")


# ----------------------------------------------------------------------------------------------
# shared pieces


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example margin that is negative exactly when the attack has succeeded.

    Untargeted: ``z_y - max_{i != y} z_i``; targeted: ``max_{i != t} z_i - z_t``.
    """
    if target is None:
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        return true - other
    goal = logits.gather(1, target[:, None]).squeeze(1)
    other = logits.scatter(1, target[:, None], float("-inf")).amax(dim=1)
    return other - goal


def succeeded(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean per example: misclassified (untargeted) or classified as ``target`` (targeted)."""
    predicted = logits.argmax(dim=1)
    return predicted != y if target is None else predicted == target


def ce_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example loss to maximise: CE of ``y`` (untargeted) or minus CE of ``target``."""
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Difference of Logits Ratio (Croce & Hein, 2020), to maximise; invariant to logit shift and scale.

    Falls back to the plain margin when there are too few classes for the ratio (3 untargeted, 4 targeted).
    """
    ranked = logits.sort(dim=1, descending=True).values
    classes = logits.shape[1]
    if target is None:
        if classes < 3:
            return -margin(logits, y)
        scale = ranked[:, 0] - ranked[:, 2] + 1e-12
        return -margin(logits, y) / scale
    if classes < 4:
        return -margin(logits, y, target)
    true = logits.gather(1, y[:, None]).squeeze(1)
    goal = logits.gather(1, target[:, None]).squeeze(1)
    scale = ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + 1e-12
    return -(true - goal) / scale


LOSSES = {"ce": ce_loss, "dlr": dlr_loss}


def _gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    loss: Callable,
    context: torch.Tensor | None = None,
) -> tuple:
    """``(per-example loss, logits, d loss.sum() / dx)`` at ``x`` (the model gets ``context`` too, when given)."""
    x = x.detach().requires_grad_(True)
    logits = model(x) if context is None else model(x, context)
    values = loss(logits, y, target)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), logits.detach(), grad


@dataclass(frozen=True)
class Ball:
    """The set an iterative attack searches: the ``eps`` ball of ``norm`` around ``x``, inside the box ``[0, 1]``.

    APGD takes any object with these three methods, so it also runs where the perturbation lives
    elsewhere (``glassnet.robustness.embedding.TokenBall``: per-token balls in embedding space).
    ``context`` is per-example data the model needs besides ``x`` (unused here).
    """

    eps: float
    norm: str

    def start(self, x: torch.Tensor, context: Any, generator: torch.Generator | None) -> torch.Tensor:
        return _random_start(x, self.eps, self.norm, generator)

    def project(self, z: torch.Tensor, x: torch.Tensor, context: Any) -> torch.Tensor:
        return project(z, x, self.eps, self.norm)

    def ascent(self, grad: torch.Tensor, context: Any) -> torch.Tensor:
        return ascent(grad, self.norm)


# ----------------------------------------------------------------------------------------------
# FGSM and PGD


@register_attack("fgsm", NORMS, "Fast Gradient Sign Method (Goodfellow et al., 2015): one gradient step of size eps")
def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One step of size ``eps`` along the gradient's sign (linf) or direction (l2).

    With ``random_start`` the step starts at a uniform random point of the ball and moves
    ``1.25 * eps`` (Wong et al., 2020) before being projected back.
    """
    start = _random_start(x, eps, norm, generator) if random_start else x
    _, _, grad = _gradient(model, start, y, target, ce_loss)
    size = 1.25 * eps if random_start else eps
    return project(start + size * ascent(grad, norm), x, eps, norm).detach()


@register_attack("pgd", NORMS, "Projected Gradient Descent (Madry et al., 2018) with random start and restarts")
def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    steps: int = 20,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    loss: str = "ce",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Iterated projected gradient ascent on ``loss`` (``ce`` or ``dlr``).

    Args:
        steps: iterations per restart.
        step_size: per step (default ``2.5 * eps / steps``, Madry et al.).
        restarts: independent random starts; later restarts attack only the examples still standing.
        random_start: start at a uniform random point of the ball (the first restart included).
        loss: ``ce`` (cross-entropy) or ``dlr`` (Difference of Logits Ratio).
    """
    _check_count("steps", steps)
    _check_count("restarts", restarts)
    if loss not in LOSSES:
        raise UnknownNameError("loss", loss, LOSSES)
    size = 2.5 * eps / steps if step_size is None else step_size
    objective = LOSSES[loss]
    best, found = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    fallback = x.clone()  # the last iterate, returned where no restart succeeds
    for _restart in range(restarts):
        todo = (~found).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        x0, y0 = x[todo], y[todo]
        t0 = None if target is None else target[todo]
        start = _random_start(x0, eps, norm, generator) if random_start else x0.clone()
        adv, hit = _pgd_run(model, x0, y0, t0, start, eps, norm, steps, size, objective)
        best[todo] = torch.where(per_example(hit, adv), adv, best[todo])
        fallback[todo] = adv
        found[todo] = hit
    return torch.where(per_example(found, best), best, fallback).detach()


def _pgd_run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    start: torch.Tensor,
    eps: float,
    norm: str,
    steps: int,
    size: float,
    objective: Callable,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PGD run from ``start``: ``(first adversarial iterate, or the last iterate where none; success mask)``.

    An example leaves the batch as soon as an iterate fools the model: its answer is fixed from then
    on, so the later forward and backward passes could not change it. Every example's iterates are
    those of the full-batch loop (each depends on that example alone), only fewer are computed.
    """
    result, hit = start.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    active, current = torch.arange(len(x), device=x.device), start
    for _ in range(steps):
        _, logits, grad = _gradient(model, current, y, target, objective)
        fooled = succeeded(logits, y, target)
        if fooled.any():
            result[active[fooled]] = current[fooled]
            hit[active[fooled]] = True
            keep = ~fooled
            if not keep.any():
                return result, hit
            active, current, grad, x, y = active[keep], current[keep], grad[keep], x[keep], y[keep]
            target = None if target is None else target[keep]
        current = project(current + size * ascent(grad, norm), x, eps, norm).detach()
    with torch.no_grad():
        fooled = succeeded(model(current), y, target)
    result[active] = current
    hit[active[fooled]] = True
    return result, hit


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1. Received: {name}={value!r}")


# ----------------------------------------------------------------------------------------------
# APGD


def _checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD may halve its step size (Croce & Hein, 2020, section 3.2)."""
    points, previous, current = [0], 0.0, 0.22
    while current < 1:
        points.append(math.ceil(current * steps))
        previous, current = current, current + max(current - previous - 0.03, 0.06)
    return sorted(set(points))


def _apgd_single(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    ball: Ball,
    steps: int,
    objective: Callable,
    generator: torch.Generator | None,
    context: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One APGD run; returns ``(first adversarial iterate, or the highest-loss one where none; success mask)``.

    Every quantity of the schedule (step size, loss at the last checkpoint, count of increases,
    best point) is per example and the checkpoints are the same iterations for all, so an example
    leaves the batch as soon as it is fooled: the others' iterates are those of the full-batch loop.
    """
    rho, alpha = 0.75, 0.75
    points = set(_checkpoints(steps)[1:])
    current = ball.start(x, context, generator)
    loss, logits, grad = _gradient(model, current, y, target, objective, context)
    result, hit = current.clone(), succeeded(logits, y, target)
    # per active example: step size, best loss and point, the loss at the last checkpoint, whether
    # the step size was halved there, and how often the loss rose since then
    state = {
        "x": x,
        "y": y,
        "current": current,
        "previous": current.clone(),
        "grad": grad,
        "eta": torch.full((len(x),), 2.0 * ball.eps, dtype=x.dtype, device=x.device),
        "best_loss": loss.clone(),
        "best_x": current.clone(),
        "loss_at_point": loss.clone(),
        "eta_reduced": torch.zeros(len(x), dtype=torch.bool, device=x.device),
        "increases": torch.zeros(len(x), dtype=x.dtype, device=x.device),
    }
    if target is not None:
        state["target"] = target
    if context is not None:
        state["context"] = context
    active = torch.arange(len(x), device=x.device)

    def drop(fooled: torch.Tensor) -> None:
        nonlocal active
        keep = ~fooled
        active = active[keep]
        for key, value in state.items():
            state[key] = value[keep]

    drop(hit)
    last_point = 0
    for k in range(steps):
        if len(active) == 0:
            return result, hit
        s = state
        x_a, y_a, t_a, c_a, eta = s["x"], s["y"], s.get("target"), s.get("context"), s["eta"]
        with torch.no_grad():
            z = ball.project(s["current"] + per_example(eta, x_a) * ball.ascent(s["grad"], c_a), x_a, c_a)
            momentum = alpha if k > 0 else 1.0
            step = s["current"] + momentum * (z - s["current"]) + (1 - momentum) * (s["current"] - s["previous"])
            s["previous"], s["current"] = s["current"], ball.project(step, x_a, c_a)
        loss, logits, s["grad"] = _gradient(model, s["current"], y_a, t_a, objective, c_a)
        with torch.no_grad():
            improved = loss > s["best_loss"]
            s["increases"] += improved.to(x.dtype)
            s["best_x"] = torch.where(per_example(improved, x_a), s["current"], s["best_x"])
            s["best_loss"] = torch.where(improved, loss, s["best_loss"])
        fooled = succeeded(logits, y_a, t_a)
        if fooled.any():
            result[active[fooled]] = s["current"][fooled]
            hit[active[fooled]] = True
            drop(fooled)
        if k + 1 in points and len(active):
            s = state
            span = k + 1 - last_point
            halve = (s["increases"] < rho * span) | (~s["eta_reduced"] & (s["loss_at_point"] >= s["best_loss"]))
            s["eta"] = torch.where(halve, s["eta"] / 2, s["eta"])
            if halve.any():  # restart the halved examples from their best point, without momentum
                s["current"] = torch.where(per_example(halve, s["x"]), s["best_x"], s["current"])
                s["previous"] = torch.where(per_example(halve, s["x"]), s["current"], s["previous"])
                rows = halve.nonzero().squeeze(1)
                t_h = None if "target" not in s else s["target"][rows]
                c_h = None if "context" not in s else s["context"][rows]
                _, _, grad_restart = _gradient(model, s["current"][rows], s["y"][rows], t_h, objective, c_h)
                s["grad"] = s["grad"].index_copy(0, rows, grad_restart)
            s["eta_reduced"], s["loss_at_point"] = halve, s["best_loss"].clone()
            s["increases"] = torch.zeros_like(s["increases"])
            last_point = k + 1
    result[active] = state["best_x"]
    return result.detach(), hit


def _apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ball: Ball,
    target: torch.Tensor | None,
    steps: int,
    restarts: int,
    loss: str,
    generator: torch.Generator | None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """APGD with ``restarts``, each on the examples that no earlier run fooled."""
    _check_count("steps", steps)
    _check_count("restarts", restarts)
    objective = LOSSES[loss]
    result, found = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(restarts):
        todo = (~found).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        t0 = None if target is None else target[todo]
        c0 = None if context is None else context[todo]
        adv, hit = _apgd_single(model, x[todo], y[todo], t0, ball, steps, objective, generator, c0)
        result[todo] = adv
        found[todo] = hit
    return result


@register_attack("apgd-ce", NORMS, "Auto-PGD on the cross-entropy (Croce & Hein, 2020): step size set by itself")
def apgd_ce(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    steps: int = 100,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """APGD with the cross-entropy loss: momentum, and a step size halved when progress stalls."""
    return _apgd(model, x, y, Ball(eps, norm), target, steps, restarts, "ce", generator)


@register_attack("apgd-dlr", NORMS, "Auto-PGD on the Difference of Logits Ratio loss (scale-invariant)")
def apgd_dlr(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    steps: int = 100,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """APGD with the DLR loss, which no rescaling of the logits can flatten."""
    return _apgd(model, x, y, Ball(eps, norm), target, steps, restarts, "dlr", generator)


def apgd_targeted(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    classes: int = 3,
    steps: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """APGD-DLR targeted at each of the ``classes`` most likely wrong classes in turn (AutoAttack's APGD-T).

    Each later target attacks only the examples that are still classified correctly, so the result
    is an *untargeted* success whenever any target was reached.
    """
    return _apgd_targeted(model, x, y, Ball(eps, norm), classes, steps, generator)


def _apgd_targeted(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ball: Ball,
    classes: int,
    steps: int,
    generator: torch.Generator | None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    def forward(inputs: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        if context is None:
            return model(inputs)
        return model(inputs, context if rows is None else context[rows])

    with torch.no_grad():
        logits = forward(x)
    others = logits.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
    classes = min(classes, logits.shape[1] - 1)
    result = x.clone()
    standing = ~succeeded(logits, y)
    for rank in range(classes):
        todo = standing.nonzero().squeeze(1)
        if len(todo) == 0:
            break
        target = others[todo, rank]
        c0 = None if context is None else context[todo]
        adv = _apgd(model, x[todo], y[todo], ball, target, steps, 1, "dlr", generator, c0)
        with torch.no_grad():
            fooled = succeeded(forward(adv, todo), y[todo])
        result[todo[fooled]] = adv[fooled]
        standing[todo[fooled]] = False
    return result


# ----------------------------------------------------------------------------------------------
# Square attack


def _square_fraction(p_init: float, iteration: int, queries: int) -> float:
    """Square attack's schedule of the fraction of pixels changed, written for 10,000 queries."""
    i = int(iteration / max(queries, 1) * 10_000)
    for limit, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128)):
        if i <= limit:
            return p_init / divisor
    return p_init / (256 if i <= 8000 else 512)


@register_attack(
    "square",
    NORMS,
    "Square attack (Andriushchenko et al., 2020): score-based black box, random square updates",
    gradient_free=True,
)
@torch.no_grad()
def square(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    queries: int = 1000,
    p_init: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random search for a lower margin using the model's outputs only (no gradients).

    linf: starts from vertical stripes of ``+-eps``; each query re-draws one square window (one
    sign per channel). l2: starts from a grid of pseudo-Gaussian bumps of random sign scaled to
    the ``eps`` sphere; each query moves the perturbation's energy from a second window into a
    first one, where it adds a new pair of opposite-sign bumps (the paper's l2 update), and
    rescales to the sphere. A proposal is kept when the margin loss falls; an example stops as
    soon as it is fooled. Inputs of shape ``C x H x W`` get square windows; other shapes are
    viewed as ``1 x 1 x D`` (windows become segments).

    Args:
        queries: model evaluations per example (the first one scores the initial perturbation).
        p_init: initial fraction of the input that one window covers, decreasing on the paper's schedule.
    """
    _check_count("queries", queries)
    if not isinstance(p_init, (int, float)) or not 0 < p_init <= 1:
        raise ConfigError(f"p_init must be in (0, 1]. Received: p_init={p_init!r}")
    shape = x.shape
    view = x.reshape(len(x), *shape[1:]) if x.dim() == 4 else x.reshape(len(x), 1, 1, -1)
    channels, height, width = view.shape[1:]

    def rand(*size: int) -> torch.Tensor:
        return torch.rand(size, generator=generator).to(x.device)

    def signs(*size: int) -> torch.Tensor:
        return torch.where(rand(*size) < 0.5, -1.0, 1.0).to(x.dtype)

    def query(candidate: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return margin(model(candidate.reshape(-1, *shape[1:])), y[idx], None if target is None else target[idx])

    if norm == "linf":
        best = (view + eps * signs(len(x), channels, 1, width)).clamp(0, 1)
    else:
        best = _square_l2_start(view, eps, signs)
    loss = query(best, torch.arange(len(x), device=x.device))
    for i in range(queries - 1):
        todo = (loss >= 0).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        p = _square_fraction(p_init, i, queries)
        side_h = max(1, min(height, round(math.sqrt(p * height * width))))
        side_w = max(1, min(width, round(p * height * width / side_h)))
        if norm == "l2":  # a pair of opposite-sign bumps needs room for two halves
            side_w = max(side_w, min(width, 2))
        top = int(rand(1).item() * (height - side_h + 1))
        left = int(rand(1).item() * (width - side_w + 1))
        window = (slice(None), slice(None), slice(top, top + side_h), slice(left, left + side_w))
        if norm == "linf":
            candidate = best[todo].clone()
            candidate[window] = (view[todo][window] + eps * signs(len(todo), channels, 1, 1)).clamp(0, 1)
        else:
            top2 = int(rand(1).item() * (height - side_h + 1))
            left2 = int(rand(1).item() * (width - side_w + 1))
            second = (slice(None), slice(None), slice(top2, top2 + side_h), slice(left2, left2 + side_w))
            candidate = _square_l2_step(view[todo], best[todo], eps, window, second, signs)
        new_loss = query(candidate, todo)
        better = new_loss < loss[todo]
        best[todo[better]] = candidate[better]
        loss[todo[better]] = new_loss[better]
    return best.reshape(shape)


def _bump(height: int, width: int) -> torch.Tensor:
    """Square's pseudo-Gaussian block: ``R`` rings, ring ``i`` (0 at the centre) worth ``sum_{j=i+1}^{R+1} 1/j^2``."""
    rings = max(height, width) // 2 + 1
    rows = (torch.arange(height) - (height - 1) / 2).abs() / max(height / 2, 1)
    cols = (torch.arange(width) - (width - 1) / 2).abs() / max(width / 2, 1)
    ring = (torch.maximum(rows[:, None], cols[None, :]) * rings).floor().long().clamp(max=rings - 1)
    weights = 1.0 / torch.arange(1, rings + 2, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[i] = sum_{j >= i} weights[j]
    return tail[ring].float()


def _bump_pair(height: int, width: int) -> torch.Tensor:
    """Two bumps of opposite sign side by side (split along the longer side): the l2 update's building block."""
    if width >= height and width >= 2:
        half = width // 2
        return torch.cat([_bump(height, half), -_bump(height, width - half)], dim=1)
    if height >= 2:
        half = height // 2
        return torch.cat([_bump(half, width), -_bump(height - half, width)], dim=0)
    return _bump(height, width)


def _to_sphere(delta: torch.Tensor, eps: float) -> torch.Tensor:
    return delta * (eps / (flat_norm(delta, "l2") + 1e-12)).reshape(-1, 1, 1, 1)


def _square_l2_start(view: torch.Tensor, eps: float, signs: Callable) -> torch.Tensor:
    """A grid of bumps (about 5 x 5 tiles) with a random sign per tile and channel, on the eps sphere."""
    n, channels, height, width = view.shape
    tile_h, tile_w = max(1, height // 5), max(1, width // 5)
    delta = torch.zeros_like(view)
    bump = _bump(tile_h, tile_w).to(view)
    for top in range(0, height - tile_h + 1, tile_h):
        for left in range(0, width - tile_w + 1, tile_w):
            delta[:, :, top : top + tile_h, left : left + tile_w] = bump * signs(n, channels, 1, 1)
    return (view + _to_sphere(delta, eps)).clamp(0, 1)


def _square_l2_step(
    x: torch.Tensor, best: torch.Tensor, eps: float, first: tuple, second: tuple, signs: Callable
) -> torch.Tensor:
    """Move the energy of windows ``first`` and ``second`` (plus any unused budget) into ``first``.

    The new content of ``first`` points along its old content (per channel, unit norm) plus a new
    pair of opposite-sign bumps with a random sign per channel; ``second`` is emptied. The total is
    put back on the eps sphere and into the box.
    """
    n, channels = x.shape[:2]
    delta = best - x
    union = torch.zeros_like(delta[:1, :1])
    union[first] = 1
    union[second] = 1
    energy = (delta * union).flatten(1).pow(2).sum(1) + (eps**2 - delta.flatten(1).pow(2).sum(1)).clamp_min(0)
    old = delta[first]
    old = old / (old.flatten(2).norm(dim=2)[..., None, None] + 1e-12)
    pattern = _bump_pair(*old.shape[2:]).to(x)
    direction = old + pattern / pattern.norm() * signs(n, channels, 1, 1)
    direction = direction / (direction.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1) + 1e-12)
    delta[second] = 0
    delta[first] = direction * energy.sqrt().reshape(-1, 1, 1, 1)
    return (x + _to_sphere(delta, eps)).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# Minimum-norm attacks: Carlini-Wagner L2 and DeepFool


@register_attack(
    "cw",
    ("l2",),
    "Carlini-Wagner L2 (2017): smallest L2 perturbation, binary search on the constant",
    minimum_norm=True,
)
def carlini_wagner(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.0,
    norm: str = "l2",
    target: torch.Tensor | None = None,
    steps: int = 100,
    search_steps: int = 6,
    initial_const: float = 0.1,
    confidence: float = 0.0,
    lr: float = 0.05,
) -> torch.Tensor:
    """Minimise ``||delta||_2^2 + c * max(margin, -confidence)`` in tanh space with Adam.

    Binary search on ``c`` per example: halve the interval after a success, multiply ``c`` by 10
    while none has been found. Returns the smallest successful perturbation per example (the
    input itself where none succeeded).

    Args:
        steps: Adam iterations per value of ``c``.
        search_steps: values of ``c`` tried.
        initial_const: first ``c``.
        confidence: margin ``kappa`` by which the adversarial class must win.
        lr: Adam learning rate in tanh space.
    """
    _check_count("steps", steps)
    _check_count("search_steps", search_steps)
    n = len(x)
    w_clean = torch.atanh((x * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
    const = torch.full((n,), float(initial_const), device=x.device)
    low = torch.zeros(n, device=x.device)
    high = torch.full((n,), float("inf"), device=x.device)
    best_norm = torch.full((n,), float("inf"), device=x.device)
    best = x.clone()
    for _ in range(search_steps):
        w = w_clean.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([w], lr=lr)
        success_now = torch.zeros(n, dtype=torch.bool, device=x.device)
        for _ in range(steps):
            candidate = (torch.tanh(w) + 1) / 2
            logits = model(candidate)
            distance = (candidate - x).flatten(1).pow(2).sum(dim=1)
            hinge = torch.clamp(margin(logits, y, target), min=-confidence)
            loss = (distance + const * hinge).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                ok = (margin(logits, y, target) < -confidence + 1e-12) if confidence else succeeded(logits, y, target)
                l2 = distance.sqrt()
                improved = ok & (l2 < best_norm)
                best_norm = torch.where(improved, l2, best_norm)
                best = torch.where(per_example(improved, x), candidate.detach(), best)
                success_now |= ok
        with torch.no_grad():
            high = torch.where(success_now, torch.minimum(high, const), high)
            low = torch.where(success_now, low, torch.maximum(low, const))
            const = torch.where(torch.isfinite(high), (low + high) / 2, const * 10)
    return best.detach()


@register_attack(
    "deepfool",
    NORMS,
    "DeepFool (Moosavi-Dezfooli et al., 2016): smallest step across the linearised decision boundary",
    minimum_norm=True,
    targeted=False,
)
def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.0,
    norm: str = "l2",
    target: torch.Tensor | None = None,
    steps: int = 50,
    overshoot: float = 0.02,
    candidates: int = 10,
) -> torch.Tensor:
    """Step to the nearest linearised boundary among the ``candidates`` most likely classes until the label flips.

    Args:
        steps: maximum iterations.
        overshoot: the accumulated step is scaled by ``1 + overshoot`` to land past the boundary.
        candidates: classes (by clean logit) considered as the nearest boundary.
    """
    _check_count("steps", steps)
    with torch.no_grad():
        logits = model(x)
    k = min(candidates, logits.shape[1])
    classes = logits.argsort(dim=1, descending=True)[:, :k]
    classes = torch.cat([y[:, None], classes[classes != y[:, None]].reshape(len(x), -1)[:, : k - 1]], dim=1)
    total = torch.zeros_like(x)
    result = x.clone()
    active = torch.ones(len(x), dtype=torch.bool, device=x.device)
    dual = "l1" if norm == "linf" else "l2"
    for _ in range(steps):
        idx = active.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        current = (x[idx] + (1 + overshoot) * total[idx]).clamp(0, 1).requires_grad_(True)
        out = model(current)
        fooled = out.argmax(dim=1) != y[idx]
        picked = out.gather(1, classes[idx])
        grads = [torch.autograd.grad(picked[:, j].sum(), current, retain_graph=True)[0] for j in range(k)]
        with torch.no_grad():
            grads_t = torch.stack(grads, dim=1)  # n x k x ...
            w = grads_t[:, 1:] - grads_t[:, :1]
            f = (picked[:, 1:] - picked[:, :1]).detach()
            wnorm = w.flatten(2).abs().sum(dim=2) if dual == "l1" else w.flatten(2).norm(dim=2)
            distance = f.abs() / (wnorm + 1e-8)
            nearest = distance.argmin(dim=1)
            rows = torch.arange(len(idx), device=x.device)
            w_best, f_best, n_best = w[rows, nearest], f[rows, nearest], wnorm[rows, nearest]
            scale = per_example((f_best.abs() + 1e-4) / (n_best + 1e-8), x[idx])
            step = scale * w_best.sign() if norm == "linf" else scale * w_best / per_example(n_best + 1e-08, x[idx])
            step = torch.where(per_example(fooled, step), torch.zeros_like(step), step)
            total[idx] += step
            result[idx] = torch.where(per_example(fooled, current), current.detach(), result[idx])
            active[idx[fooled]] = False
    with torch.no_grad():
        final = (x + (1 + overshoot) * total).clamp(0, 1)
        result = torch.where(per_example(active, x), final, result)
    return result.detach()
