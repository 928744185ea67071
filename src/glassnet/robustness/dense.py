"""Attacking structured predictions (segmentation, detection, transcription): the task's score against eps.

The analogue of the accuracy-against-eps curve for models that answer with masks, boxes or text. Each
test image is perturbed within an L-infinity ball of radius ``eps`` in pixel units ([0, 1]) and
clipped to the valid range; a spectrogram (speech recognition) within a ball of ``eps`` standard
deviations of the training split's log-mel values, not clipped (a log-mel value has no natural
bound). The attacks: ``random`` (uniform noise, the reference), ``fgsm`` (one signed
gradient step) and ``pgd`` (``steps`` projected signed steps of size ``2.5 eps / steps`` from a random
start, Madry et al., 2018). FGSM and PGD ascend the task's own training loss against the true
targets: the pixel cross-entropy for segmentation, CenterNet's focal and box losses for detection,
CTC for transcription. The attacked predictions are scored with the task's metrics (mean IoU, COCO
mAP, word error rate) on the same examples.
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
SPECTROGRAM_EPS = (0.02, 0.05, 0.1, 0.2)  # standard deviations of the log-mel values
BATCH = 64
FRAGILE_SHARE = 0.5  # warn when PGD at the smallest eps removes half of the clean score


def input_space(spec: Any) -> dict[str, Any]:
    """How a run's inputs are perturbed: eps units, the size of one unit, bounds, default budgets and display.

    Images: pixel values in [0, 1], shown in grey levels (``x/255``). Other inputs (spectrograms):
    standard deviations of the training split's values (``spec.input_std``), unbounded.
    """
    if spec.modality == "image":
        return {"units": "pixel values in [0, 1]", "scale": 1.0, "bounds": (0.0, 1.0), "eps": DEFAULT_EPS,
                "factor": 255, "suffix": "/255", "largest": 1.0}  # fmt: skip
    std = float(torch.as_tensor(spec.input_std or (1.0,), dtype=torch.float64).mean())
    return {
        "units": f"standard deviations of the training split's inputs (1 sd = {std:.3g})",
        "scale": std, "bounds": None, "eps": SPECTROGRAM_EPS, "factor": 1, "suffix": " sd", "largest": 10.0,
    }  # fmt: skip


def perturb(
    model: torch.nn.Module,
    task: Any,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str,
    eps: float,
    steps: int,
    generator: torch.Generator,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """``images`` perturbed by ``method`` within ``eps`` (L-infinity, in the inputs' units), clipped to ``bounds``."""

    def clip(x: torch.Tensor) -> torch.Tensor:
        return x if bounds is None else x.clamp(*bounds)

    if method == "random":
        noise = (torch.rand(images.shape, generator=generator) * 2 - 1) * eps
        return clip(images + noise)
    if method == "fgsm":
        start, iterations, step = images, 1, eps
    else:
        start = clip(images + (torch.rand(images.shape, generator=generator) * 2 - 1) * eps)
        iterations, step = steps, 2.5 * eps / steps
    adversarial = start.detach()
    for _ in range(iterations):
        adversarial.requires_grad_(True)
        loss = task.loss(model(adversarial), targets)
        (gradient,) = torch.autograd.grad(loss, adversarial)
        with torch.no_grad():
            adversarial = adversarial + step * gradient.sign()
            adversarial = clip(images + (adversarial - images).clamp(-eps, eps))
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
        run: a segmentation, detection or transcription run.
        methods: among ``random``, ``fgsm``, ``pgd``.
        eps: L-infinity budgets in the units of ``input_space`` (images: pixel units, default 1/255,
            2/255, 4/255, 8/255; spectrograms: standard deviations, default 0.02, 0.05, 0.1, 0.2).
        limit: attack this many images of the split, sampled with ``seed`` (None: all).
        split: ``test``, ``val`` or ``train``.
        seed: the sample, the random starts and the noise.
        steps: PGD's iterations.
        progress: a bar over the (attack, eps) points.

    Raises:
        ConfigError: an eps is not in (0, 1] (pixels) or (0, 10] (standard deviations), ``steps`` < 1, or the
            split is empty.
        UnknownNameError: an unknown method.
    """
    started = time.perf_counter()
    for method in methods:
        if method not in METHODS:
            raise UnknownNameError(f"attack on {run.spec.task} models", method, METHODS)
    space = input_space(run.spec)
    budgets = [float(e) for e in (eps or space["eps"])]
    if any(not 0 < e <= space["largest"] for e in budgets):
        raise ConfigError(
            f"eps are L-infinity budgets in {space['units']}, each in (0, {space['largest']:g}]. Received: {budgets}"
        )
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
                        model,
                        task,
                        images[i : i + BATCH],
                        targets[i : i + BATCH],
                        method,
                        budget * space["scale"],
                        steps,
                        generator,
                        space["bounds"],
                    )  # fmt: skip
                    for i in range(0, len(images), BATCH)
                ]
            )
            curves.setdefault(method, []).append({"eps": budget, **score(attacked)})
            bar.update(1)
    result = {
        "kind": "dense",
        "task": spec.task,
        "metric": metric,
        "mode": task.mode(metric),  # "max" (mIoU, mAP) or "min" (WER): which end of the curve is worse
        "split": split,
        "examples": len(images),
        "norm": "linf",
        "units": space["units"],
        "eps_shown": {"factor": space["factor"], "suffix": space["suffix"]},
        "eps": budgets,
        "pgd_steps": steps,
        "clean": clean,
        "curves": curves,
        "warnings": _warnings(curves, clean, metric, task.mode(metric), space),
    }
    from glassnet.robustness import figures

    path = run.figure("robustness_curves")
    figures.metric_curves(curves, clean[metric], metric, path, space["factor"], space["suffix"])
    result["figures"] = [path.name]
    result["time_s"] = round(time.perf_counter() - started, 3)
    run.write_result("robustness", result)
    return result


def _warnings(
    curves: dict[str, list[dict[str, float]]], clean: dict[str, float], metric: str, mode: str, space: dict[str, Any]
) -> list[str]:
    """Plain-word warnings: a score halved (or an error rate moved half-way to 1) by the smallest PGD budget,
    and random noise hurting more than FGSM (a sign of masked gradients)."""
    warnings = []
    pgd, noise, fgsm = curves.get("pgd"), curves.get("random"), curves.get("fgsm")

    def worse(a: float, b: float, margin: float = 0.0) -> bool:  # a is worse than b by more than margin
        return a < b - margin if mode == "max" else a > b + margin

    if pgd:
        first, before = pgd[0][metric], clean[metric]
        fragile = (
            first < FRAGILE_SHARE * before if mode == "max" else first > before + FRAGILE_SHARE * max(1 - before, 0)
        )
        if fragile and (before > 0 if mode == "max" else before < 1):
            shown = f"{pgd[0]['eps'] * space['factor']:.3g}{space['suffix']}"
            warnings.append(
                f"fragile: PGD at eps {shown} takes {metric} from {before:.3f} to {first:.3f}"
                + (", a perturbation of about one grey level" if space["factor"] == 255 else "")
            )
    if noise and fgsm:
        for n, f in zip(noise, fgsm):
            if worse(n[metric], f[metric], 0.02):
                warnings.append(
                    f"random noise at eps {n['eps']:.3g} hurts more than FGSM ({n[metric]:.3f} vs {f[metric]:.3f}): "
                    "the gradient may be masked, so gradient attacks understate the model's weakness"
                )
                break
    return warnings
