"""Trust checks of attributions: faithfulness (deletion and insertion curves, infidelity, max-sensitivity)
and sanity (model randomisation). Each returns plain numbers and whether the method passed.

- Deletion: the most important input units (pixels, features, tokens, time steps) are replaced by
  the baseline first; a faithful explanation makes the target's probability fall faster than a
  random order does (smaller area under the curve). Insertion starts from the baseline and puts
  the most important units back first (larger area is better).
- Infidelity (Yeh et al. 2019, Captum): how badly ``attributions . noise`` predicts the change of
  the output under small noise; compared with random attributions on the same noise.
- Max-sensitivity (Captum): the largest relative change of the explanation when the input moves
  slightly; reported, smaller is steadier.
- Model randomisation (Adebayo et al. 2018): attributions of a model whose weights are re-drawn at
  random must differ from the trained model's; a high rank correlation means the method shows the
  input, not what the model learned. On text the profile over token positions that every example
  shares is removed from each model's attributions first (``position_residuals``): a recurrent
  network's gradients fade with the distance to the end of the text whatever its weights, and that
  architecture-given profile would otherwise decide the correlation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from glassnet.data.modality import get_modality
from glassnet.models.outputs import batched_outputs

DELETION_STEPS = 10
RANDOM_ORDERS = 3
RANDOMISATION_THRESHOLD = 0.5  # mean rank correlation trained vs randomised model above which the test fails
# text: at least this share of the trained model's attribution variance must vary between examples beyond
# what the token's position explains; below it the explanation is (nearly) the same map for every text
MIN_EXAMPLE_SHARE = 0.05
POSITION_FIT_ROUNDS = 25


def output_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch: int) -> torch.Tensor:
    """The target's probability (classifiers) or raw output (single-output models), without gradients."""
    outputs = batched_outputs(model, inputs, batch, device=inputs.device).reshape(len(inputs), -1)
    if outputs.shape[1] > 1:
        outputs = outputs.softmax(dim=1)
    return outputs.gather(1, targets.reshape(-1, 1).cpu()).squeeze(1)


def unit_view(values: torch.Tensor, modality: str) -> torch.Tensor:
    """Attributions per unit, ``N x U``, as the modality groups them (``Modality.unit_view``): image and
    spectrogram pixels (channels summed), else every value.

    Args:
        values: attributions, one example per row.
        modality: a registered modality name.
    """
    return get_modality(modality).unit_view(values)


def _apply(inputs: torch.Tensor, baseline: torch.Tensor, chosen: torch.Tensor, modality: str) -> torch.Tensor:
    """``inputs`` with the ``chosen`` units (``N x U`` booleans) set to the baseline."""
    return get_modality(modality).replace_units(inputs, baseline, chosen)


def _curves(
    model: nn.Module,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    targets: torch.Tensor,
    modality: str,
    fractions: np.ndarray,
    batch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean deletion and insertion curves for one ordering of the units (highest score first, ties in random order)."""
    ranked = scores.masked_fill(~valid, float("-inf"))
    shuffle = torch.rand(scores.shape, generator=torch.Generator().manual_seed(len(scores))).argsort(dim=1)
    shuffle = shuffle.to(scores.device)
    order = shuffle.gather(1, ranked.gather(1, shuffle).argsort(dim=1, descending=True, stable=True))
    rank = order.argsort(dim=1)
    counts = valid.sum(dim=1)
    deletion, insertion = [], []
    for fraction in fractions:
        k = torch.round(counts.float() * float(fraction)).long()
        chosen = (rank < k[:, None]) & valid
        deleted = _apply(inputs, baseline, chosen, modality)
        inserted = _apply(inputs, baseline, valid & ~chosen, modality)
        deletion.append(float(output_scores(model, deleted, targets, batch).mean()))
        insertion.append(float(output_scores(model, inserted, targets, batch).mean()))
    return np.array(deletion), np.array(insertion)


def deletion_insertion(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    targets: torch.Tensor,
    baseline: torch.Tensor,
    modality: str,
    valid: torch.Tensor | None = None,
    steps: int = DELETION_STEPS,
    batch: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Deletion and insertion curves of ``attributions`` against random orderings.

    Args:
        model: the model (eval mode).
        inputs: the explained examples.
        attributions: their attributions, the shape of ``inputs``.
        targets: the explained output per example.
        baseline: the value a removed unit takes, the shape of ``inputs`` (black, the training mean, ``<unk>``).
        modality: groups channels of a pixel into one unit for images and spectrograms.
        valid: ``N x U`` booleans, the units that may be removed (text: the real tokens, not padding).
        steps: points of the curves after the start (fractions 0, 1/steps, ..., 1).
        batch: examples per forward pass.
        seed: seeds the random orderings.

    Returns:
        ``fractions``, the mean curves (``deletion``, ``insertion``, ``random_deletion``,
        ``random_insertion``), their areas (``*_auc``, trapezoid rule over the fraction removed)
        and ``passed``: deletion area below and insertion area above random.
    """
    device = inputs.device
    scores = unit_view(attributions, modality).to(device)
    valid = torch.ones_like(scores, dtype=torch.bool) if valid is None else valid.to(device)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    baseline = baseline.to(device).expand_as(inputs)
    deletion, insertion = _curves(model, inputs, baseline, scores, valid, targets, modality, fractions, batch)
    generator = torch.Generator().manual_seed(seed)
    random_curves = [
        _curves(
            model,
            inputs,
            baseline,
            torch.rand(scores.shape, generator=generator).to(device),
            valid,
            targets,
            modality,
            fractions,
            batch,
        )
        for _ in range(RANDOM_ORDERS)
    ]
    random_deletion = np.mean([c[0] for c in random_curves], axis=0)
    random_insertion = np.mean([c[1] for c in random_curves], axis=0)
    result = {
        "fractions": fractions.round(4).tolist(),
        "deletion": deletion.round(6).tolist(),
        "insertion": insertion.round(6).tolist(),
        "random_deletion": random_deletion.round(6).tolist(),
        "random_insertion": random_insertion.round(6).tolist(),
        "deletion_auc": round(float(np.trapezoid(deletion, fractions)), 6),
        "insertion_auc": round(float(np.trapezoid(insertion, fractions)), 6),
        "random_deletion_auc": round(float(np.trapezoid(random_deletion, fractions)), 6),
        "random_insertion_auc": round(float(np.trapezoid(random_insertion, fractions)), 6),
    }
    result["deletion_beats_random"] = result["deletion_auc"] < result["random_deletion_auc"]
    result["insertion_beats_random"] = result["insertion_auc"] > result["random_insertion_auc"]
    result["passed"] = result["deletion_beats_random"] and result["insertion_beats_random"]
    return result


def infidelity_scores(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    targets: torch.Tensor,
    noise_scale: torch.Tensor | float,
    baseline: torch.Tensor | None = None,
    n_perturb: int = 10,
    batch: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Captum's infidelity (normalised) of ``attributions`` and of random attributions under the same noise.

    Args:
        baseline: for attributions that are contributions relative to a baseline (integrated
            gradients, input x gradient, ablation ...), the baseline: each unit's noise is then
            divided by its distance to the baseline, as Captum's ``multiply_by_inputs`` does.
            None for local sensitivities (saliency, SmoothGrad, Grad-CAM).

    Returns:
        ``infidelity`` and ``random_infidelity`` (means over the examples; smaller is better),
        ``noise`` (the perturbation's scale) and ``passed`` (below the random attributions').
    """
    from captum.metrics import infidelity

    scale = torch.as_tensor(noise_scale, dtype=inputs.dtype, device=inputs.device)

    def perturb(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(x) * scale
        if baseline is None:
            return noise, x - noise
        distance = x - baseline[:1].to(x.device)  # Captum repeats the examples: one reference row
        safe = distance.abs() > 1e-6
        return torch.where(safe, noise / torch.where(safe, distance, torch.ones_like(distance)), 0.0), x - noise

    # Captum wants at least one example's samples per batch and at most all of them
    per_batch = min(len(inputs) * n_perturb, max(len(inputs), batch))

    def measure(values: torch.Tensor) -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the same noise for both
            scores = infidelity(
                model,
                perturb,
                inputs,
                values.to(inputs.device),
                target=targets.to(inputs.device),
                n_perturb_samples=n_perturb,
                max_examples_per_batch=per_batch,
                normalize=True,
            )
        return float(scores.mean())

    random_values = torch.randn(attributions.shape, generator=torch.Generator().manual_seed(seed))
    ours, reference = measure(attributions), measure(random_values)
    noise = float(scale.mean()) if scale.numel() > 1 else float(scale)
    return {
        "infidelity": round(ours, 8),
        "random_infidelity": round(reference, 8),
        "noise": round(noise, 6),
        "passed": ours < reference,
    }


def max_sensitivity(
    explain_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    radius: torch.Tensor | float,
    n_perturb: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Captum's max-sensitivity: the largest relative change of the explanation within ``radius`` (L-infinity)."""
    from captum.metrics import sensitivity_max

    scale = torch.as_tensor(radius, dtype=inputs.dtype, device=inputs.device)

    def perturb(x: torch.Tensor | tuple[torch.Tensor, ...], perturb_radius: float) -> torch.Tensor:
        x = x[0] if isinstance(x, tuple) else x
        return x + (torch.rand_like(x) * 2 - 1) * scale

    def explanation(x: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor]:
        # Captum passes the inputs as a tuple and iterates over what comes back: keep both tuples
        x = x[0] if isinstance(x, tuple) else x
        return (explain_fn(x, target).to(x.device),)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        values = sensitivity_max(
            explanation, inputs, perturb_func=perturb, n_perturb_samples=n_perturb, target=targets.to(inputs.device)
        )
    radius_value = float(scale.mean()) if scale.numel() > 1 else float(scale)
    return {"max_sensitivity": round(float(values.mean()), 6), "radius": round(radius_value, 6), "samples": n_perturb}


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose learned weights are re-drawn (its input standardisation is kept)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone.eval()


def rank_correlation(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b`` (over ``valid`` units)."""
    out = []
    for i in range(len(a)):
        x, y = a[i], b[i]
        if valid is not None:
            x, y = x[valid[i]], y[valid[i]]
        if len(x) < 2:
            out.append(float("nan"))
            continue
        rx, ry = _ranks(x), _ranks(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        denominator = float(rx.norm() * ry.norm())
        out.append(float((rx * ry).sum()) / denominator if denominator > 0 else 0.0)
    return torch.tensor(out)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks with ties given their average rank (as Spearman's coefficient needs)."""
    from scipy.stats import rankdata

    return torch.as_tensor(rankdata(values.double().cpu().numpy()), dtype=torch.float64)


def position_residuals(values: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Remove from ``N x L`` attributions what the position of a token alone predicts; return the
    residuals and the share of the variance (over ``valid`` units) left in them.

    The position profile is fitted over the batch as ``start[p] + end[q]``, ``p`` the token's index
    from the start of its text and ``q`` from its end (the last valid unit), by alternating means
    (backfitting, least squares): texts are padded at the end and packed recurrences run to each
    text's last token, so the profile a network's architecture imposes is anchored at both ends.
    """
    a = values.double().reshape(len(values), -1)
    valid = valid.reshape(a.shape).bool()
    n, length = a.shape
    if not bool(valid.any()):
        return values.clone(), 0.0
    steps = torch.arange(length, device=a.device).expand(n, length)
    last = torch.where(valid, steps, torch.full_like(steps, -1)).max(dim=1).values
    back = (last[:, None] - steps).clamp(0, length - 1)
    start = torch.zeros(length, dtype=a.dtype, device=a.device)
    end = torch.zeros(length, dtype=a.dtype, device=a.device)
    for _ in range(POSITION_FIT_ROUNDS):
        start = _group_mean(a - end[back], steps, valid, length)
        end = _group_mean(a - start[steps], back, valid, length)
    residual = torch.where(valid, a - start[steps] - end[back], torch.zeros_like(a))
    total = float(a[valid].var()) if int(valid.sum()) > 1 else 0.0
    left = float(residual[valid].var()) if int(valid.sum()) > 1 else 0.0
    share = left / total if total > 0 else 0.0
    return residual.to(values.dtype).reshape(values.shape), share


def _group_mean(values: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of ``values`` per group id (over ``valid`` entries; 0 for empty groups)."""
    sums = torch.zeros(size, dtype=values.dtype, device=values.device).index_add_(0, groups[valid], values[valid])
    counts = torch.zeros(size, dtype=values.dtype, device=values.device).index_add_(
        0, groups[valid], torch.ones_like(values[valid])
    )
    return sums / counts.clamp_min(1)


def randomisation_test(
    trained: torch.Tensor,
    randomised: torch.Tensor,
    modality: str,
    valid: torch.Tensor | None = None,
    threshold: float = RANDOMISATION_THRESHOLD,
    scale: torch.Tensor | None = None,
    positional: bool | None = None,
) -> dict[str, Any]:
    """Compare a trained and a randomised model's attributions, unit by unit.

    ``scale`` (broadcastable to the attributions) puts sensitivities of inputs in different units on
    one footing before they are ranked: a gradient per unit of a column whose values span 0.01 is
    large in any model, trained or not, so saliency on tables is compared per standard deviation.

    The verdict uses the attributions as the method reports them (signed where the method is
    signed: evidence for the class must not keep its place and sign once the weights are random);
    the correlation of the magnitudes alone is reported beside it, since methods that multiply by
    the input keep part of their magnitude pattern from the input itself (Adebayo et al. 2018).

    ``positional`` (default: the modality's ``positional``, on for text) removes, from each model's
    attributions separately, the profile over token positions that all examples share
    (``position_residuals``) before ranking.
    What a network's architecture does to every input alike, such as a recurrence whose gradients
    fade with the distance to the end of the text, says nothing about what it learned, and it is
    there in the randomised model too. Removing it cannot make a method pass by itself: the
    trained model's explanation must keep at least ``MIN_EXAMPLE_SHARE`` of its variance after
    the removal (an explanation that depends on position only has none left), and attributions
    that are the same for both models keep their correlation of 1.

    Returns:
        ``rank_correlation`` (mean Spearman correlation per example), ``abs_rank_correlation``,
        ``threshold`` and ``passed`` (correlation below the threshold); with ``positional`` also
        ``raw_rank_correlation`` (before the removal), ``example_share`` and ``min_example_share``.
    """
    if scale is not None:
        trained, randomised = trained * scale, randomised * scale
    a, b = unit_view(trained, modality), unit_view(randomised, modality)
    positional = get_modality(modality).positional if positional is None else positional
    result: dict[str, Any] = {}
    passed = True
    if positional:
        mask = torch.ones_like(a, dtype=torch.bool) if valid is None else valid.reshape(a.shape).to(a.device)
        result["raw_rank_correlation"] = round(_mean(rank_correlation(a, b, valid)), 4)
        magnitude = _mean(rank_correlation(a.abs(), b.abs(), valid))
        a, share = position_residuals(a, mask)
        b, _ = position_residuals(b, mask)
        result["example_share"] = round(share, 4)
        result["min_example_share"] = MIN_EXAMPLE_SHARE
        passed = share >= MIN_EXAMPLE_SHARE
    else:
        magnitude = _mean(rank_correlation(a.abs(), b.abs(), valid))
    signed = _mean(rank_correlation(a, b, valid))
    return {
        "rank_correlation": round(signed, 4),
        "abs_rank_correlation": round(magnitude, 4),
        "threshold": threshold,
        "passed": bool(passed and signed < threshold),
        **result,
    }


def _mean(values: torch.Tensor) -> float:
    return float(np.nanmean(values.numpy())) if bool(torch.isfinite(values).any()) else float("nan")
