"""Plain-word checks of an agent's training logs: entropy collapse, exploding values, growing TD errors.

Each check reads the per-period history that the trainer keeps (``train/entropy``, ``train/q``,
``train/value_mean``, ``train/td_error``, ``train/kl``, ``train/explained_variance`` and the
returns) and says, in one sentence, what went wrong and what to try. They are heuristics with
stated thresholds, not proofs: a warning is a reason to look at the diagnostics figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from glassnet.data.spec import DataSpec

COLLAPSE_SHARE = 0.05  # discrete: entropy below 5% of the uniform policy's
COLLAPSE_STD_FACTOR = 100.0  # continuous: the policy's spread shrank 100-fold
VALUE_FACTOR = 10.0  # predicted values beyond 10x the largest return ever seen (or its discounted bound)
TD_GROWTH = 10.0  # TD error of the last period over its smallest one
KL_LIMIT = 0.1  # mean approximate KL of PPO's updates per iteration


def _series(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(h[key]) for h in history if isinstance(h.get(key), (int, float))]


def diagnose(history: Sequence[dict[str, Any]], spec: DataSpec, gamma: float | None = None) -> dict[str, Any]:
    """Check the training history of an agent.

    Args:
        history: the trainer's per-period logs.
        spec: the control spec (action kind and count).
        gamma: the algorithm's discount, for the bound on values (``max |r| / (1 - gamma)``).

    Returns:
        ``warnings`` (sentences), ``checks`` (name -> {"value", "threshold", "passed"}) and ``final``
        (the last period's diagnostics).
    """
    checks: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    action = spec.extra.get("action", {})
    entropy = _series(history, "train/entropy")
    if entropy:
        if action.get("kind") == "discrete":
            uniform = math.log(max(2, int(action.get("n", spec.num_outputs))))
            share = entropy[-1] / uniform
            passed = share >= COLLAPSE_SHARE
            checks["entropy"] = {"value": share, "threshold": COLLAPSE_SHARE, "passed": passed}
            if not passed:
                warnings.append(
                    f"entropy collapse: the policy's entropy fell to {share:.1%} of a uniform policy's, so it "
                    "has stopped exploring; if the return is still low, raise step.entropy or lower step.lr"
                )
        elif len(entropy) > 1:
            dims = max(1, int(action.get("dim", spec.num_outputs)))
            shrink = math.exp((entropy[0] - entropy[-1]) / dims)  # per-dimension spread ratio (Gaussian)
            passed = shrink < COLLAPSE_STD_FACTOR
            checks["entropy"] = {"value": shrink, "threshold": COLLAPSE_STD_FACTOR, "passed": passed}
            if not passed:
                warnings.append(
                    f"entropy collapse: the policy's spread shrank {shrink:.0f}-fold per action dimension; "
                    "exploration has nearly stopped"
                )
    values = _series(history, "train/q") or _series(history, "train/value_mean")
    returns = _series(history, "train/episode_return") + _series(history, "val/return_max")
    returns += [-x for x in _series(history, "val/return_min")]
    if values:
        largest = max([abs(r) for r in returns] + [1.0])
        rewards = _series(history, "train/reward_max")
        bound = max(rewards) / (1 - gamma) if rewards and gamma is not None and gamma < 1 else largest
        limit = VALUE_FACTOR * max(largest, bound)
        peak = max(abs(v) if math.isfinite(v) else math.inf for v in values)
        passed = peak <= limit
        checks["values"] = {"value": peak, "threshold": limit, "passed": passed}
        if not passed:
            warnings.append(
                f"exploding values: the value estimates reached {peak:.3g}, beyond {limit:.3g} (10x the largest "
                "return possible); lower step.lr, clip gradients, or update the target network less often"
            )
    td = _series(history, "train/td_error")
    if len(td) > 2:
        growth = td[-1] / max(min(td), 1e-12)
        passed = growth <= TD_GROWTH
        checks["td_error"] = {"value": growth, "threshold": TD_GROWTH, "passed": passed}
        if not passed:
            warnings.append(
                f"growing TD errors: the last period's TD error is {growth:.1f}x its smallest; the critic is "
                "not keeping up (lower step.lr or raise step.target_update_interval)"
            )
    kl = _series(history, "train/kl")
    if kl:
        mean = sum(kl) / len(kl)
        passed = mean <= KL_LIMIT
        checks["kl"] = {"value": mean, "threshold": KL_LIMIT, "passed": passed}
        if not passed:
            warnings.append(
                f"large policy updates: the mean approximate KL per iteration is {mean:.3f} (above {KL_LIMIT}); "
                "lower step.lr, or set step.target_kl=0.02"
            )
    explained = _series(history, "train/explained_variance")
    if len(explained) > 2:
        last = explained[-1]
        passed = last > 0
        checks["explained_variance"] = {"value": last, "threshold": 0.0, "passed": passed}
        if not passed:
            warnings.append(
                f"the value function explains none of the returns' variance at the end ({last:.2f}); the "
                "advantages are noise (try more value epochs or a larger critic)"
            )
    keys = ("train/entropy", "train/kl", "train/explained_variance", "train/q", "train/value_mean", "train/td_error")
    final = {k.split("/", 1)[1]: history[-1][k] for k in keys if history and k in history[-1]}
    return {"warnings": warnings, "checks": checks, "final": final}
