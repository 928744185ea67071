"""``explain(model, inputs, method=...)``: attributions from Captum, in memory-budgeted chunks, checked.

Inputs are in natural units (images in [0, 1]); attributions come back with the inputs' shape
(text: one score per token). Token inputs are explained through the model's embedding layer
(gradient methods) or by replacing tokens with ``<unk>`` (masking methods).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from glassnet.data.modality import MODALITIES, TEXT_PAD, get_modality
from glassnet.errors import ConfigError, DataError, UnknownNameError
from glassnet.explain import model_checks as checks
from glassnet.explain.budget import DEFAULT_MEMORY_MB, Budget, cached_probe, plan
from glassnet.explain.methods import ALIASES, METHODS
from glassnet.models.outputs import batched_outputs
from glassnet.progress import Progress, note, progress_bar

STEP_TOLERANCE = 0.01  # integrated gradients: |sum of attributions - output difference| <= 1% of the difference
# ... or of this share of the batch's median |difference|, when an example's difference is smaller: the
# relative error of a near-zero difference measures float rounding, not how well the integral is computed
DIFFERENCE_FLOOR = 0.1
MAX_STEPS = 1600


@dataclass
class Attributions:
    """What ``explain`` returns.

    Attributes:
        values: one attribution per input value, the shape of ``inputs`` (text: ``N x tokens``);
            positive values support the target, negative ones speak against it.
        inputs: the explained inputs.
        target: the explained output index of each example (``N``).
        method: the method's name.
        modality: a registered modality: ``image``, ``tabular``, ``text``, ``sequence``, ``audio`` ...
        budget: how the work was split into passes.
        options: the arguments the method ran with (e.g. ``n_steps``, ``window``).
        completeness: integrated gradients only: steps used and the worst relative error of
            ``sum(attributions) = f(x) - f(baseline)``.
        layer: the layer the method attributed through (Grad-CAM's convolution, a text model's embedding).
        time_s: wall time.
    """

    values: torch.Tensor
    inputs: torch.Tensor
    target: torch.Tensor
    method: str
    modality: str
    budget: Budget
    options: dict[str, Any] = field(default_factory=dict)
    completeness: dict[str, Any] | None = None
    layer: str | None = None
    time_s: float = 0.0

    def per_unit(self) -> torch.Tensor:
        """Scores per display unit (``Modality.per_unit``): per pixel for images and spectrograms (channels
        summed), else ``values``."""
        return get_modality(self.modality).per_unit(self.values)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the run (not the values)."""
        return {
            "method": self.method,
            "modality": self.modality,
            "examples": len(self.values),
            "options": self.options,
            "layer": self.layer,
            "budget": self.budget.to_dict(),
            "completeness": self.completeness,
            "time_s": round(self.time_s, 4),
        }

    def _repr_html_(self) -> str:
        """A notebook's view: the method, the examples explained, how the work was split and its time."""
        from glassnet.notebook import facts_table

        label = METHODS[self.method].label if self.method in METHODS else self.method
        rows = [
            ("method", label),
            ("examples", len(self.values)),
            ("modality", self.modality),
            ("attribution shape", " x ".join(str(n) for n in self.values.shape)),
            ("largest |attribution|", float(self.values.abs().max()) if self.values.numel() else None),
            ("layer", self.layer),
            ("completeness", (self.completeness or {}).get("max_relative_error")),
            ("options", ", ".join(f"{k}={v}" for k, v in self.options.items()) or "defaults"),
            ("time (s)", round(self.time_s, 2)),
        ]
        return facts_table("Attributions", rows)

    def save(self, run: Any) -> Any:
        """Write these attributions into a run as ``glassnet explain RUN`` does, so that its report shows them.

        Writes ``results/explain.json`` in the stage's format and the pictures of the examples
        (``figures/explain_*``), under the run's lock, all together or not at all; explanation
        figures of an earlier ``explain`` that no longer match are removed. The trust checks,
        the per-class views and the highest-loss examples need the run's test split and are left
        out (``glassnet explain RUN`` computes them). ``gn.report(run)`` then shows the section.

        Args:
            run: the run directory (or ``Run``) of the explained model; the inputs must fit it.

        Returns:
            The path of ``results/explain.json``.

        Raises:
            RunError: the run is missing or holds no saved model.
            DataError: the explained inputs do not have the shape of the run's inputs.
        """
        from glassnet.explain import pictures
        from glassnet.runs import transaction
        from glassnet.train.run import Run

        run = Run.open(run)
        spec = run.spec
        if tuple(self.inputs.shape[1:]) != tuple(spec.input_shape):
            raise DataError(
                f"these attributions explain inputs of shape {list(self.inputs.shape[1:])}, but the run at "
                f"'{run.path}' takes {list(spec.input_shape)}; save them into the run of the model they explain"
            )
        classify = spec.task == "classify"
        names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
        predicted = _predict(run.model, self.inputs, 256).argmax(dim=1) if classify else None
        own_target = predicted is not None and bool((predicted == self.target).all())
        target = ("predicted class" if own_target else "chosen class") if classify else f"output {int(self.target[0])}"
        shown = min(8, len(self.values))
        titles = (
            [f"{'pred' if own_target else 'class'} {names[int(t)]}" for t in self.target[:shown]] if classify else []
        )
        result: dict[str, Any] = {
            "method": self.method,
            "method_label": METHODS[self.method].label,
            "method_description": METHODS[self.method].description,
            "modality": spec.modality,
            "task": spec.task,
            "target": target,
            "examples": len(self.values),
            "summary": self.summary(),
            "warnings": [],
            "figures": [],
            "source": "computed in memory with gn.explain and saved into the run (no trust checks)",
        }
        kind = get_modality(spec.modality)
        with transaction(run.path, "explain"):
            result["views"] = kind.explanation_views(spec, self.inputs, self.values, shown)
            titles = titles or [f"example {k}" for k in range(shown)]
            result["figures"] = pictures.draw_examples(kind.picture, self, spec, titles, run.figure)
            for old in run.figures_dir.glob("explain_*.*") if run.figures_dir.is_dir() else []:
                if old.suffix in (".png", ".svg") and old.stem not in result["figures"]:
                    old.unlink(missing_ok=True)  # an earlier explanation's figure would not match this one
            result["time_s"] = round(self.time_s, 3)
            return run.write_result("explain", result)


def resolve_method(method: str) -> str:
    """The canonical method name for ``method`` or an alias.

    Raises:
        UnknownNameError: not a method; the message lists them.
    """
    key = str(method).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise UnknownNameError("explanation method", str(method), METHODS)
    return key


def infer_modality(inputs: torch.Tensor) -> str:
    """Integer inputs are text; ``N x C x H x W`` images; ``N x T x C`` sequences; ``N x F`` tables."""
    if checks.is_token_input(inputs):
        return "text"
    return {4: "image", 3: "sequence", 2: "tabular"}.get(inputs.dim(), "tabular")


def explain(
    model: nn.Module,
    inputs: torch.Tensor,
    method: str = "integrated_gradients",
    target: int | Sequence[int] | torch.Tensor | None = None,
    *,
    baselines: torch.Tensor | float | None = None,
    modality: str | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
    layer: str | None = None,
    n_steps: int = 50,
    auto_steps: bool = True,
    n_samples: int | None = None,
    stdevs: float | None = None,
    window: Sequence[int] | None = None,
    feature_mask: torch.Tensor | None = None,
    seed: int = 0,
    progress: Progress = None,
) -> Attributions:
    """Attribute a model's outputs to its inputs with one of Captum's methods.

    Args:
        model: a classifier or regressor; its first layer normalises natural-unit inputs.
        inputs: a batch in natural units (images in [0, 1]); int64 token ids for text models.
        method: ``saliency``, ``input_x_gradient``, ``integrated_gradients``, ``smoothgrad``,
            ``gradient_shap``, ``deeplift``, ``grad_cam``, ``occlusion``, ``feature_ablation``,
            ``feature_permutation``, ``lime`` or ``kernel_shap`` (``ig``, ``gradcam`` ... also work).
        target: the output to explain: one index for every example, one per example, or None for
            each example's predicted class (output 0 for a single-output regressor).
        baselines: the reference input ("absence of signal"): a tensor broadcastable to one
            example or a number; default zeros (black images), and ``<unk>`` tokens for masking
            methods on text. GradientSHAP draws from several reference rows when given a batch.
        modality: a registered modality (``glassnet.data.modality``); it groups inputs for windows,
            masks and pictures (default: from the shape).
        memory_mb: memory budget of one forward and backward pass; sets Captum's internal batch
            sizes (``internal_batch_size``, ``nt_samples_batch_size``, ``perturbations_per_eval``)
            and how many examples run per chunk.
        layer: Grad-CAM's convolution (name in ``model.named_modules()``; default the last one).
        n_steps: integrated gradients' steps; with ``auto_steps`` they are doubled for the
            examples whose attributions do not add up to the output difference within 1%.
        auto_steps: raise the steps of integrated gradients until completeness holds.
        n_samples: samples of SmoothGrad (10), GradientSHAP (20), LIME and KernelSHAP (200).
        stdevs: noise of SmoothGrad and GradientSHAP (default: 10% of the inputs' spread for
            SmoothGrad, 0 for GradientSHAP).
        window: occlusion window per example (e.g. ``(1, 4, 4)``; default about a seventh of an
            image side, one feature of a table, one token of a text).
        feature_mask: features for ablation, permutation, LIME and KernelSHAP: an integer tensor
            shaped like one example, equal ids forming one feature (default: blocks of about an
            eighth of an image side, each column of a table, each time step, each token).
        seed: seeds the random draws (SmoothGrad, GradientSHAP, LIME, KernelSHAP, permutation).
        progress: a bar of the examples explained, with elapsed time and time left: True on stderr, or a
            text stream; None (default) or False draws nothing (``glassnet.progress``).

    Returns:
        ``Attributions`` with ``values`` shaped like ``inputs`` (text: ``N x tokens``).

    Raises:
        UnknownNameError: ``method`` is not a method.
        ConfigError: the method does not fit the model (the message says why and what fits), or an
            option is out of range.
        DataError: ``inputs`` or ``target`` do not fit the model.
    """
    name = resolve_method(method)
    inputs = _as_batch(inputs)
    modality = modality or infer_modality(inputs)
    if modality not in MODALITIES:
        raise ConfigError(f"modality must be one of {', '.join(MODALITIES)}. Received: modality={modality!r}")
    _check_options(n_steps=n_steps, n_samples=n_samples, memory_mb=memory_mb)
    device = _device(model)
    inputs = inputs.to(device)
    bar = progress_bar(len(inputs), f"explain ({METHODS[name].label})", progress, unit="examples")
    with bar, _eval_mode(model), _seeded(seed), _quiet_captum():
        start = time.perf_counter()
        measured, output_shape, first = cached_probe(model, inputs[:1])  # first: example 0's output, if run now
        budget = plan(model, inputs[:1], memory_mb, activation=measured)
        targets = _targets(model, inputs, target, budget.rows_without_gradients, output_shape, first)
        job = _Job(model, inputs, targets, name, modality, budget, baselines, layer, n_steps, auto_steps)
        job.bar = bar
        job.n_samples, job.stdevs, job.window, job.feature_mask = n_samples, stdevs, window, feature_mask
        values = _RUNNERS[name](job)
        elapsed = time.perf_counter() - start
    return Attributions(
        values=values.detach().float().cpu(),
        inputs=inputs.detach().cpu(),
        target=targets.cpu(),
        method=name,
        modality=modality,
        budget=budget,
        options=job.used,
        completeness=job.completeness,
        layer=job.layer_name,
        time_s=elapsed,
    )


class _Job:
    """One call of ``explain``: the model, data and options every runner reads, and what it reports back."""

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        method: str,
        modality: str,
        budget: Budget,
        baselines: torch.Tensor | float | None,
        layer: str | None,
        n_steps: int,
        auto_steps: bool,
    ) -> None:
        self.model, self.inputs, self.targets = model, inputs, targets
        self.method, self.modality, self.budget = method, modality, budget
        self.baselines, self.layer, self.n_steps, self.auto_steps = baselines, layer, n_steps, auto_steps
        self.kind = get_modality(modality)
        # inputs that cannot move by small amounts are token ids: gradients go through the embedding
        self.text = not self.kind.continuous
        self.n_samples: int | None = None
        self.stdevs: float | None = None
        self.window: Sequence[int] | None = None
        self.feature_mask: torch.Tensor | None = None
        self.used: dict[str, Any] = {}
        self.completeness: dict[str, Any] | None = None
        self.difference_scale: float | None = None  # median |f(x) - f(baseline)|, for completeness
        self.layer_name: str | None = None
        self._embedding: nn.Embedding | None = None
        self.bar: Any = progress_bar(None, "", None)  # advanced by the examples done (see ``explain``)

    # --- pieces the runners share -------------------------------------------------------------
    def chunks(self, expansion: int = 1) -> Iterator[tuple[slice, int]]:
        """Slices of the examples, each small enough that ``expansion`` rows per example fit the budget."""
        n = len(self.inputs)
        size = self.budget.chunk(n, expansion)
        self.used.setdefault("examples_per_chunk", size)
        for start in range(0, n, size):
            yield slice(start, min(n, start + size)), size

    def reference(self, part: slice | torch.Tensor | None = None) -> torch.Tensor:
        """The baseline for the examples in ``part``, broadcast to their shape."""
        x = self.inputs if part is None else self.inputs[part]
        if self.text:
            return torch.full_like(x, TEXT_PAD)
        if self.baselines is None:
            return torch.zeros_like(x)
        base = torch.as_tensor(self.baselines, dtype=x.dtype, device=x.device)
        if base.dim() == x.dim() and len(base) == len(self.inputs) and len(self.inputs) > 1 and part is not None:
            base = base[part]
        elif base.dim() == x.dim() and len(base) != len(x):
            base = base.mean(dim=0, keepdim=True)  # a reference set: its mean is the single reference
        return base.expand_as(x).contiguous()

    def masking_reference(self, part: slice) -> torch.Tensor:
        """The baseline of masking methods (``Modality.masking_baseline``): on text, real tokens become
        ``<unk>`` and padding stays; elsewhere the baseline."""
        return self.kind.masking_baseline(self.inputs[part], self.reference(part))

    def embedding(self) -> nn.Embedding:
        """The text model's token embedding, or the refusal that says why token methods cannot run."""
        if self._embedding is None:
            found = checks.find_embedding(self.model, int(self.inputs.max().item()) + 1)
            if found is None:
                raise checks.refuse(
                    METHODS[self.method].label,
                    "its inputs are token ids but the model has no nn.Embedding layer to take gradients through",
                    [m for m, info in METHODS.items() if info.text and not info.gradient],
                )
            self._embedding = found
            self.layer_name = next(n for n, m in self.model.named_modules() if m is found)
        return self._embedding

    def sum_embedding(self, values: torch.Tensor) -> torch.Tensor:
        """Embedding-layer attributions (``N x tokens x dim``) to one score per token."""
        return values.sum(dim=-1) if values.dim() == self.inputs.dim() + 1 else values

    def default_mask(self) -> torch.Tensor:
        """One feature id per input value: image blocks, table columns, time steps, tokens."""
        if self.feature_mask is not None:
            mask = torch.as_tensor(self.feature_mask, device=self.inputs.device).long()
            if mask.shape != self.inputs.shape[1:] and mask.shape != self.inputs.shape:
                raise ConfigError(
                    f"feature_mask must have the shape of one example {tuple(self.inputs.shape[1:])}. "
                    f"Received: {tuple(mask.shape)}"
                )
            return mask if mask.dim() == self.inputs.dim() else mask.unsqueeze(0)
        mask, used = self.kind.feature_mask(tuple(self.inputs.shape[1:]), self.inputs.device)
        self.used.update(used)
        return mask

    def default_window(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Occlusion's window and strides."""
        shape = tuple(self.inputs.shape[1:])
        if self.window is not None:
            window = tuple(int(w) for w in self.window)
            if len(window) != len(shape) or any(w < 1 or w > s for w, s in zip(window, shape, strict=True)):
                raise ConfigError(
                    f"window must have one size per input axis {shape}, each in range. Received: {window}"
                )
            return window, tuple(max(1, w // 2) for w in window)
        return self.kind.occlusion_window(shape)


# --- runners, one per method -------------------------------------------------------------------


def _saliency(job: _Job) -> torch.Tensor:
    from captum.attr import LayerGradientXActivation, Saliency

    if job.text:
        method = LayerGradientXActivation(job.model, job.embedding(), multiply_by_inputs=False)
        return _chunked(job, 1, lambda x, t, p: job.sum_embedding(method.attribute(x, target=t).abs()))
    method = Saliency(job.model)
    return _chunked(job, 1, lambda x, t, p: method.attribute(x, target=t, abs=True))


def _input_x_gradient(job: _Job) -> torch.Tensor:
    from captum.attr import InputXGradient, LayerGradientXActivation

    if job.text:
        method = LayerGradientXActivation(job.model, job.embedding())
        return _chunked(job, 1, lambda x, t, p: job.sum_embedding(method.attribute(x, target=t)))
    method = InputXGradient(job.model)
    return _chunked(job, 1, lambda x, t, p: method.attribute(x, target=t))


def _integrated_gradients(job: _Job) -> torch.Tensor:
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    from glassnet.explain import sampling

    if job.text:
        method = LayerIntegratedGradients(job.model, job.embedding())
    else:  # a channels-last copy of convolutional image models on a CPU (sampling.GradientPasses)
        method = IntegratedGradients(sampling.GradientPasses(job.model, job.inputs).forward)
    rows = job.budget.gradient_rows(job.inputs.device)  # on a CPU: passes that suit the cache

    def run(index: torch.Tensor, steps: int) -> torch.Tensor:
        # whole examples per pass where their steps fit (Captum's internal batching of the steps is
        # slower than one pass over the same rows), else one example with its steps split by Captum
        out = []
        for sub in index.split(max(1, rows // steps)):
            x, t = job.inputs[sub], job.targets[sub]
            internal = None if len(x) * steps <= rows else rows
            values = method.attribute(
                x, baselines=job.reference(sub), target=t, n_steps=steps, internal_batch_size=internal
            )
            out.append(job.sum_embedding(values).detach())
            job.bar.update(len(x))
        return torch.cat(out)

    everything = torch.arange(len(job.inputs), device=job.inputs.device)
    values = run(everything, job.n_steps)
    steps = torch.full((len(values),), job.n_steps)
    errors = _completeness_errors(job, values)
    current = job.n_steps
    while job.auto_steps and bool((errors > STEP_TOLERANCE).any()) and current < MAX_STEPS:
        current = min(MAX_STEPS, current * 2)
        failing = torch.nonzero(errors > STEP_TOLERANCE).flatten()
        # the examples whose attributions do not add up yet are explained again with more steps
        job.bar.total += len(failing)
        note(job.bar, f"{len(failing)} again with {current} steps")
        values[failing] = run(failing.to(job.inputs.device), current)
        steps[failing] = current
        errors[failing] = _completeness_errors(job, values, failing)
    job.used.update(
        n_steps=job.n_steps,
        examples_per_chunk=max(1, min(len(job.inputs), rows // job.n_steps)),
        internal_batch_size=rows,
        method="gausslegendre",
    )
    job.completeness = {
        "tolerance": STEP_TOLERANCE,
        "difference_floor": round(max(1e-3, DIFFERENCE_FLOOR * (job.difference_scale or 0.0)), 6),
        "steps_start": job.n_steps,
        "steps_max_used": int(steps.max()),
        "examples_raised": int((steps > job.n_steps).sum()),
        "max_relative_error": float(errors.max()),
        "median_relative_error": float(errors.median()),
        "holds": bool((errors <= STEP_TOLERANCE).all()),
    }
    return values


def _completeness_errors(job: _Job, values: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
    """``|sum(attributions) - (f(x) - f(baseline))|`` relative to the difference (``completeness_errors``)."""
    index = torch.arange(len(values)) if which is None else which
    x, t = job.inputs[index], job.targets[index]
    batch = job.budget.rows_without_gradients
    with torch.no_grad():
        top = _pick(_predict(job.model, x, batch), t)
        if job.text:
            with _layer_output_zeroed(job.embedding()):
                bottom = _pick(_predict(job.model, x, batch), t)
        else:
            bottom = _pick(_predict(job.model, job.reference()[index], batch), t)
    difference = (top - bottom).cpu()
    totals = values[index].flatten(1).sum(dim=1).cpu()
    if job.difference_scale is None:  # fixed on the first call (all examples), reused for the raised ones
        job.difference_scale = float(difference.abs().median())
    return completeness_errors(totals, difference, job.difference_scale)


def completeness_errors(totals: torch.Tensor, difference: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """``|total - difference| / max(|difference|, DIFFERENCE_FLOOR * scale, 1e-3)`` per example.

    ``scale`` is the typical ``|f(x) - f(baseline)|`` of the batch (default: the median of ``difference``).
    """
    typical = float(difference.abs().median()) if scale is None else scale
    floor = max(1e-3, DIFFERENCE_FLOOR * typical)
    return (totals - difference).abs() / difference.abs().clamp_min(floor)


@contextlib.contextmanager
def _layer_output_zeroed(layer: nn.Module) -> Iterator[None]:
    """Replace ``layer``'s output by zeros (a text model's blank embedding) while the block runs."""
    handle = layer.register_forward_hook(lambda module, args, output: torch.zeros_like(output))
    try:
        yield
    finally:
        handle.remove()


def _smoothgrad(job: _Job) -> torch.Tensor:
    from glassnet.explain import sampling

    if job.text:
        raise _no_text(job)
    samples = job.n_samples or 10
    stdevs = job.stdevs if job.stdevs is not None else 0.1 * float(job.inputs.max() - job.inputs.min())
    rows = job.budget.gradient_rows(job.inputs.device)
    job.used.update(nt_samples=samples, stdevs=stdevs, internal_batch_size=rows)  # model rows per pass
    passes = sampling.GradientPasses(job.model, job.inputs)

    def run(x: torch.Tensor, t: torch.Tensor, part: slice) -> torch.Tensor:
        # the samples drawn together are those Captum's NoiseTunnel would push through one pass of this budget
        per_draw = min(samples, max(1, job.budget.rows_per_pass // len(x)))
        job.used.setdefault("nt_samples_batch_size", per_draw)
        return sampling.smoothgrad(passes, x, t, samples, stdevs, per_draw, rows)

    return _chunked(job, samples, run, minimum_expansion=1)


def _gradient_shap(job: _Job) -> torch.Tensor:
    from glassnet.explain import sampling

    if job.text:
        raise _no_text(job)
    samples = job.n_samples or 20
    stdevs = job.stdevs if job.stdevs is not None else 0.0
    references = _reference_set(job)
    rows = job.budget.gradient_rows(job.inputs.device)
    job.used.update(n_samples=samples, stdevs=stdevs, references=len(references), internal_batch_size=rows)
    passes = sampling.GradientPasses(job.model, job.inputs)

    def run(x: torch.Tensor, t: torch.Tensor, part: slice) -> torch.Tensor:
        # GradientSHAP averages over its samples: when even one example's samples exceed the budget, they
        # are drawn in groups (as separate Captum calls would draw them) and the group means are averaged,
        # weighted by group size
        group = max(1, min(samples, job.budget.rows_per_pass // len(x)))
        job.used.setdefault("samples_per_pass", group)
        if group == samples:
            return sampling.gradient_shap(passes, x, t, references, samples, stdevs, rows)
        total = torch.zeros_like(x)
        for start in range(0, samples, group):
            k = min(group, samples - start)
            total += k * sampling.gradient_shap(passes, x, t, references, k, stdevs, rows)
        return total / samples

    return _chunked(job, samples, run)


def _reference_set(job: _Job) -> torch.Tensor:
    """GradientSHAP's references: the given rows, or one blank example."""
    if job.baselines is None:
        return torch.zeros_like(job.inputs[:1])
    base = torch.as_tensor(job.baselines, dtype=job.inputs.dtype, device=job.inputs.device)
    if base.dim() < job.inputs.dim():
        base = base.expand_as(job.inputs[0]).unsqueeze(0)
    return base.contiguous()


def _deeplift(job: _Job) -> torch.Tensor:
    from captum.attr import DeepLift

    fitting = ["integrated_gradients", "gradient_shap", "saliency", "input_x_gradient", "occlusion"]
    if job.text:
        raise _no_text(job)
    inplace = checks.inplace_modules(job.model)
    if inplace:
        raise checks.refuse(
            "DeepLift",
            f"modules {', '.join(inplace[:4])} work in place (inplace=True), which overwrites the activations "
            "DeepLift compares with its reference and gives wrong attributions",
            fitting,
        )
    recurrent = checks.recurrent_modules(job.model)
    if recurrent:
        raise checks.refuse(
            "DeepLift",
            f"recurrent layers ({', '.join(recurrent)}) hide their nonlinearities from DeepLift's rules",
            fitting,
        )
    reused = checks.reused_modules(job.model, job.inputs)
    if reused:
        raise checks.refuse(
            "DeepLift",
            f"modules {', '.join(reused[:4])} are called more than once per forward pass, so DeepLift cannot "
            "pair each call with its reference",
            fitting,
        )
    method = DeepLift(job.model)
    return _chunked(job, 2, lambda x, t, p: method.attribute(x, baselines=job.reference(p), target=t))


def _grad_cam(job: _Job) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    fitting = ["integrated_gradients", "saliency", "occlusion", "feature_ablation"]
    if job.text:
        raise checks.refuse(
            "Grad-CAM", "it needs a convolution over the input's positions; this is a text model", fitting
        )
    if job.layer is not None:
        layer, job.layer_name = checks.named_layer(job.model, job.layer), job.layer
        if not isinstance(layer, checks.CONVOLUTIONS + checks.ACTIVATIONS):
            raise ConfigError(
                f"Grad-CAM's layer must be a convolution or the activation after one; "
                f"{job.layer!r} is a {type(layer).__name__}"
            )
    else:
        found = checks.find_grad_cam_layer(job.model)
        if found is None:
            raise checks.refuse("Grad-CAM", "the model has no convolution layer (Conv1d or Conv2d)", fitting)
        job.layer_name, layer = found
    method = LayerGradCam(job.model, layer)

    def run(x: torch.Tensor, t: torch.Tensor, part: slice) -> torch.Tensor:
        cam = method.attribute(x, target=t, relu_attributions=True)
        return _cam_to_input(cam, x, LayerAttribution.interpolate)

    return _chunked(job, 1, run)


def _cam_to_input(cam: torch.Tensor, x: torch.Tensor, interpolate: Callable[..., torch.Tensor]) -> torch.Tensor:
    """A class-activation map scaled to the input and spread evenly over its channels."""
    cam = cam.sum(dim=1, keepdim=True) if cam.shape[1] != 1 else cam
    if cam.dim() == 4 and x.dim() == 4:  # Conv2d on images and spectrograms
        up = interpolate(cam, tuple(x.shape[2:]), "bilinear")
        return up.expand_as(x) / x.shape[1]
    if cam.dim() == 3 and x.dim() == 3:  # Conv1d over time on T x C sequences
        up = interpolate(cam, (x.shape[1],), "linear")
        return up.transpose(1, 2).expand_as(x) / x.shape[2]
    if cam.dim() == 3 and x.dim() == 4:  # Conv1d over the frames of 1 x mels x frames
        up = interpolate(cam, (x.shape[-1],), "linear")
        return up.unsqueeze(2).expand_as(x) / (x.shape[1] * x.shape[2])
    raise ConfigError(f"Grad-CAM cannot map a {tuple(cam.shape[1:])} layer map onto inputs {tuple(x.shape[1:])}")


def _occlusion(job: _Job) -> torch.Tensor:
    from captum.attr import Occlusion

    window, strides = job.default_window()
    method = Occlusion(job.model)
    job.used.update(window=window, strides=strides)

    def run(x: torch.Tensor, t: torch.Tensor, part: slice) -> torch.Tensor:
        per_eval = job.budget.perturbations_per_pass(len(x), x.device)
        job.used.setdefault("perturbations_per_eval", per_eval)
        base = job.masking_reference(part)
        if job.text:
            return _occlude_tokens(job, x, t, base, per_eval)
        return method.attribute(
            x, sliding_window_shapes=window, strides=strides, baselines=base, target=t, perturbations_per_eval=per_eval
        )

    return _chunked(job, 1, run, no_grad=True)


def _occlude_tokens(job: _Job, x: torch.Tensor, t: torch.Tensor, base: torch.Tensor, per_eval: int) -> torch.Tensor:
    """Occlusion of one token at a time is feature ablation with one feature per position."""
    from captum.attr import FeatureAblation

    mask = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    return FeatureAblation(job.model).attribute(
        x, baselines=base, target=t, feature_mask=mask, perturbations_per_eval=per_eval
    )


def _feature_ablation(job: _Job) -> torch.Tensor:
    from captum.attr import FeatureAblation

    mask = job.default_mask()
    method = FeatureAblation(job.model)

    def run(x: torch.Tensor, t: torch.Tensor, part: slice) -> torch.Tensor:
        per_eval = job.budget.perturbations_per_pass(len(x), x.device)
        job.used.setdefault("perturbations_per_eval", per_eval)
        return method.attribute(
            x, baselines=job.masking_reference(part), target=t, feature_mask=mask, perturbations_per_eval=per_eval
        )

    return _chunked(job, 1, run, no_grad=True)


def _feature_permutation(job: _Job) -> torch.Tensor:
    from captum.attr import FeaturePermutation

    if job.text:
        raise _no_text(job)
    if len(job.inputs) < 2:
        raise DataError("feature_permutation shuffles values between examples; give it at least 2 examples")
    mask = job.default_mask()
    per_eval = job.budget.perturbations_per_pass(len(job.inputs), job.inputs.device)
    job.used.update(perturbations_per_eval=per_eval, examples_per_chunk=len(job.inputs))
    with torch.no_grad():
        values = FeaturePermutation(job.model).attribute(
            job.inputs, target=job.targets, feature_mask=mask, perturbations_per_eval=per_eval
        )
    job.bar.update(len(job.inputs))
    return values


def _surrogate(kind: str) -> Callable[[_Job], torch.Tensor]:
    """LIME or KernelSHAP, one example at a time (both fit one surrogate model per example)."""

    def run_all(job: _Job) -> torch.Tensor:
        from captum.attr import KernelShap, Lime

        method = Lime(job.model) if kind == "lime" else KernelShap(job.model)
        samples = job.n_samples or 200
        mask = job.default_mask()
        per_eval = job.budget.perturbations_per_pass(1, job.inputs.device, limit=samples)
        job.used.update(n_samples=samples, perturbations_per_eval=per_eval, examples_per_chunk=1)
        out = []
        with torch.no_grad():
            for i in range(len(job.inputs)):
                x = job.inputs[i : i + 1]
                out.append(
                    method.attribute(
                        x,
                        baselines=job.masking_reference(slice(i, i + 1)),
                        target=job.targets[i : i + 1],
                        feature_mask=mask[:1],
                        n_samples=samples,
                        perturbations_per_eval=per_eval,
                    )
                )
                job.bar.update(1)
        return torch.cat(out)

    return run_all


_RUNNERS: dict[str, Callable[[_Job], torch.Tensor]] = {
    "saliency": _saliency,
    "input_x_gradient": _input_x_gradient,
    "integrated_gradients": _integrated_gradients,
    "smoothgrad": _smoothgrad,
    "gradient_shap": _gradient_shap,
    "deeplift": _deeplift,
    "grad_cam": _grad_cam,
    "occlusion": _occlusion,
    "feature_ablation": _feature_ablation,
    "feature_permutation": _feature_permutation,
    "lime": _surrogate("lime"),
    "kernel_shap": _surrogate("kernel_shap"),
}


# --- helpers -----------------------------------------------------------------------------------


def _chunked(
    job: _Job,
    expansion: int,
    attribute: Callable[[torch.Tensor, torch.Tensor, slice], torch.Tensor],
    no_grad: bool = False,
    minimum_expansion: int | None = None,
) -> torch.Tensor:
    """Run ``attribute(x, target, part)`` over chunks that fit the budget and concatenate."""
    out = []
    rows = minimum_expansion if minimum_expansion is not None else expansion
    for part, _ in job.chunks(rows):
        x, t = job.inputs[part], job.targets[part]
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            out.append(attribute(x, t, part).detach())
        job.bar.update(len(x))
    return torch.cat(out)


def _no_text(job: _Job) -> ConfigError:
    info = METHODS[job.method]
    why = {
        "smoothgrad": "it adds noise to the inputs, and noise on token ids has no meaning",
        "deeplift": "its rules do not cover the recurrent and attention layers of text models",
        "feature_permutation": "swapping tokens between texts of different lengths changes their padding",
        "gradient_shap": "it draws points between the input and random references, and token ids cannot be "
        "interpolated (integrated_gradients interpolates the embeddings instead)",
    }.get(job.method, "it does not apply to token inputs")
    return checks.refuse(info.label, why, [m for m, i in METHODS.items() if i.text])


def _pick(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    outputs = outputs.reshape(len(outputs), -1)
    return outputs.gather(1, targets.reshape(-1, 1).to(outputs.device)).squeeze(1)


def _targets(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Any,
    batch: int,
    output_shape: tuple[int, ...],
    first: torch.Tensor | None,
) -> torch.Tensor:
    """One output index per example: given, or the predicted class.

    ``output_shape``: one example's output shape; ``first``: the first example's output when the
    budget's probe just computed it (it is not computed twice).
    """
    width = math.prod(output_shape)
    if target is None:
        if width == 1:
            return torch.zeros(len(inputs), dtype=torch.long, device=inputs.device)
        with torch.no_grad():
            if first is None:
                outputs = _predict(model, inputs, batch)
            elif len(inputs) > 1:
                outputs = torch.cat([first, _predict(model, inputs[1:], batch)])
            else:
                outputs = first
        return outputs.reshape(len(outputs), -1).argmax(dim=1)
    chosen = torch.as_tensor(target, device=inputs.device).long().reshape(-1)
    if len(chosen) == 1:
        chosen = chosen.expand(len(inputs)).clone()
    if len(chosen) != len(inputs):
        raise DataError(f"target must be one index or one per example ({len(inputs)}). Received {len(chosen)}")
    if bool(((chosen < 0) | (chosen >= width)).any()):
        raise DataError(f"target indices must be in [0, {width - 1}] (the model has {width} outputs)")
    return chosen


def _predict(model: nn.Module, inputs: torch.Tensor, batch: int) -> torch.Tensor:
    return batched_outputs(model, inputs, batch, device=inputs.device, to_cpu=False)


def _as_batch(inputs: Any) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        try:
            inputs = torch.as_tensor(inputs)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataError(f"inputs must be a tensor or array. Received {type(inputs).__name__}") from exc
    if inputs.dim() < 2 or len(inputs) == 0:
        raise DataError(
            f"inputs must be a non-empty batch (examples on the first axis). Received shape {tuple(inputs.shape)}"
        )
    if torch.is_floating_point(inputs):
        if not bool(torch.isfinite(inputs).all()):
            raise DataError("inputs hold NaN or infinite values; clean them before explaining")
        return inputs.float()
    return inputs.long()


def _check_options(**values: Any) -> None:
    for key, value in values.items():
        if value is None:
            continue
        positive = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        if not positive or (key != "memory_mb" and not isinstance(value, int)):
            kind = "a positive number" if key == "memory_mb" else "a positive integer"
            raise ConfigError(f"{key} must be {kind}. Received: {key}={value!r}")


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet_captum() -> Iterator[None]:
    """Hide Captum's notices that say it set ``requires_grad`` or hooked activations: both are expected here."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Input Tensor \d+ did not already require gradients")
        warnings.filterwarnings("ignore", message=r"Setting forward, backward hooks and attributes")
        yield


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch, NumPy and Python (Captum draws from all three) and restore their states afterwards."""
    import random

    import numpy as np

    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
