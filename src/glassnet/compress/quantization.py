"""Int8 quantisation: PyTorch dynamic (Linear, LSTM, GRU), PyTorch static post-training with
calibration (FX graph mode, for CNNs), and ONNX Runtime's quantiser on the exported model."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassnet.compress.export import INPUT_NAME, compact_onnx
from glassnet.compress.optional import require
from glassnet.errors import ConfigError
from glassnet.runs import atomic_write

# what quantize="int8" means: the int8 paths worth trying on the CPU (ORT static QDQ is the fast one)
INT8_METHODS = ("torch-dynamic", "torch-static", "ort-static")
METHODS = ("torch-dynamic", "torch-static", "ort-static", "ort-dynamic")
CALIBRATION_EXAMPLES = 512


def resolve_methods(quantize: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``int8`` -> the default int8 methods; a name or list of names -> themselves, checked."""
    if quantize is None:
        return []
    names = [quantize] if isinstance(quantize, str) else list(quantize)
    methods: list[str] = []
    for name in names:
        expanded = list(INT8_METHODS) if name == "int8" else [name]
        for method in expanded:
            if method not in METHODS:
                raise ConfigError(f"quantize must be int8 or one of {', '.join(METHODS)}. Received: quantize={name!r}")
            if method not in methods:
                methods.append(method)
    return methods


def calibration_sample(inputs: torch.Tensor, count: int = CALIBRATION_EXAMPLES, seed: int = 0) -> torch.Tensor:
    """Up to ``count`` inputs drawn at random (seeded) from all of ``inputs``.

    The first rows of a split may all be one class (a split can be stored grouped by label), and
    activation ranges calibrated on one class clip the others.
    """
    if len(inputs) <= count:
        return inputs
    chosen = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:count]
    return inputs[torch.sort(chosen).values]


def dynamic_quantize(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear, LSTM and GRU layers hold int8 weights, with activations
    quantised on the fly, and whose embeddings hold 8-bit rows (``torch.ao`` ``quantize_dynamic``).

    Raises:
        ConfigError: the model has none of those layers.
    """
    from torch.ao.quantization import default_dynamic_qconfig, float_qparams_weight_only_qconfig, quantize_dynamic

    layers: dict[type[nn.Module], object] = {
        nn.Linear: default_dynamic_qconfig,
        nn.LSTM: default_dynamic_qconfig,
        nn.GRU: default_dynamic_qconfig,
        nn.Embedding: float_qparams_weight_only_qconfig,
    }
    if not any(isinstance(m, tuple(layers)) for m in model.modules()):
        raise ConfigError(
            f"{type(model).__name__} has no Linear, LSTM, GRU or Embedding layer for dynamic quantisation"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its move to torchao on every call
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), layers, dtype=torch.qint8)


def static_quantize(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with int8 weights and activations (FX graph mode post-training
    quantisation for the x86 backend), calibrated on up to 512 of the ``calibration`` inputs drawn
    at random (``calibration_sample``). Submodules the model names in ``float_modules`` stay in float.

    Raises:
        ConfigError: the model has no convolution (use dynamic quantisation) or cannot be traced.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if not any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        raise ConfigError(
            f"static int8 quantisation is for convolutional models; {type(model).__name__} has no convolution "
            "(use torch-dynamic or ort-static)"
        )
    calibration = calibration_sample(calibration)
    example = calibration[:1].cpu()
    mapping = get_default_qconfig_mapping("x86")
    for name in getattr(model, "float_modules", ()):  # parts the model asks to keep in float
        mapping = mapping.set_module_name(name, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prepare_fx(copy.deepcopy(model).cpu().eval(), mapping, (example,))
            with torch.inference_mode():
                for begin in range(0, len(calibration), 64):
                    prepared(calibration[begin : begin + 64].cpu())
            return convert_fx(prepared)
    except Exception as exc:  # FX tracing raises many error types for dynamic control flow
        raise ConfigError(f"static int8 quantisation cannot trace {type(model).__name__}: {exc!r}") from exc


@contextlib.contextmanager
def _scratch_directory() -> Iterator[None]:
    """Runs the block in a fresh temporary working directory, removed afterwards with whatever it holds."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="glassnet-ort-") as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(previous)


def _pre_process(quant_pre_process: Any, onnx_path: Path, prepared: Path) -> None:
    """ONNX Runtime's pre-processing before quantisation. Its symbolic shape inference gives up on some
    graphs (a TypeError inside it on the Unsqueeze of a BERT's attention mask; a plain Exception,
    "Incomplete symbolic shape inference", on a diffusion U-Net's attention); the quantiser then
    works from ONNX's own shape inference, which it also runs. When it gives up it saves its partial
    graph as ``sym_shape_infer_temp.onnx`` plus an external-data file into the working directory, so
    it runs in a scratch directory: the user's working directory stays as it was."""
    source, target = str(onnx_path.resolve()), str(prepared.resolve())
    with _scratch_directory():
        try:
            quant_pre_process(source, target, skip_symbolic_shape=False)
        except Exception as exc:  # noqa: BLE001 -- the second kind is raised as a bare Exception
            known = (TypeError, ValueError, KeyError, IndexError, AttributeError)
            if not isinstance(exc, known) and "symbolic shape inference" not in str(exc):
                raise
            quant_pre_process(source, target, skip_symbolic_shape=True)


def ort_quantize(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: torch.Tensor | None,
    method: str = "ort-static",
) -> None:
    """Quantise an exported ONNX model to int8 with ONNX Runtime's quantiser.

    ``ort-static`` writes a QDQ model with per-channel int8 weights and uint8 activations whose
    ranges are calibrated (min-max) on up to 512 of the ``calibration`` inputs drawn at random
    (``calibration_sample``); ``ort-dynamic`` quantises weights
    only and the activations at run time (no calibration).
    """
    require("onnx")
    quantization = require("onnxruntime.quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    prepared = out_path.with_name(f".{out_path.stem}.pre.onnx")
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_logging():
            warnings.simplefilter("ignore")
            _pre_process(quant_pre_process, onnx_path, prepared)
            if method == "ort-static":
                if calibration is None or len(calibration) == 0:
                    raise ConfigError("ort-static quantisation needs calibration inputs (the training split)")
                reader = _CalibrationReader(calibration_sample(calibration))
                kept_float = output_joins(prepared)

                def write(tmp: str) -> None:
                    quantization.quantize_static(
                        str(prepared),
                        tmp,
                        reader,
                        quant_format=quantization.QuantFormat.QDQ,
                        per_channel=True,
                        activation_type=quantization.QuantType.QUInt8,
                        weight_type=quantization.QuantType.QInt8,
                        nodes_to_exclude=kept_float,
                    )

            elif method == "ort-dynamic":

                def write(tmp: str) -> None:
                    quantization.quantize_dynamic(str(prepared), tmp, weight_type=quantization.QuantType.QInt8)

            else:
                raise ConfigError(f"unknown ONNX Runtime quantisation method {method!r}; use ort-static or ort-dynamic")
            atomic_write(out_path, write)
            compact_onnx(out_path)  # the quantiser writes value_info, notes and long names back
    finally:
        prepared.unlink(missing_ok=True)


def output_joins(path: str | os.PathLike[str]) -> list[str]:
    """The Concat nodes that produce a graph output (named first, in the file, where the exporter left
    names empty): kept in float by ``ort-static``, as ``float_modules`` keeps them in torch. Their
    inputs (e.g. a detector's heatmap logits and box offsets) can span very different ranges, which
    one shared 8-bit scale would blur."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    outputs = {o.name for o in graph.output}
    joins = [n for n in graph.node if n.op_type == "Concat" and outputs.intersection(n.output)]
    if not joins:
        return []
    taken = {n.name for n in graph.node}
    for k, node in enumerate(graph.node):  # the exporter may leave names empty: the quantiser matches by name
        if not node.name:
            i = 0
            while f"glassnet_{node.op_type}_{k}_{i}" in taken:
                i += 1
            node.name = f"glassnet_{node.op_type}_{k}_{i}"
            taken.add(node.name)
    onnx.save(model, str(path))
    return [n.name for n in joins]


class _CalibrationReader:
    """Feeds calibration batches to ``quantize_static`` (ONNX Runtime's CalibrationDataReader protocol)."""

    def __init__(self, inputs: torch.Tensor, batch_size: int = 64) -> None:
        array = inputs.detach().cpu().numpy()
        self.batches = [{INPUT_NAME: array[i : i + batch_size]} for i in range(0, len(array), batch_size)]
        self.position = 0

    def get_next(self) -> dict | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]

    def rewind(self) -> None:
        self.position = 0

    def __iter__(self) -> _CalibrationReader:
        return self

    def __next__(self) -> dict:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch


@contextlib.contextmanager
def _quiet_logging():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
