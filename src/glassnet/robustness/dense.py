"""Attacking dense predictions (segmentation, detection): the task's score against the perturbation size.

The analogue of the accuracy-against-eps curve for models that answer with masks or boxes. Each
test image is perturbed within an L-infinity ball of radius ``eps`` in pixel units ([0, 1]) and
clipped to the valid range: ``random`` (uniform noise, the reference), ``fgsm`` (one signed
gradient step) and ``pgd`` (``steps`` projected signed steps of size ``2.5 eps / steps`` from a random
start, Madry et al., 2018). FGSM and PGD ascend the task's own training loss against the true
targets: the pixel cross-entropy for segmentation, CenterNet's focal and box losses for detection.
The attacked predictions are scored with the task's metrics (mean IoU, COCO mAP) on the same images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from glassnet.errors import ConfigError, UnknownNameError
from glassnet.progress import Progress, progress_bar
from glassnet.train.run import Run
from glassnet.train.tasks import get_task

METHODS = ("random", "fgsm", "pgd")
DEFAULT_EPS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
BATCH = 64
FRAGILE_SHARE = 0.5  # warn when PGD at the smallest eps removes half of the clean score


def perturb(
    model: torch.nn.Module,
    task: Any,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str,
    eps: float,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """``images`` perturbed by ``method`` within ``eps`` (L-infinity, pixel units), clipped to [0, 1]."""
    if method == "random":
        noise = (torch.rand(images.shape, generator=generator) * 2 - 1) * eps
        return (images + noise).clamp(0, 1)
    if method == "fgsm":
        start, iterations, step = images, 1, eps
    else:
        start = (images + (torch.rand(images.shape, generator=generator) * 2 - 1) * eps).clamp(0, 1)
        iterations, step = steps, 2.5 * eps / steps
    adversarial = start.detach()
    for _ in range(iterations):
        adversarial.requires_grad_(True)
        loss = task.loss(model(adversarial), targets)
        (gradient,) = torch.autograd.grad(loss, adversarial)
        with torch.no_grad():
            adversarial = adversarial + step * gradient.sign()
            adversarial = (images + (adversarial - images).clamp(-eps, eps)).clamp(0, 1)
    return adversarial.detach()


def attack_dense(
    run: Run,
    methods: Sequence[str] = ("random", "fgsm", "pgd"),
    eps: Sequence[float] | None = None,
    limit: int | None = 200,
    split: str = "test",
    seed: int = 0,
    steps: int = 10,
    progress: Progress = None,
) -> dict[str, Any]:
    """The task's metrics under each attack and budget; writes ``results/robustness.json`` and
    ``figures/robustness_curves.png``.

    Args:
        run: a segmentation or detection run.
        methods: among ``random``, ``fgsm``, ``pgd``.
        eps: L-infinity budgets in pixel units (default 1/255, 2/255, 4/255, 8/255).
        limit: attack this many images of the split, sampled with ``seed`` (None: all).
        split: ``test``, ``val`` or ``train``.
        seed: the sample, the random starts and the noise.
        steps: PGD's iterations.
        progress: a bar over the (attack, eps) points.

    Raises:
        ConfigError: an eps is not in (0, 1], ``steps`` < 1, or the split is empty.
        UnknownNameError: an unknown method.
    """
    started = time.perf_counter()
    for method in methods:
        if method not in METHODS:
            raise UnknownNameError(f"attack on {run.spec.task} models", method, METHODS)
    budgets = [float(e) for e in (eps or DEFAULT_EPS)]
    if any(not 0 < e <= 1 for e in budgets):
        raise ConfigError(f"eps are L-infinity budgets in pixel units, each in (0, 1]. Received: {budgets}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1. Received: {steps}")
    model, spec = run.model.eval(), run.spec
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    task = get_task(spec.task)
    images, targets = run.data().split(split).tensors
    if not len(images):
        raise ConfigError(f"the {split} split is empty: nothing to attack")
    generator = torch.Generator().manual_seed(seed)
    if limit is not None and limit < len(images):
        chosen = torch.randperm(len(images), generator=generator)[:limit].sort().values
        images, targets = images[chosen], targets[chosen]
    metric = task.comparison_metric(None) if hasattr(task, "comparison_metric") else task.headline_metrics[0]

    def score(inputs: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            outputs = torch.cat([model(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)])
        return {k: round(float(v), 6) for k, v in task.metrics(outputs, targets).items()}

    clean = score(images)
    curves: dict[str, list[dict[str, float]]] = {}
    points = [(m, e) for m in methods for e in budgets]
    with progress_bar(len(points), "attack", progress, unit="points") as bar:
        for method, budget in points:
            attacked = torch.cat(
                [
                    perturb(
                        model, task, images[i : i + BATCH], targets[i : i + BATCH], method, budget, steps, generator
                    )
                    for i in range(0, len(images), BATCH)
                ]
            )
            curves.setdefault(method, []).append({"eps": budget, **score(attacked)})
            bar.update(1)
    result = {
        "kind": "dense",
        "task": spec.task,
        "metric": metric,
        "split": split,
        "examples": len(images),
        "norm": "linf",
        "units": "pixel values in [0, 1]",
        "eps": budgets,
        "pgd_steps": steps,
        "clean": clean,
        "curves": curves,
        "warnings": _warnings(curves, clean, metric),
    }
    from glassnet.robustness import figures

    path = run.figure("robustness_curves")
    figures.metric_curves(curves, clean[metric], metric, path)
    result["figures"] = [path.name]
    result["time_s"] = round(time.perf_counter() - started, 3)
    run.write_result("robustness", result)
    return result


def _warnings(curves: dict[str, list[dict[str, float]]], clean: dict[str, float], metric: str) -> list[str]:
    warnings = []
    pgd, noise, fgsm = curves.get("pgd"), curves.get("random"), curves.get("fgsm")
    if pgd and clean[metric] > 0 and pgd[0][metric] < FRAGILE_SHARE * clean[metric]:
        warnings.append(
            f"fragile: PGD at eps {pgd[0]['eps']:.3g} takes {metric} from {clean[metric]:.3f} to {pgd[0][metric]:.3f}, "
            "a perturbation of about one grey level"
        )
    if noise and fgsm:
        for n, f in zip(noise, fgsm):
            if n[metric] < f[metric] - 0.02:
                warnings.append(
                    f"random noise at eps {n['eps']:.3g} hurts more than FGSM ({n[metric]:.3f} vs {f[metric]:.3f}): "
                    "the gradient may be masked, so gradient attacks understate the model's weakness"
                )
                break
    return warnings
