"""``compress``: prune, quantise, distil and export a trained model, then measure every variant
against the fp32 original in one process."""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from glassnet.compress import distillation, export, pruning, quantization, recurrent
from glassnet.compress.checks import check_amount
from glassnet.compress.measure import (
    LOWER_IS_BETTER,
    PRIMARY_METRIC,
    Measurement,
    Variant,
    count_parameters,
    measure,
    pickled_state_size,
    serialized_size,
    torch_forward,
)
from glassnet.compress.storage import save_compressed
from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.errors import ConfigError, DataError, GlassnetError
from glassnet.models.serialization import save_model
from glassnet.progress import Progress, note, progress_bar
from glassnet.train import BestModel, Callback, Trainer
from glassnet.train.finite import require_finite_weights
from glassnet.train.tasks import get_task

EXPORT_FORMATS = ("onnx",)
VERIFY_EXAMPLES = 512


@dataclass
class CompressResult:
    """Every variant's figures beside the fp32 original's.

    Attributes:
        task: the task (decides the primary metric).
        metric: the primary metric (``accuracy`` for classification, ``rmse`` for regression).
        variants: one record per variant, the original first (see ``to_dict`` for the keys).
        onnx: the export check (max difference to PyTorch, tolerance, passed), when exported.
        skipped: methods that did not apply to this model, each with the reason.
        settings: the options that produced the variants.
        test_size: test examples the metrics are computed on.
        threads: CPU threads PyTorch and ONNX Runtime used while timing.
    """

    task: str
    metric: str
    variants: list[dict[str, Any]] = field(default_factory=list)
    onnx: dict[str, Any] | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    test_size: int = 0
    threads: int = 0

    def variant(self, name: str) -> dict[str, Any]:
        """The record of the variant called ``name``."""
        for record in self.variants:
            if record["name"] == name:
                return record
        raise KeyError(f"no variant {name!r}; variants: {', '.join(v['name'] for v in self.variants)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "test_size": self.test_size,
            "threads": self.threads,
            "settings": self.settings,
            "variants": self.variants,
            "onnx": self.onnx,
            "skipped": self.skipped,
        }

    def _repr_html_(self) -> str:
        """A notebook's view: each variant's primary metric, size, latency and speed-up beside the original."""
        from glassnet.notebook import esc, grid_table, titled

        header = ["variant", self.metric, "size (KB)", "parameters", "latency p50 (ms)", "speed-up"]
        rows = [
            [
                v.get("name"),
                v.get(self.metric),
                round(v["size_bytes"] / 1024, 1) if v.get("size_bytes") is not None else None,
                v.get("parameters"),
                v.get("latency_ms_p50"),
                v.get("latency_speedup"),
            ]
            for v in self.variants
        ]
        skipped = "".join(f"<div>skipped {esc(s.get('variant'))}: {esc(s.get('reason'))}</div>" for s in self.skipped)
        note = f"measured on {self.test_size:,} test examples with {self.threads} CPU thread(s)"
        return titled("Compression: variants against the original", grid_table(header, rows), skipped, note=note)


def compress(
    model: nn.Module,
    data: DataBundle,
    *,
    prune: float | None = None,
    prune_method: str = "structured",
    prune_steps: int = 1,
    fine_tune_epochs: int = 2,
    quantize: str | Sequence[str] | None = None,
    distill: str | None = None,
    student_hparams: dict[str, Any] | None = None,
    distill_epochs: int = 10,
    distill_lr: float = 3e-3,
    temperature: float = 4.0,
    alpha: float = 0.7,
    export_format: str | None = None,
    stack: bool = False,
    out: str | os.PathLike[str] | None = None,
    lr: float = 1e-3,
    batch_size: int = 64,
    repeats: int = 100,
    threads: int | None = None,
    seed: int = 0,
    progress: Progress = None,
) -> CompressResult:
    """Make smaller variants of a trained model and measure them against it.

    Args:
        model: the trained fp32 model (left untouched), built by ``create_model``.
        data: its ``DataBundle``: fine-tuning and distillation train on ``train`` (selecting on
            ``val``), calibration uses ``train``, every figure is measured on ``test``.
        prune: fraction to prune (0 < prune < 1): of the channels of each layer for
            ``structured``, of the weights for ``global`` / ``layer`` magnitude pruning.
        prune_method: ``structured`` (Torch-Pruning removes channels, or for ``rnn`` / ``lstm`` /
            ``gru`` models ``recurrent_prune`` removes hidden units and embedding dimensions;
            layers shrink), ``global`` or ``layer`` (unstructured magnitude pruning, zeros made
            permanent).
        prune_steps: prune in this many rounds, fine-tuning after each (iterative pruning).
        fine_tune_epochs: epochs of fine-tuning after each pruning round (0 for none).
        quantize: ``int8`` (torch-dynamic, torch-static and ort-static) or one or more of
            ``torch-dynamic``, ``torch-static``, ``ort-static``, ``ort-dynamic``.
        distill: a registered model name: train that student from the model (the teacher).
        student_hparams: the student's hyper-parameters.
        distill_epochs: epochs of training the student.
        distill_lr: peak learning rate of the student's training.
        temperature: softmax temperature of the soft targets (see ``DistillationStep``).
        alpha: weight of the soft-target loss; ``1 - alpha`` weighs the loss on the labels.
        export_format: ``onnx`` writes ``model.onnx`` (dynamic batch) and checks it against PyTorch.
            ONNX Runtime quantisation exports it anyway.
        stack: also quantise the pruned model with each ONNX Runtime method asked for (variants
            ``pruned-<method>+int8-ort-static`` ...): needs ``prune`` and an ``ort-*`` quantisation.
        out: directory for the variants' files (``model.onnx``, ``model.int8.onnx``,
            ``pruned-<method>.safetensors``, ``pruned.int8.onnx``, ``student/``); None keeps nothing on disk.
        lr: peak learning rate of fine-tuning after pruning.
        batch_size: batch size of fine-tuning and distillation.
        repeats: batch-1 latency samples per variant (throughput uses ``repeats // 5`` batches).
        threads: CPU threads of PyTorch and ONNX Runtime for the whole call (None: torch's current
            setting). On a busy machine ``threads=1`` gives steadier timings.
        seed: seeds fine-tuning and distillation.
        progress: bars with elapsed time and time left, one over the variants made and one over the
            measurements: True on stderr, or a text stream; None (default) or False draws nothing.

    Returns:
        A ``CompressResult``; a method that does not apply to the model (e.g. ONNX export of a
        packed recurrent model) is listed in ``skipped`` with the reason instead of failing the rest.

    Raises:
        ConfigError: an option is invalid, or nothing was asked for.
        RunError: the model holds NaN or infinite weights (its training diverged).
    """
    require_finite_weights(model, "the model")
    plan = Plan(
        prune=prune,
        prune_method=prune_method,
        prune_steps=prune_steps,
        fine_tune_epochs=fine_tune_epochs,
        lr=lr,
        quantize=quantization.resolve_methods(quantize),
        distill=distill,
        student_hparams=dict(student_hparams or {}),
        distill_epochs=distill_epochs,
        distill_lr=distill_lr,
        temperature=temperature,
        alpha=alpha,
        export=export_format,
        stack=stack,
        batch_size=batch_size,
        repeats=repeats,
        threads=threads,
        seed=seed,
    )
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_plan(model, data, plan, out, progress)
    finally:
        torch.set_num_threads(previous_threads)


@dataclass(frozen=True)
class Plan:
    """The checked options of one ``compress`` call (see its arguments); ``to_dict`` is what
    ``compress.json`` records under ``settings``."""

    prune: float | None
    prune_method: str
    prune_steps: int
    fine_tune_epochs: int
    lr: float
    quantize: list[str]
    distill: str | None
    student_hparams: dict[str, Any]
    distill_epochs: int
    distill_lr: float
    temperature: float
    alpha: float
    export: str | None
    stack: bool
    batch_size: int
    repeats: int
    threads: int | None
    seed: int

    def __post_init__(self) -> None:
        if self.prune is not None:
            check_amount(self.prune)
        if self.prune_method not in pruning.METHODS:
            raise ConfigError(
                f"prune_method must be one of {', '.join(pruning.METHODS)}. "
                f"Received: prune_method={self.prune_method!r}"
            )
        for name, low in (
            ("prune_steps", 1),
            ("fine_tune_epochs", 0),
            ("distill_epochs", 1),
            ("batch_size", 1),
            ("repeats", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(f"threads must be a positive integer. Received: threads={self.threads!r}")
        for name in ("lr", "distill_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a positive number. Received: {name}={value!r}")
        if self.export is not None and self.export not in EXPORT_FORMATS:
            raise ConfigError(f"export must be one of {', '.join(EXPORT_FORMATS)}. Received: export={self.export!r}")
        if not isinstance(self.stack, bool):
            raise ConfigError(f"stack must be True or False. Received: stack={self.stack!r}")
        if self.stack and (self.prune is None or not any(m.startswith("ort-") for m in self.quantize)):
            raise ConfigError(
                "stack=True quantises the pruned model with ONNX Runtime: it needs prune=F and quantize=int8 "
                "(or ort-static / ort-dynamic); on the command line --prune 0.5 --quantize int8 --stack"
            )
        if self.student_hparams and self.distill is None:
            raise ConfigError("student hyper-parameters were given without a student model; pass distill=<model name>")
        if self.distill is not None:
            from glassnet.models.registry import model_info

            model_info(self.distill)  # an unknown name fails now, with a suggestion
            distillation.DistillationStep(nn.Identity(), self.temperature, self.alpha)  # checks T and alpha
        if self.prune is None and not self.quantize and self.distill is None and self.export is None:
            raise ConfigError(
                "nothing to do: ask for at least one of prune=F, quantize=int8, distill=MODEL or export_format=onnx "
                "(on the command line: --prune 0.5, --quantize int8, --distill mlp, --export onnx)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def variant_cells(record: dict[str, Any], metric: str) -> list[str]:
    """A variant of ``compress.json`` as table cells: name, size, parameters, the metric (and its change),
    latency p50 and p95, batch-64 throughput, and the size, batch-1 and batch-64 ratios to fp32; a figure
    that is missing (NaN is stored as null) reads "n/a"."""
    value, change = record.get(metric), record.get(f"{metric}_change")
    shown = _cell(value, ".4f")
    if _number(change) and record.get("name") != "fp32":
        shown += f" ({change:+.4f})"
    size = record.get("size_bytes")
    return [
        str(record.get("name")),
        _cell(size / 1024 if _number(size) else None, ",.1f", " KiB"),
        _cell(record.get("parameters"), ","),
        shown,
        _cell(record.get("latency_ms_p50"), ".3f"),
        _cell(record.get("latency_ms_p95"), ".3f"),
        _cell(record.get("throughput"), ",.0f"),
        _cell(record.get("size_ratio"), ".2f", "x"),
        _cell(record.get("latency_speedup"), ".2f", "x"),
        _cell(record.get("throughput_speedup"), ".2f", "x"),
    ]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: Any, spec: str, unit: str = "") -> str:
    return format(value, spec) + unit if _number(value) else "n/a"


def _steps(plan: Plan) -> int:
    """Variants ``_run_plan`` will try to make (the units of its progress bar)."""
    ort = sum(m.startswith("ort-") for m in plan.quantize)
    torch_int8 = sum(m in ("torch-dynamic", "torch-static") for m in plan.quantize)
    onnx = plan.export == "onnx" or ort > 0
    return (plan.prune is not None) + torch_int8 + onnx + ort + ort * plan.stack + (plan.distill is not None)


class _Ticker(Callback):
    """Keeps a variant's bar alive while it trains (fine-tuning, distillation): the epoch in its postfix, the
    elapsed time redrawn as often as the bar redraws."""

    def __init__(self, bar: Any, name: str, what: str) -> None:
        self.bar, self.name, self.what = bar, name, what

    def on_batch_end(self, trainer: Trainer, model: nn.Module, batch_size: int) -> None:
        note(self.bar, f"{self.name}: {self.what} {trainer.period_label()}")


def _run_plan(
    model: nn.Module, data: DataBundle, plan: Plan, out: str | os.PathLike[str] | None, progress: Progress
) -> CompressResult:
    spec = data.spec
    task = get_task(spec.task)
    model = model.cpu().eval()
    test_x, test_y = _tensors(data.test, "test")
    train_x, _ = _tensors(data.train, "train")
    bar = progress_bar(_steps(plan), "compress", progress, unit="variants")
    result = CompressResult(task=spec.task, metric=PRIMARY_METRIC.get(spec.task, "loss"), settings=plan.to_dict())
    result.test_size, result.threads = len(test_x), torch.get_num_threads()
    with bar, tempfile.TemporaryDirectory(prefix="glassnet-compress-") as scratch:
        folder = Path(out) if out is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        variants = [_original(model)]

        def attempt(name: str, make: Any) -> bool:
            note(bar, name)
            try:
                variant = make()
            except GlassnetError as exc:
                result.skipped.append({"variant": name, "reason": str(exc)})
                return False
            finally:
                bar.update(1)
            if out is None:
                variant.file = None
            variants.append(variant)
            return True

        pruned: list[nn.Module] = []  # the pruned model, once made, for the stacked variants
        if plan.prune is not None:
            tune = _fine_tuner(data, plan, [_Ticker(bar, f"pruned-{plan.prune_method}", "fine-tuning")])
            attempt(
                f"pruned-{plan.prune_method}", lambda: _pruned(model, spec, train_x, plan, tune, folder, pruned.append)
            )
        for method in ("torch-dynamic", "torch-static"):
            if method in plan.quantize:
                attempt(f"int8-{method}", lambda method=method: _torch_int8(model, method, train_x))
        ort_methods = [m for m in plan.quantize if m.startswith("ort-")]
        if plan.export == "onnx" or ort_methods:
            onnx_path = folder / "model.onnx"
            exported = attempt("onnx-fp32", lambda: _onnx_fp32(model, train_x, test_x, onnx_path, result))
            for method in ort_methods:
                if exported:
                    attempt(
                        f"int8-{method}", lambda method=method: _ort_int8(onnx_path, method, train_x, folder, model)
                    )
                else:
                    result.skipped.append(
                        {"variant": f"int8-{method}", "reason": "needs the ONNX export, which failed"}
                    )
                    bar.update(1)
        if plan.stack:
            for method in ort_methods:
                name = f"pruned-{plan.prune_method}+int8-{method}"
                if pruned:
                    attempt(
                        name,
                        lambda name=name, method=method: _stacked(
                            name, pruned[0], method, train_x, test_x, folder, Path(scratch)
                        ),
                    )
                else:
                    result.skipped.append({"variant": name, "reason": "needs the pruned model, which failed"})
                    bar.update(1)
        if plan.distill is not None:
            ticker = _Ticker(bar, f"distilled-{plan.distill}", "training")
            attempt(f"distilled-{plan.distill}", lambda: _distilled(model, data, plan, folder, [ticker]))
        note(bar, "")
        bar.close()
        measurements = measure(variants, test_x, test_y, task, repeats=plan.repeats, progress=progress)
    result.variants = _records(variants, measurements, result.metric)
    return result


def _tensors(dataset: Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if len(dataset) == 0:
        raise DataError(f"the {split} split is empty; compression measures on test and calibrates on train")
    x, y = split_tensors(dataset)
    return x.cpu(), y.cpu()


def _original(model: nn.Module) -> Variant:
    params, nonzero = count_parameters(model)
    return Variant(
        name="fp32",
        method="the trained model (PyTorch eager, fp32)",
        runtime="pytorch",
        forward=torch_forward(model),
        parameters=params,
        nonzero_parameters=nonzero,
        size_bytes=serialized_size(model),
        notes="size of its safetensors weights",
    )


def _fine_tuner(data: DataBundle, plan: Plan, callbacks: list[Callback] | None = None) -> Any:
    if plan.fine_tune_epochs == 0:
        return None

    def fine_tune(model: nn.Module) -> None:
        trainer = Trainer(
            task=data.spec.task,
            max_epochs=plan.fine_tune_epochs,
            lr=plan.lr,
            batch_size=plan.batch_size,
            seed=plan.seed,
            device="cpu",
            schedule="cosine",
            callbacks=([BestModel("val/loss")] if len(data.val) else []) + list(callbacks or []),
        )
        trainer.fit(model, data)
        model.eval()

    return fine_tune


def _pruned(
    model: nn.Module, spec: Any, train_x: torch.Tensor, plan: Plan, tune: Any, folder: Path, keep: Any
) -> Variant:
    amount, method, steps = plan.prune, plan.prune_method, plan.prune_steps
    if method == "structured":
        pruned = pruning.channel_prune(model, train_x[:2], amount, steps=steps, fine_tune=tune)
        if recurrent.is_recurrent(model):
            what = (
                f"structured: {amount:.0%} of the hidden units of every recurrent layer and direction"
                f"{' and of the embedding dimensions' if pruned.text else ''} removed (glassnet unit pruner)"
            )
        else:
            what = f"structured: {amount:.0%} of each layer's channels removed (Torch-Pruning)"
    else:
        pruned = pruning.magnitude_prune(model, amount, scope=method, steps=steps, fine_tune=tune)
        what = f"unstructured {method} magnitude pruning of {amount:.0%} of the weights"
    if tune is not None:
        what += f", {steps} round(s) of {plan.fine_tune_epochs} fine-tuning epochs"
    path = folder / f"pruned-{method}.safetensors"
    save_compressed(pruned, spec, path, method=what)
    keep(pruned)
    params, nonzero = count_parameters(pruned)
    extra: dict[str, Any] = {"sparsity": round(pruning.sparsity(pruned), 4)}
    notes = "safetensors weights + architecture; load with glassnet.compress.load_compressed"
    if method != "structured":
        # zeros are stored densely; what they save shows only once the file is compressed
        extra["zlib_bytes"] = len(zlib.compress(path.read_bytes(), 6))
        notes += "; zeros are stored densely (zlib_bytes: the compressed size)"
    return Variant(
        f"pruned-{method}",
        what,
        "pytorch",
        torch_forward(pruned),
        params,
        nonzero,
        path.stat().st_size,
        str(path),
        notes,
        extra,
    )


def _torch_int8(model: nn.Module, method: str, train_x: torch.Tensor) -> Variant:
    if method == "torch-dynamic":
        quantized = quantization.dynamic_quantize(model)
        what = "PyTorch dynamic int8 (Linear/LSTM/GRU weights int8, embeddings 8-bit, activations quantised on the fly)"
    else:
        quantized = quantization.static_quantize(model, train_x)
        what = "PyTorch static int8 (FX post-training quantisation, x86 backend, calibrated on train)"
    params, nonzero = count_parameters(model)
    return Variant(
        f"int8-{method}",
        what,
        "pytorch",
        torch_forward(quantized),
        params,
        nonzero,
        pickled_state_size(quantized),
        None,
        "size of its state in memory (PyTorch-quantised weights have no safe file format; not written)",
    )


def _onnx_fp32(
    model: nn.Module, train_x: torch.Tensor, test_x: torch.Tensor, path: Path, result: CompressResult
) -> Variant:
    exporter = export.export_onnx(model, train_x, path)
    check = export.verify_onnx(model, path, test_x[:VERIFY_EXAMPLES], exporter)
    result.onnx = {"file": path.name, **check.to_dict()}
    params, nonzero = count_parameters(model)
    return Variant(
        "onnx-fp32",
        f"ONNX ({exporter} exporter) run by ONNX Runtime",
        "onnxruntime",
        export.OnnxModel(path),
        params,
        nonzero,
        path.stat().st_size,
        str(path),
        "",
        {"max_abs_diff": check.max_abs_diff},
    )


def _ort_int8(onnx_path: Path, method: str, train_x: torch.Tensor, folder: Path, model: nn.Module) -> Variant:
    path = folder / ("model.int8.onnx" if method == "ort-static" else "model.int8-dynamic.onnx")
    quantization.ort_quantize(onnx_path, path, train_x, method=method)
    what = (
        "ONNX Runtime static int8 (QDQ, per-channel weights, calibrated on train)"
        if method == "ort-static"
        else "ONNX Runtime dynamic int8 (weights int8, activations quantised at run time)"
    )
    params, nonzero = count_parameters(model)
    return Variant(
        f"int8-{method}", what, "onnxruntime", export.OnnxModel(path), params, nonzero, path.stat().st_size, str(path)
    )


def _stacked(
    name: str,
    pruned: nn.Module,
    method: str,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    folder: Path,
    scratch: Path,
) -> Variant:
    fp32 = scratch / "pruned.onnx"
    exporter = export.export_onnx(pruned, train_x, fp32)
    check = export.verify_onnx(pruned, fp32, test_x[:VERIFY_EXAMPLES], exporter)
    path = folder / ("pruned.int8.onnx" if method == "ort-static" else "pruned.int8-dynamic.onnx")
    quantization.ort_quantize(fp32, path, train_x, method=method)
    kind = "static int8 (QDQ, calibrated on train)" if method == "ort-static" else "dynamic int8"
    params, nonzero = count_parameters(pruned)
    return Variant(
        name,
        f"the pruned model above, exported to ONNX and quantised by ONNX Runtime ({kind})",
        "onnxruntime",
        export.OnnxModel(path),
        params,
        nonzero,
        path.stat().st_size,
        str(path),
        "the pruned model's fp32 ONNX export was checked against it first (export_max_abs_diff)",
        {"export_max_abs_diff": check.max_abs_diff},
    )


def _distilled(
    teacher: nn.Module, data: DataBundle, plan: Plan, folder: Path, callbacks: list[Callback] | None = None
) -> Variant:
    assert plan.distill is not None
    model = distillation.distill(
        teacher,
        data,
        plan.distill,
        plan.student_hparams,
        epochs=plan.distill_epochs,
        lr=plan.distill_lr,
        batch_size=plan.batch_size,
        temperature=plan.temperature,
        alpha=plan.alpha,
        seed=plan.seed,
        device="cpu",
        callbacks=callbacks,
    )
    directory = folder / "student"
    save_model(model, data.spec, directory)
    params, nonzero = count_parameters(model)
    shown = ", ".join(f"{k}={v}" for k, v in plan.student_hparams.items())
    what = (
        f"student {plan.distill}({shown}) distilled from the model "
        f"(T={plan.temperature:g}, alpha={plan.alpha:g}, {plan.distill_epochs} epochs)"
    )
    return Variant(
        f"distilled-{plan.distill}",
        what,
        "pytorch",
        torch_forward(model),
        params,
        nonzero,
        (directory / "model.safetensors").stat().st_size,
        str(directory),
        "a run directory (model.json + model.safetensors): glassnet.load() reads it",
    )


def _records(variants: list[Variant], measurements: list[Measurement], metric: str) -> list[dict[str, Any]]:
    base, base_m = variants[0], measurements[0]
    records = []
    for v, m in zip(variants, measurements):
        value, base_value = m.metrics.get(metric), base_m.metrics.get(metric)
        change = None if value is None or base_value is None else value - base_value
        latency_speedup = base_m.latency_ms_p50 / m.latency_ms_p50
        throughput_speedup = m.throughput / base_m.throughput
        slower = [
            w for w, s in (("batch-1 latency", latency_speedup), ("batch-64 throughput", throughput_speedup)) if s < 1
        ]
        records.append(
            {
                "name": v.name,
                "method": v.method,
                "runtime": v.runtime,
                "file": v.file,
                "size_bytes": v.size_bytes,
                "parameters": v.parameters,
                "nonzero_parameters": v.nonzero_parameters,
                "metrics": m.metrics,
                metric: value,
                f"{metric}_change": change,
                "worse": bool(change is not None and (change > 0 if metric in LOWER_IS_BETTER else change < 0)),
                "latency_ms_p50": m.latency_ms_p50,
                "latency_ms_p95": m.latency_ms_p95,
                "throughput": m.throughput,
                "size_ratio": base.size_bytes / v.size_bytes,
                "parameter_ratio": base.parameters / max(v.parameters, 1),
                "latency_speedup": latency_speedup,
                "throughput_speedup": throughput_speedup,
                "slower": slower,
                "notes": v.notes,
                **v.extra,
            }
        )
    return records
