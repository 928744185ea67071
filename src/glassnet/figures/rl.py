"""Figures of reinforcement-learning runs: learning curves and training diagnostics in environment steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from glassnet.figures import pyplot, save_figure

DIAGNOSTICS = (
    ("train/entropy", "policy entropy"),
    ("train/kl", "approximate KL per iteration"),
    ("train/explained_variance", "explained variance of the value"),
    ("train/value_mean", "mean value estimate"),
    ("train/q", "mean Q estimate"),
    ("train/td_error", "mean |TD error|"),
    ("train/epsilon", "exploration epsilon"),
    ("train/alpha", "entropy temperature alpha"),
)


def _steps(history: Sequence[dict[str, Any]]) -> list[float]:
    """Environment steps at the end of each period (the validation's count, else the period's mean)."""
    return [h.get("val/env_steps", h.get("train/env_steps", h.get("step", i))) for i, h in enumerate(history)]


def learning_curve(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Return and episode length of the training episodes (mean per period) and of the evaluation
    episodes (mean +- std, deterministic policy) against environment steps."""
    plt = pyplot()
    steps = _steps(history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (train_key, val_key, std_key, label) in zip(
        axes,
        (
            ("train/episode_return", "val/return_mean", "val/return_std", "episode return"),
            ("train/episode_length", "val/length_mean", None, "episode length"),
        ),
    ):
        train = [(s, h[train_key]) for s, h in zip(steps, history) if h.get(train_key) is not None]
        if train:
            ax.plot(*zip(*train), color="0.6", label="training episodes (mean per period)")
        evaluated = [
            (s, h[val_key], h.get(std_key) or 0.0) for s, h in zip(steps, history) if h.get(val_key) is not None
        ]
        if evaluated:
            x, mean, std = zip(*evaluated)
            ax.plot(x, mean, color="C0", marker="o", label="evaluation (deterministic policy)")
            if std_key is not None:
                low, high = [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)]
                ax.fill_between(x, low, high, color="C0", alpha=0.2)
        ax.set(xlabel="environment steps", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].set_title("Learning curve")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def diagnostics(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> bool:
    """One panel per diagnostic the algorithm logged (entropy, KL, value and Q estimates, TD error ...);
    False (nothing drawn) when it logged none."""
    shown = [(key, label) for key, label in DIAGNOSTICS if any(h.get(key) is not None for h in history)]
    if not shown:
        return False
    plt = pyplot()
    steps = _steps(history)
    columns = min(3, len(shown))
    rows = (len(shown) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, (key, label) in zip(axes.flat, shown):
        points = [(s, h[key]) for s, h in zip(steps, history) if h.get(key) is not None]
        ax.plot(*zip(*points), color="C1", marker=".")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("environment steps", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    save_figure(fig, path)
    return True


def feature_importance(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], top: int = 15) -> None:
    """Share of the attribution each observation feature gets, for the action and for the value."""
    plt = pyplot()
    shown = list(rows)[:top][::-1]
    names = [r["feature"] for r in shown]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.32 * len(shown) + 1.4), sharey=True)
    for ax, key, title, color in (
        (axes[0], "action_share", "drives the action", "C0"),
        (axes[1], "value_share", "drives the value estimate", "C2"),
    ):
        ax.barh(names, [r[key] for r in shown], color=color)
        ax.set(title=title, xlabel="share of mean |attribution|")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def return_curves(
    curves: dict[str, list[dict[str, float]]], floor: float, units: str, path: str | os.PathLike[str]
) -> None:
    """Evaluation return against the perturbation budget, one line per attack, with the random policy's return."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for method, points in curves.items():
        x = [p["eps"] for p in points]
        mean = [p["return_mean"] for p in points]
        std = [p["return_std"] for p in points]
        ax.plot(x, mean, marker="o", label=method)
        ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.15)
    ax.axhline(floor, color="grey", linestyle="--", linewidth=1, label="random policy")
    ax.set(xlabel=f"eps ({units})", ylabel="episode return", title="Return under observation perturbations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
