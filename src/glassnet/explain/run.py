"""``explain_run``: explain a trained run's test examples, check the explanations, write explain.json and figures."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import torch
from torch import nn

from glassnet.data.modality import get_modality
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.explain import pictures, trust
from glassnet.explain.attribute import Attributions, explain, resolve_method
from glassnet.explain.budget import DEFAULT_MEMORY_MB
from glassnet.explain.methods import METHODS
from glassnet.explain.names import DEFAULT_EXAMPLES, DENSE_TASKS, TASKS
from glassnet.models.outputs import batched_outputs, prediction
from glassnet.progress import Progress, note, progress_bar
from glassnet.runs import RunDir, writes_run
from glassnet.train.finite import require_finite_weights
from glassnet.train.run import Run

SHOWN = 8  # examples drawn in the pictures
HIGHEST_LOSS = 6
CONFUSED_PAIRS = 5
SENSITIVITY_EXAMPLES = 8
# LIME and KernelSHAP refit a surrogate per example, permutation importance depends on the whole batch:
# re-running them for max-sensitivity would cost minutes, so that one metric is skipped for them
NO_SENSITIVITY = ("lime", "kernel_shap", "feature_permutation")
# sensitivities (per unit of input change); every other method gives contributions relative to a baseline
LOCAL_METHODS = ("saliency", "smoothgrad", "grad_cam")
# what the progress bar of the checks names, in order
TRUST_STEPS = ("deletion and insertion", "infidelity and sensitivity", "randomised model")


@writes_run("explain")
def explain_run(
    run: Run | str | os.PathLike[str],
    method: str = "integrated_gradients",
    n: int = DEFAULT_EXAMPLES,
    *,
    memory_mb: float = DEFAULT_MEMORY_MB,
    layer: str | None = None,
    checks: bool = True,
    seed: int = 0,
    progress: Progress = None,
    **options: Any,
) -> dict[str, Any]:
    """Explain a run's test examples; write ``results/explain.json`` and ``figures/explain_*.png``.

    The first ``n`` test examples (taken class by class, so that every class appears) are explained
    for their predicted class, then checked: deletion and insertion curves against random
    orderings, infidelity and max-sensitivity (Captum), the model-randomisation test (gradient
    methods) and completeness (integrated gradients). A failed check adds a warning. Global views:
    the mean attribution per predicted class, the most-confused class pairs and the test
    examples with the highest loss, explained.

    Args:
        run: a trained run (classification or regression), or its directory.
        method: an attribution method (see ``glassnet.explain.METHODS``).
        n: how many test examples to explain.
        memory_mb: memory budget of one forward and backward pass.
        layer: Grad-CAM's layer (default: after the last convolution).
        checks: run the trust checks (default on; they cost a few more passes).
        seed: seeds every random draw.
        progress: bars with elapsed time and time left, one over the examples explained and one over the
            checks and figures: True on stderr, or a text stream; None (default) or False draws nothing.
        **options: more arguments of ``explain`` (``n_steps``, ``n_samples``, ``window`` ...).

    Returns:
        The dict written to ``results/explain.json``.

    Raises:
        RunError: the run is missing or incomplete, or its weights are NaN or infinite (it diverged).
        ConfigError: the method does not fit the model, or an option is invalid.
    """
    name = resolve_method(method)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n must be a positive integer. Received: n={n!r}")
    run = Run.open(run)
    model, spec = run.model, run.spec
    require_finite_weights(model, run.weights)
    if spec.task == "transcribe":  # speech: the frames behind each decoded word
        from glassnet.explain.transcription import DEFAULT_STEPS, explain_transcription

        if name != "integrated_gradients":
            raise ConfigError(
                f"speech recognition runs are explained with integrated_gradients (per decoded word); not {name}"
            )
        unused = sorted(k for k in ("n_samples", "window") if k in options) + (["layer"] if layer else [])
        if unused:
            raise ConfigError(f"speech recognition runs are explained per word without {', '.join(unused)}")
        steps = options.pop("n_steps", DEFAULT_STEPS)
        return explain_transcription(run, n, steps=steps, seed=seed, progress=progress)
    if spec.task == "control":  # an agent: its decisions and value estimates on the states it meets
        from glassnet.explain.policy import explain_policy

        return explain_policy(run, name, n, memory_mb, checks, seed, progress=progress, **options)
    dense = None
    if spec.task in DENSE_TASKS:  # masks or boxes: explained as a classifier of the classes an image holds
        from glassnet.explain.dense import dense_view

        dense = dense_view(model, spec, *_test_split(run))
        model, spec = dense["model"], dense["spec"]
    elif spec.task == "generate":  # a GAN: what makes its discriminator take an image for a real one
        from glassnet.explain.generative import discriminator_view, require_discriminator

        require_discriminator(model)  # before the data is rebuilt: a diffusion run is refused at once
        dense = discriminator_view(model, spec, *_test_split(run))
        model, spec = dense["model"], dense["spec"]
    if spec.task not in TASKS:
        raise ConfigError(
            f"explain attributes a classifier's or regressor's outputs; this run's task is {spec.task!r}. "
            f"Supported tasks: {', '.join(TASKS)}"
        )
    model.eval()
    started = time.perf_counter()
    inputs, labels = (dense["inputs"], dense["labels"]) if dense else _test_split(run)
    outputs = prediction(batched_outputs(model, inputs))
    chosen = _choose(labels, n, spec)
    x = inputs[chosen]
    baseline = default_baseline(spec, x)
    attributions = explain(
        model, x, name, baselines=baseline, modality=spec.modality, memory_mb=memory_mb, layer=layer, seed=seed,
        progress=progress, **options,
    )  # fmt: skip
    result: dict[str, Any] = {
        "method": name,
        "method_label": METHODS[name].label,
        "method_description": METHODS[name].description,
        "modality": spec.modality,
        "task": run.spec.task,
        "target": dense["target"] if dense else "predicted class" if spec.task == "classify" else "output 0",
        "examples": len(x),
        "summary": attributions.summary(),
        "warnings": [],
        "figures": [],
    }
    # the trust checks (TRUST_STEPS of them), the highest-loss examples and the figures: one bar
    with progress_bar(len(TRUST_STEPS) * checks + 2, "explain checks", progress, unit="steps") as bar:
        if checks:
            result["trust"] = _trust(model, attributions, baseline, spec, seed, options, bar)
            result["warnings"] = _warnings(result["trust"], name)
        result["global"] = _global_views(model, spec, attributions, labels[chosen], outputs, labels)
        note(bar, "highest-loss examples")
        result["highest_loss"], worst = _highest_loss(
            model, spec, inputs, labels, outputs, name, baseline, memory_mb, layer, seed, options
        )
        bar.update(1)
        note(bar, "figures")
        kind = get_modality(spec.modality)
        result["views"] = kind.explanation_views(spec, attributions.inputs, attributions.values, SHOWN)
        result["figures"] = _figures(run, spec, attributions, labels[chosen], result)
        titles = [
            f"{e.get('predicted', '')} ({e.get('confidence', 0):.0%})\ntrue {e.get('true', '')}"
            for e in result["highest_loss"]
        ]
        if worst is not None:
            result["figures"] += pictures.draw_highest_loss(kind.picture, worst, titles, run.figure)
        else:
            run.figure("explain_highest_loss").unlink(missing_ok=True)  # no mistakes: an old figure would mislead
        note(bar, "")
        bar.update(1)
    result["time_s"] = round(time.perf_counter() - started, 3)
    run.write_result("explain", result)
    return result


# --- data --------------------------------------------------------------------------------------


def _test_split(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's test split as tensors (its data rebuilt as trained)."""
    if len(run.data().test) == 0:
        raise DataError(f"the data of '{run.path}' has an empty test split; there is nothing to explain")
    return run.split("test")


def _choose(labels: torch.Tensor, n: int, spec: DataSpec) -> torch.Tensor:
    """The first ``n`` test examples, taken class by class in turn for classification."""
    if spec.task != "classify":
        return torch.arange(min(n, len(labels)))
    queues = [torch.nonzero(labels == c).flatten().tolist() for c in range(spec.num_outputs)]
    picked: list[int] = []
    while len(picked) < min(n, len(labels)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
        if not any(queues):
            break
    return torch.tensor(sorted(picked))


def default_baseline(spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor:
    """The reference input "with no signal" (``Modality.baseline``): black images, the training mean of
    tables, series and spectrograms (natural units), padding for text (masking methods use ``<unk>``).

    Args:
        spec: the run's data spec.
        inputs: the examples to be explained (the baseline is one example, broadcast over them).

    Returns:
        A ``1 x input_shape`` tensor.
    """
    return get_modality(spec.modality).baseline(spec)


# --- trust -------------------------------------------------------------------------------------


def _trust(
    model: nn.Module,
    attributions: Attributions,
    baseline: torch.Tensor,
    spec: DataSpec,
    seed: int,
    options: dict[str, Any],
    bar: Any,
) -> dict[str, Any]:
    """The trust checks of ``attributions``; ``bar`` advances by one per check (``TRUST_STEPS``)."""
    x, targets, name = attributions.inputs, attributions.target, attributions.method
    kind = get_modality(spec.modality)
    masked = kind.masking_baseline(x, baseline)
    valid = kind.valid_units(x, masked)  # units equal to the baseline already: nothing to remove or explain
    batch = max(1, attributions.budget.rows_without_gradients)
    note(bar, TRUST_STEPS[0])
    out: dict[str, Any] = {
        "faithfulness": trust.deletion_insertion(
            model, x, attributions.values, targets, masked, spec.modality, valid=valid, batch=batch, seed=seed
        )
    }
    bar.update(1)
    note(bar, TRUST_STEPS[1])
    if not kind.continuous:
        out["infidelity"] = {"skipped": kind.not_continuous}
        out["sensitivity"] = {"skipped": kind.not_continuous}
    else:
        scale = kind.noise_scale(spec, x)
        relative = None if name in LOCAL_METHODS else baseline
        out["infidelity"] = trust.infidelity_scores(
            model, x, attributions.values, targets, 0.1 * scale, baseline=relative, seed=seed
        )
        if name in NO_SENSITIVITY:
            out["sensitivity"] = {"skipped": f"{name} is too costly to re-run for every perturbation"}
        else:
            k = min(SENSITIVITY_EXAMPLES, len(x))

            def again(inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                return explain(
                    model, inputs, name, target=target, baselines=baseline, modality=spec.modality,
                    auto_steps=False, seed=seed, memory_mb=attributions.budget.memory_mb, **_method_options(options),
                ).values  # fmt: skip

            out["sensitivity"] = trust.max_sensitivity(again, x[:k], targets[:k], 0.02 * scale, seed=seed)
    bar.update(1)
    note(bar, TRUST_STEPS[2])
    if METHODS[name].gradient:
        randomised = trust.randomised_copy(model, seed)
        other = explain(
            randomised, x, name, target=targets, baselines=baseline, modality=spec.modality, auto_steps=False,
            seed=seed, memory_mb=attributions.budget.memory_mb, **_method_options(options),
        )  # fmt: skip
        scale = per_unit_scale(spec, x) if name in LOCAL_METHODS else None
        out["randomisation"] = trust.randomisation_test(
            attributions.values, other.values, spec.modality, valid=valid, scale=scale
        )
    else:
        out["randomisation"] = {"skipped": "the test applies to gradient methods"}
    bar.update(1)
    if attributions.completeness is not None:
        out["completeness"] = attributions.completeness
    return out


def _method_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "auto_steps"}


def per_unit_scale(spec: DataSpec, x: torch.Tensor) -> torch.Tensor | None:
    """Each column's or channel's training std (tables, series), so gradients compare per standard deviation
    (``Modality.per_unit_scale``).

    Args:
        spec: the run's data spec.
        x: the explained examples.

    Returns:
        A scale broadcastable to the attributions, or None where inputs share one unit (images, text, audio).
    """
    return get_modality(spec.modality).per_unit_scale(spec, x)


def _warnings(checks: dict[str, Any], name: str) -> list[str]:
    label = METHODS[name].label
    out = []
    faith = checks["faithfulness"]
    if not faith["deletion_beats_random"]:
        out.append(
            f"{label}: removing the inputs it ranks highest lowers the score no faster than removing random ones "
            f"(deletion area {faith['deletion_auc']:.3f} vs random {faith['random_deletion_auc']:.3f}); "
            "its ranking is not faithful to the model"
        )
    if not faith["insertion_beats_random"]:
        out.append(
            f"{label}: restoring the inputs it ranks highest raises the score no faster than restoring random ones "
            f"(insertion area {faith['insertion_auc']:.3f} vs random {faith['random_insertion_auc']:.3f})"
        )
    infid = checks.get("infidelity", {})
    if "passed" in infid and not infid["passed"]:
        out.append(
            f"{label}: infidelity {infid['infidelity']:.4g} is no better than random attributions' "
            f"{infid['random_infidelity']:.4g}"
        )
    rand = checks.get("randomisation", {})
    if "example_share" in rand and rand["example_share"] < rand["min_example_share"]:
        out.append(
            f"{label}: only {rand['example_share']:.0%} of the explanation varies between texts beyond what the "
            f"position of a token explains (at least {rand['min_example_share']:.0%} needed); it shows the "
            "architecture's profile over positions more than the text"
        )
    elif "passed" in rand and not rand["passed"]:
        out.append(
            f"{label}: the attributions of a model with random weights look like the trained model's "
            f"(rank correlation {rand['rank_correlation']:.2f} >= {rand['threshold']}); they show the input "
            "more than what the model learned"
        )
    complete = checks.get("completeness")
    if complete and not complete["holds"]:
        out.append(
            f"{label}: the attributions do not add up to the output difference within "
            f"{complete['tolerance']:.0%} even at {complete['steps_max_used']} steps "
            f"(worst relative error {complete['max_relative_error']:.3f})"
        )
    return out


# --- global views ------------------------------------------------------------------------------


def _class_names(spec: DataSpec) -> list[str]:
    return list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]


def _global_views(
    model: nn.Module,
    spec: DataSpec,
    attributions: Attributions,
    labels: torch.Tensor,
    outputs: torch.Tensor,
    all_labels: torch.Tensor,
) -> dict[str, Any]:
    views: dict[str, Any] = {}
    if spec.task != "classify":
        return views
    names = _class_names(spec)
    predicted = attributions.target
    per_class = []
    for c in range(spec.num_outputs):
        rows = predicted == c
        if bool(rows.any()):
            mean = attributions.per_unit()[rows].mean(dim=0)
            per_class.append({"class": names[c], "examples": int(rows.sum()), "mean_abs": float(mean.abs().mean())})
    views["per_class"] = per_class
    pairs = Counter(
        (int(t), int(p)) for t, p in zip(all_labels.tolist(), outputs.argmax(dim=1).tolist(), strict=True) if t != p
    )
    views["confused_pairs"] = [
        {"true": names[t], "predicted": names[p], "count": count} for (t, p), count in pairs.most_common(CONFUSED_PAIRS)
    ]
    return views


def _highest_loss(
    model: nn.Module,
    spec: DataSpec,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    outputs: torch.Tensor,
    method: str,
    baseline: torch.Tensor,
    memory_mb: float,
    layer: str | None,
    seed: int,
    options: dict[str, Any],
) -> tuple[list[dict[str, Any]], Attributions | None]:
    """The test examples with the largest loss, explained for the class the model predicted (with the
    same method options as the main explanation: ``n_steps``, ``n_samples`` ...)."""
    if spec.task != "classify":
        errors = (outputs.reshape(len(outputs), -1) - labels.reshape(len(labels), -1).float()).pow(2).mean(dim=1)
    else:
        errors = torch.nn.functional.cross_entropy(outputs, labels.long(), reduction="none")
        errors = errors.masked_fill(outputs.argmax(dim=1) == labels.long(), float("-inf"))  # mistakes only
    order = errors.argsort(descending=True)
    worst = order[torch.isfinite(errors[order])][:HIGHEST_LOSS]
    if len(worst) == 0:
        return [], None
    x = inputs[worst]
    kwargs = dict(baselines=baseline, modality=spec.modality, memory_mb=memory_mb, layer=layer, seed=seed)
    predicted = explain(model, x, method, **kwargs, **options)
    out = []
    for k, i in enumerate(worst.tolist()):
        entry: dict[str, Any] = {"index": i, "loss": round(float(errors[i]), 4)}
        if spec.task == "classify":
            probs = outputs[i].softmax(dim=0)
            names = _class_names(spec)
            entry.update(
                true=names[int(labels[i])],
                predicted=names[int(predicted.target[k])],
                confidence=round(float(probs[int(predicted.target[k])]), 4),
            )
        entry.update(get_modality(spec.modality).example_view(spec, x[k], predicted.values[k]))
        out.append(entry)
    return out, predicted


# --- figures -----------------------------------------------------------------------------------


def _titles(spec: DataSpec, attributions: Attributions, labels: torch.Tensor, count: int) -> list[str]:
    if spec.task != "classify":
        return [f"example {k}" for k in range(count)]
    names = _class_names(spec)
    return [f"pred {names[int(attributions.target[k])]}\ntrue {names[int(labels[k])]}" for k in range(count)]


def _figures(
    run: RunDir, spec: DataSpec, attributions: Attributions, labels: torch.Tensor, result: dict[str, Any]
) -> list[str]:
    """Draw the modality's picture of the examples (``Modality.picture``) and the trust curves; return the
    figure names written."""
    titles = _titles(spec, attributions, labels, min(SHOWN, len(attributions.values)))
    kind = get_modality(spec.modality).picture
    written = pictures.draw_examples(kind, attributions, spec, titles, run.figure)
    label = METHODS[attributions.method].label
    if "trust" in result:
        pictures.curves(result["trust"]["faithfulness"], label, run.figure("explain_curves"))
        written.append("explain_curves")
    return written
