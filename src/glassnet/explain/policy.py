"""Explaining an agent: which observation features (or pixels) drive the action it chooses and the value
it expects.

The states are those the deterministic policy meets in seeded test episodes. The decision is
attributed as any classifier's (discrete actions: the logit or Q-value of the chosen action) or
regressor's (continuous actions: each action dimension); the value estimate is attributed through
``ValueHead`` (the critic, the best action's Q, or SAC's smaller twin Q). Vector observations are
summarised per feature (mean |attribution| and its signed mean); frames as heat maps over the
newest frame of the stack. For discrete actions the deletion test checks that removing the
top-ranked features (to the mean state) changes the decision faster than removing random ones.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from glassnet.errors import ConfigError
from glassnet.explain import pictures, trust
from glassnet.explain.attribute import explain, resolve_method
from glassnet.explain.budget import DEFAULT_MEMORY_MB
from glassnet.explain.methods import METHODS
from glassnet.figures import rl as rl_figures
from glassnet.models.policies import ValueHead
from glassnet.rl.evaluation import TEST_SEED, collect_states, cpu_threads
from glassnet.train.run import Run

MAX_ACTION_DIMS = 8  # continuous actions: the first dimensions explained
SHOWN_FRAMES = 8


@cpu_threads()  # one thread: steady per-step timings, no stalls when the cores are shared
def explain_policy(
    run: Run,
    method: str = "integrated_gradients",
    n: int = 64,
    memory_mb: float = DEFAULT_MEMORY_MB,
    checks: bool = True,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Attribute an agent's decisions and value estimates; writes ``results/explain.json`` and figures.

    Args:
        run: a ``Run`` trained with ``--env``.
        method: an attribution method (``glassnet.explain.METHODS``).
        n: states to explain, from test episodes.
        memory_mb: memory budget of one forward and backward pass.
        checks: run the deletion test (discrete actions).
        seed: random draws of the method and of the check.
        **options: more arguments of ``explain`` (``n_steps``, ``n_samples`` ...).

    Raises:
        ConfigError: the method does not fit the policy, or an option is invalid.
    """
    name = resolve_method(method)
    options.pop("layer", None)
    model, spec = run.model.eval(), run.spec
    if name == "grad_cam" and spec.modality != "image":
        raise ConfigError("grad_cam needs convolutions: this agent sees vector observations; use integrated_gradients")
    started = time.perf_counter()
    states = collect_states(model, run.data(), n, seed=TEST_SEED)
    image = spec.modality == "image"
    baseline = torch.zeros_like(states[:1]) if image else states.mean(dim=0, keepdim=True)
    kwargs = {"baselines": baseline, "modality": spec.modality, "memory_mb": memory_mb, "seed": seed, **options}
    discrete = spec.extra["action"]["kind"] == "discrete"
    with torch.no_grad():
        decisions = model(states)
    if discrete:
        chosen = decisions.argmax(dim=-1)
        action = [("chosen action", explain(model, states, name, target=chosen, **kwargs))]
    else:
        dims = min(spec.num_outputs, MAX_ACTION_DIMS)
        action = [(f"action {k}", explain(model, states, name, target=k, **kwargs)) for k in range(dims)]
    value = explain(ValueHead(model), states, name, target=0, **kwargs)
    result: dict[str, Any] = {
        "kind": "policy",
        "method": name,
        "method_label": METHODS[name].label,
        "method_description": METHODS[name].description,
        "modality": spec.modality,
        "task": "control",
        "examples": len(states),
        "states": f"{len(states)} states met by the deterministic policy in test episodes (seeds from {TEST_SEED})",
        "baseline": "black frames" if image else "the mean of the explained states",
        "warnings": [],
        "figures": [],
    }
    if discrete:
        names = list(spec.class_names) or [str(k) for k in range(spec.num_outputs)]
        counts = torch.bincount(chosen, minlength=spec.num_outputs).tolist()
        result["actions_taken"] = {names[k]: int(c) for k, c in enumerate(counts)}
    if not image:
        features = list(spec.feature_names) or [f"observation {i}" for i in range(states[0].numel())]
        result["features"] = _feature_table(features, action, value)
        path = run.figure("explain_policy")
        rl_figures.feature_importance(result["features"], path)
        result["figures"].append(path.name)
    else:
        result["figures"] += _frames(run, states, action[0][1].values, value.values, decisions, spec)
    if checks and discrete:
        faith = trust.deletion_insertion(
            model, states, action[0][1].values, chosen, baseline.expand_as(states), spec.modality, seed=seed
        )
        result["trust"] = {"faithfulness": faith}
        if not faith["passed"]:
            result["warnings"].append(
                "the attributions fail the deletion test: removing the top-ranked features changes the chosen "
                "action no faster than removing random ones; do not read them as the policy's reasons"
            )
    result["time_s"] = round(time.perf_counter() - started, 3)
    run.write_result("explain", result)
    return result


def _feature_table(names: list[str], action: list[tuple[str, Any]], value: Any) -> list[dict[str, Any]]:
    """Per observation feature: mean |attribution| to the action(s) and to the value, and signed means,
    the magnitudes as shares of their totals, sorted by the action's share."""
    action_abs = sum(a.values.flatten(1).abs().mean(dim=0) for _, a in action) / len(action)
    action_signed = sum(a.values.flatten(1).mean(dim=0) for _, a in action) / len(action)
    value_abs, value_signed = value.values.flatten(1).abs().mean(dim=0), value.values.flatten(1).mean(dim=0)
    action_share = action_abs / action_abs.sum().clamp_min(1e-12)
    value_share = value_abs / value_abs.sum().clamp_min(1e-12)
    rows = [
        {
            "feature": names[i],
            "action_share": round(float(action_share[i]), 6),
            "action_mean": round(float(action_signed[i]), 6),
            "value_share": round(float(value_share[i]), 6),
            "value_mean": round(float(value_signed[i]), 6),
        }
        for i in range(len(names))
    ]
    return sorted(rows, key=lambda r: -r["action_share"])


def _frames(
    run: Run, states: torch.Tensor, action: torch.Tensor, value: torch.Tensor, decisions: torch.Tensor, spec: Any
) -> list[str]:
    """Heat maps of the newest frame for the action and for the value, a few states each."""
    picked = np.linspace(0, len(states) - 1, min(SHOWN_FRAMES, len(states))).round().astype(int)
    frames = states[picked, -1:].numpy()
    names = list(spec.class_names)
    titles = [names[int(decisions[i].argmax())] if names else f"state {i}" for i in picked]
    written = []
    for label, values in (("action", action), ("value", value)):
        heat = values[picked].sum(dim=1).numpy()
        path = run.figure(f"explain_policy_{label}")
        pictures.image_overlays(frames, heat, [f"{t} ({label})" for t in titles], path)
        written.append(path.name)
    return written
