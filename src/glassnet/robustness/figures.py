"""Figures of the attack stage: accuracy against eps, adversarial examples beside their originals, and the
feature-by-feature changes of attacked table rows (a table in the report, not a picture)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.figures import pyplot, save_figure


def accuracy_curves(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Accuracy against eps for each attack (and the worst case, bold), starting from the clean accuracy."""
    plt = pyplot()
    eps = [0.0, *result["eps"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    looks = (("--", "o"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"))  # apart without colour, and above
    for k, (name, curve) in enumerate(result["curves"].items()):  # the worst case, which often shares points
        style, marker = looks[k % len(looks)]
        ax.plot(eps, [result["clean_accuracy"], *curve], linestyle=style, marker=marker, markerfacecolor="none",
                label=name, zorder=3)  # fmt: skip
    worst = result.get("worst_case")
    if worst:
        ax.plot(
            eps, [result["clean_accuracy"], *worst["accuracy"]], marker="s", color="black", linewidth=2.5,
            label="worst case (" + " + ".join(worst["attacks"]) + ")",
        )  # fmt: skip
    unit = "eps (fraction of the mean embedding norm, per token)" if result["space"] == "embedding" else "eps"
    norm = {"linf": "L-infinity: largest change of any one value", "l2": "L2: length of the whole change"}.get(
        result["norm"], result["norm"]
    )
    ax.set(xlabel=f"{unit} ({norm})", ylabel="accuracy", ylim=(-0.02, 1.02), title="Accuracy under attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def adversarial_examples(
    originals: np.ndarray,
    adversarial: np.ndarray,
    records: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
) -> bool:
    """Rows of (original, adversarial, perturbation magnified to the full colour range), with predictions.

    Images are drawn as pictures, pixel for pixel; series as bar pairs per value. Tables are not drawn: a
    row of numbers reads better as numbers (``feature_changes``, a table in the report), so nothing is
    written for them and a figure that an earlier attack left at ``path`` is removed.

    Returns:
        Whether a figure was written.
    """
    if originals.ndim == 2:
        Path(path).unlink(missing_ok=True)
        return False
    plt = pyplot()
    count = len(records)
    image = originals.ndim == 4
    fig, axes = plt.subplots(3, count, figsize=(1.9 * count, 6.2), squeeze=False)

    def name(index: int) -> str:
        return class_names[index] if index < len(class_names) else str(index)

    for column, record in enumerate(records):
        clean, adv = originals[column], adversarial[column]
        delta = adv - clean
        scale = float(np.abs(delta).max()) or 1.0
        if image:
            axes[0, column].imshow(_picture(clean), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[1, column].imshow(_picture(adv), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[2, column].imshow(
                _picture(delta / (2 * scale) + 0.5), cmap="RdBu_r", vmin=0, vmax=1, interpolation="nearest"
            )
        else:
            features = np.arange(clean.size)
            axes[0, column].bar(features, clean.ravel(), color="#4a78b5")
            axes[1, column].bar(features, adv.ravel(), color="#c0504d")
            axes[2, column].bar(features, delta.ravel() / scale, color="#777777")
        axes[0, column].set_title(
            f"{name(record['clean_prediction'])} ({record['clean_confidence']:.0%})", fontsize=8, color="#1f6f2f"
        )
        axes[1, column].set_title(
            f"{name(record['adversarial_prediction'])} ({record['adversarial_confidence']:.0%})",
            fontsize=8,
            color="#b02a2a",
        )
        axes[2, column].set_title(f"delta x{1 / scale:.0f}" if scale < 1 else "delta", fontsize=8)
        for row in range(3):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    axes[0, 0].set_ylabel("original", fontsize=9)
    axes[1, 0].set_ylabel("adversarial", fontsize=9)
    axes[2, 0].set_ylabel("perturbation\n(magnified)", fontsize=9)
    save_figure(fig, path)
    return True


SHOWN_FEATURES = 6  # changed features listed per tabular example, the largest changes first


def feature_changes(
    originals: np.ndarray,
    adversarial: np.ndarray,
    feature_names: Sequence[str] = (),
    spread: Sequence[float] | None = None,
    top: int = SHOWN_FEATURES,
) -> list[dict[str, Any]]:
    """What an attack changed in each table row, feature by feature, in the features' own units.

    Args:
        originals: ``N x F`` clean rows, in the data's units.
        adversarial: the attacked rows, same shape and units.
        feature_names: one name per column (default ``x0``, ``x1`` ...).
        spread: each feature's training standard deviation (``DataSpec.input_std``); changes are then
            ranked, and also given, in standard deviations, so that features of different units compare.
        top: features listed per row.

    Returns:
        Per row: ``{"changed_features": how many features changed, "changes": [{"feature", "original",
        "adversarial", "change", "change_sd"?}, ...]}`` (the ``top`` largest changes first; values rounded to
        six significant digits), ready to go into the row's record in ``robustness.json``.
    """
    originals, adversarial = np.asarray(originals, dtype=float), np.asarray(adversarial, dtype=float)
    width = originals.shape[1]
    names = [feature_names[j] if j < len(feature_names) else f"x{j}" for j in range(width)]
    sd = np.asarray(spread, dtype=float) if spread is not None and len(spread) == width else None
    out = []
    for clean, adv in zip(originals, adversarial, strict=True):
        delta = adv - clean
        # float32 round trips through the attack's unit box move untouched values by a few ulps: not a change
        changed = np.abs(delta) > 1e-5 * (np.abs(clean) + (sd if sd is not None else 1.0))
        size = np.abs(delta) / sd if sd is not None else np.abs(delta)
        order = [j for j in np.argsort(-size, kind="stable") if changed[j]][:top]
        rows = []
        for j in order:
            row = {"feature": names[j], "original": _round(clean[j]), "adversarial": _round(adv[j]),
                   "change": _round(delta[j])}  # fmt: skip
            if sd is not None:
                row["change_sd"] = _round(delta[j] / sd[j])
            rows.append(row)
        out.append({"changed_features": int(changed.sum()), "changes": rows})
    return out


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")


def _picture(values: np.ndarray) -> np.ndarray:
    """``C x H x W`` to something ``imshow`` draws: grey for one channel, RGB for three, the mean otherwise."""
    values = np.clip(values, 0, 1)
    if values.shape[0] == 3:
        return values.transpose(1, 2, 0)
    return values.mean(axis=0) if values.shape[0] != 1 else values[0]


def metric_curves(
    curves: dict[str, list[dict[str, float]]],
    clean: float,
    metric: str,
    path: str | os.PathLike[str],
    factor: float = 255,
    suffix: str = "/255",
) -> None:
    """A structured task's score (mean IoU, mAP, WER) against the L-infinity budget, one line per attack, and the
    clean score; eps is drawn times ``factor`` (grey levels for images, standard deviations for spectrograms)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for method, points in curves.items():
        ax.plot([p["eps"] * factor for p in points], [p[metric] for p in points], marker="o", label=method)
    ax.axhline(clean, color="grey", linestyle="--", linewidth=1, label="clean")
    label = "eps (grey levels of 255)" if factor == 255 else f"eps ({suffix.strip()})"
    ax.set(xlabel=label, ylabel=metric, title=f"{metric} under attack", ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
