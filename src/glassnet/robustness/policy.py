"""Attacking an agent's observations: the return it keeps against the size of the perturbation.

The RL analogue of the accuracy-against-eps curve. At every step of seeded test episodes the
observation the agent sees is perturbed within an L-infinity ball of radius ``eps`` before it
acts: ``random`` (uniform noise, the reference), ``fgsm`` (one signed-gradient step) or ``pgd``
(``steps`` projected steps from a random start). The attacks push the decision away from the
clean one: for discrete actions they raise the cross-entropy of the clean action (the attacked
agent takes another action); for continuous actions they push the action vector as far as they
can from the clean one (squared distance). Vector observations are perturbed in units of each
feature's standard deviation (the policy's running statistics, else that of the states visited),
so ``eps = 0.1`` means a tenth of a typical variation of every feature; frames in pixel units of
[0, 1], clipped to the valid range.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from glassnet.errors import ConfigError, UnknownNameError
from glassnet.figures import rl as rl_figures
from glassnet.progress import Progress, note, progress_bar
from glassnet.rl.evaluation import TEST_SEED, collect_states, cpu_threads, evaluate_policy
from glassnet.train.run import Run

METHODS = ("random", "fgsm", "pgd")
DEFAULT_EPS = {"tabular": (0.02, 0.05, 0.1, 0.2), "image": (1 / 255, 2 / 255, 4 / 255)}
FRAGILE_SHARE = 0.5  # warn when the smallest eps's PGD removes half of what the agent gains over random play


class PerturbedAgent(nn.Module):
    """The policy acting on attacked observations (``method`` within ``eps``, see the module docstring)."""

    def __init__(
        self,
        policy: nn.Module,
        method: str,
        eps: float,
        scale: torch.Tensor,
        image: bool,
        steps: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.policy, self.method, self.eps, self.steps, self.image = policy, method, eps, steps, image
        self.register_buffer("scale", scale)
        self.generator = torch.Generator().manual_seed(seed)
        self.discrete = _discrete(policy)
        self.decisions, self.changed = 0, 0.0  # decisions taken; how many changed (discrete) or how far (continuous)

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        attacked = self.perturb(observations)
        with torch.no_grad():
            clean = self.policy.act(observations, deterministic=True)
            chosen = self.policy.act(attacked, deterministic=True)
        if self.discrete:
            self.changed += float((chosen != clean).sum())
        else:
            self.changed += float((chosen - clean).abs().mean(dim=-1).sum())
        self.decisions += len(observations)
        return chosen

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """The attacked observations."""
        if self.eps == 0:
            return x
        noise = torch.rand(x.shape, generator=self.generator).to(x.device) * 2 - 1
        if self.method == "random":
            return self._apply(x, noise * self.eps)
        with torch.no_grad():
            clean = self.policy(x)
        target = clean.argmax(dim=-1) if self.discrete else clean
        steps, size = (1, self.eps) if self.method == "fgsm" else (self.steps, 2.5 * self.eps / self.steps)
        delta = torch.zeros_like(x) if self.method == "fgsm" else noise * self.eps
        for _ in range(steps):
            delta = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                out = self.policy(self._apply(x, delta))
                loss = F.cross_entropy(out, target) if self.discrete else ((out - target) ** 2).sum()
                (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta + size * grad.sign()).clamp(-self.eps, self.eps)
        return self._apply(x, delta.detach())

    def _apply(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        moved = x + delta * self.scale
        return moved.clamp(0.0, 1.0) if self.image else moved


def _discrete(policy: nn.Module) -> bool:
    """Whether the policy chooses among discrete actions (``actor_critic`` over a Discrete space, ``q_network``)."""
    return not getattr(policy, "continuous", False) and not hasattr(policy, "q1")


@cpu_threads()  # one thread: steady per-step timings, no stalls when the cores are shared
def attack_policy(
    run: Run,
    attack: str | Sequence[str] = METHODS,
    eps: Sequence[float] | None = None,
    episodes: int = 10,
    steps: int = 10,
    seed: int = 0,
    progress: Progress = None,
) -> dict[str, Any]:
    """Return against eps for each attack; writes ``results/robustness.json`` and ``figures/robustness_return.png``.

    Args:
        run: a ``Run`` trained with ``--env``.
        attack: ``random``, ``fgsm`` and/or ``pgd``.
        eps: perturbation budgets (default: 0.02 to 0.2 feature standard deviations; 1 to 4 / 255 for frames).
        episodes: seeded test episodes per point of each curve.
        steps: PGD's iterations.
        seed: the attacks' random draws.
        progress: a bar over the (attack, eps) points with elapsed time and time left: True on stderr, or
            a text stream; None (default) or False draws nothing.

    Raises:
        UnknownNameError: an attack is not ``random``, ``fgsm`` or ``pgd``.
        ConfigError: an eps is negative or not finite, or a count is not a positive integer.
    """
    methods = [attack] if isinstance(attack, str) else list(attack)
    for method in methods:
        if method not in METHODS:
            raise UnknownNameError("policy attack", method, list(METHODS))
    for name, value in (("episodes", episodes), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer. Received: {value!r}")
    spec = run.spec
    image = spec.modality == "image"
    budgets = sorted({0.0, *(float(e) for e in (eps if eps is not None else DEFAULT_EPS[spec.modality]))})
    if any(not math.isfinite(e) or e < 0 for e in budgets):
        raise ConfigError(f"eps must be finite and >= 0. Received: {list(eps or [])}")
    started = time.perf_counter()
    model, environment = run.model.eval(), run.data()
    scale = torch.ones(spec.input_shape) if image else _feature_scale(model, environment)
    curves: dict[str, list[dict[str, float]]] = {}
    with progress_bar(1 + len(methods) * len(budgets), "attack", progress, unit="points") as bar:
        note(bar, "clean")
        clean = evaluate_policy(model, environment, episodes, seed=TEST_SEED)
        bar.update(1)
        for method in methods:
            curves[method] = []
            for budget in budgets:
                note(bar, f"{method} eps={budget:g}")
                agent = PerturbedAgent(model, method, budget, scale, image, steps, seed)
                scores = clean if budget == 0 else evaluate_policy(agent, environment, episodes, seed=TEST_SEED)
                point = {"eps": budget, "return_mean": scores["return_mean"], "return_std": scores["return_std"]}
                point["changed"] = round(agent.changed / max(agent.decisions, 1), 6)
                curves[method].append(point)
                bar.update(1)
    from glassnet.rl.task import RandomPolicy

    floor = evaluate_policy(RandomPolicy(spec), environment, episodes, seed=TEST_SEED)["return_mean"]
    result: dict[str, Any] = {
        "kind": "policy",
        "task": "control",
        "norm": "linf",
        "units": "pixel values in [0, 1]" if image else "standard deviations of each observation feature",
        "eps": budgets,
        "episodes": episodes,
        "seeds": [TEST_SEED, TEST_SEED + episodes - 1],
        "pgd_steps": steps,
        "discrete": _discrete(model),
        "changed": "share of decisions the attack changed" if _discrete(model) else "mean |action shift| per step",
        "clean_return": clean["return_mean"],
        "random_policy_return": floor,
        "curves": curves,
        "warnings": _warnings(curves, clean["return_mean"], floor),
    }
    path = run.figure("robustness_return")
    rl_figures.return_curves(curves, floor, result["units"], path)
    result["figures"] = [path.name]
    result["time_s"] = round(time.perf_counter() - started, 3)
    run.write_result("robustness", result)
    return result


def _feature_scale(model: nn.Module, environment: Any) -> torch.Tensor:
    """Each observation feature's standard deviation: the policy's running statistics, else the states'."""
    for module in model.modules():
        if hasattr(module, "var") and hasattr(module, "count") and float(module.count) > 1:
            return module.var.clamp_min(1e-12).sqrt().float()
    states = collect_states(model, environment, 2000)
    return states.std(dim=0).clamp_min(1e-6)


def _warnings(curves: dict[str, list[dict[str, float]]], clean: float, floor: float) -> list[str]:
    """A plain sentence when the weakest perturbation already takes away much of what the agent learnt."""
    out = []
    gained = clean - floor
    for method in ("pgd", "fgsm"):
        points = [p for p in curves.get(method, []) if p["eps"] > 0]
        if not points or gained <= 0:
            continue
        first = points[0]
        lost = (clean - first["return_mean"]) / gained
        if lost >= FRAGILE_SHARE:
            out.append(
                f"{method} at eps {first['eps']:.3g} takes away {lost:.0%} of what the agent gains over a random "
                f"policy (return {first['return_mean']:.1f} against {clean:.1f} clean, {floor:.1f} random): "
                "its decisions hang on tiny changes of what it observes"
            )
            break
    return out
