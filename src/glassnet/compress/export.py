"""ONNX export (one file, dynamic batch), its verification against PyTorch, and an ONNX Runtime
model that runs it."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glassnet.compress.optional import require
from glassnet.compress.unpacked import UnpackedRecurrent, needs_unpacking
from glassnet.errors import ConfigError, DataError
from glassnet.runs import atomic_write

INPUT_NAME = "input"
OUTPUT_NAME = "output"
TOLERANCE = 1e-4
OPSET = 18


@dataclass
class ExportCheck:
    """How closely the ONNX file reproduces the PyTorch model.

    Attributes:
        max_abs_diff: largest absolute difference between the two models' outputs.
        examples: inputs compared.
        tolerance: the bar ``max_abs_diff`` must stay under.
        exporter: ``dynamo`` (torch.export based) or ``torchscript`` (the legacy exporter, used only
            when the first fails).
    """

    max_abs_diff: float
    examples: int
    tolerance: float
    exporter: str

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, object]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "examples": self.examples,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "exporter": self.exporter,
        }


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]) -> str:
    """Write ``model`` to one ONNX file whose batch dimension is dynamic.

    The torch.export-based exporter is tried first; the TorchScript exporter is the fallback for
    graphs it cannot capture. Text recurrent models are exported through ``UnpackedRecurrent``
    (same weights and outputs, no packed sequences). Returns the exporter that succeeded.

    Raises:
        ConfigError: the ONNX packages are missing, or neither exporter can export this model.
    """
    require("onnx")
    require("onnxscript")
    model = copy.deepcopy(model).cpu().eval()
    if needs_unpacking(model):
        model = UnpackedRecurrent(model).eval()  # packed sequences do not export; its twin does
    example = example[:2].cpu() if len(example) >= 2 else example.cpu()
    errors = []
    for exporter in ("dynamo", "torchscript"):
        try:
            atomic_write(path, lambda tmp, exporter=exporter: _export(model, example, tmp, exporter))
            return exporter
        except Exception as exc:  # each exporter raises its own error types
            errors.append(f"{exporter}: {_first_line(exc)}")
    raise ConfigError(f"{type(model).__name__} cannot be exported to ONNX ({'; '.join(errors)})")


def _export(model: nn.Module, example: torch.Tensor, path: str, exporter: str) -> None:
    quiet = io.StringIO()
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.no_grad():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                program = torch.onnx.export(
                    model,
                    (example,),
                    dynamo=True,
                    verbose=False,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                    opset_version=OPSET,
                    external_data=False,
                )
                program.save(path)
            else:
                torch.onnx.export(
                    model,
                    (example,),
                    path,
                    dynamo=False,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=17,
                )
    finally:
        onnx_logger.setLevel(level)
    compact_onnx(path)
    require("onnx").checker.check_model(path)


def compact_onnx(path: str | os.PathLike[str], rename: bool = True) -> int:
    """Rewrite an ONNX file (atomically) without what inference does not read; returns bytes saved.

    Dropped: the metadata of every node, of the graph and of the model (the exporter's source
    stack traces, module paths and namespaces, the quantiser's notes), doc strings, node names and
    the ``value_info`` of intermediate values (ONNX Runtime infers their shapes again). With
    ``rename``, every value and weight name but the graph's input and output becomes a short id.
    The operators, attributes and weights are untouched, so the outputs are the same.
    """
    onnx = require("onnx")
    path = Path(path)
    model = onnx.load(str(path))
    before = model.ByteSize()
    _compact_graph(model.graph)
    del model.metadata_props[:]
    model.doc_string = ""
    for function in model.functions:
        function.doc_string = ""
        del function.metadata_props[:]
        for node in function.node:
            _compact_node(node)
    if rename and not model.functions and not any(_subgraphs(node) for node in model.graph.node):
        _rename_values(model.graph)  # subgraphs and functions read names of the outer graph: left alone
    saved = before - model.ByteSize()
    atomic_write(path, lambda tmp: onnx.save(model, tmp))
    return saved


def _compact_graph(graph) -> None:
    del graph.value_info[:]
    del graph.metadata_props[:]
    graph.doc_string = ""
    for value in (*graph.input, *graph.output):
        value.doc_string = ""
        del value.metadata_props[:]
    for tensor in graph.initializer:
        tensor.doc_string = ""
        del tensor.metadata_props[:]
    for node in graph.node:
        _compact_node(node)
        for subgraph in _subgraphs(node):
            _compact_graph(subgraph)


def _compact_node(node) -> None:
    del node.metadata_props[:]
    node.doc_string = ""
    node.name = ""


def _subgraphs(node) -> list:
    found = []
    for attribute in node.attribute:
        if attribute.HasField("g"):
            found.append(attribute.g)
        found.extend(attribute.graphs)
    return found


def _rename_values(graph) -> None:
    """Give every value but the graph's inputs and outputs a short name (base-36 counter)."""
    kept = {value.name for value in (*graph.input, *graph.output)}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in kept:
            return name  # "" marks an omitted optional input
        if name not in names:
            number, digits = len(names), ""
            while True:
                number, rest = divmod(number, 36)
                digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
                if number == 0:
                    break
            names[name] = f"v{digits}"
        return names[name]

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for tensor in graph.sparse_initializer:
        tensor.values.name = short(tensor.values.name)
    for node in graph.node:
        node.input[:] = [short(name) for name in node.input]
        node.output[:] = [short(name) for name in node.output]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


class OnnxModel:
    """An ONNX file run by ONNX Runtime on the CPU, called like a PyTorch model.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: as many as torch uses, so comparisons are fair).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        ort = require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(
                f"ONNX file '{self.path}' does not exist; export it first with `glassnet compress RUN --export onnx`"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # idle pool threads must not spin: they would steal the CPU from whatever runs next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ConfigError(f"ONNX Runtime cannot load '{self.path}': {_first_line(exc)}") from exc
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        self.input_dtype = np.int64 if "int64" in meta.type else np.float32
        self.input_shape = tuple(meta.shape)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        array = inputs.detach().cpu().numpy().astype(self.input_dtype, copy=False)
        expected = self.input_shape[1:]
        if array.shape[1:] != tuple(expected) and all(isinstance(d, int) for d in expected):
            raise DataError(
                f"'{self.path.name}' takes inputs of shape (batch, {', '.join(map(str, expected))}). "
                f"Received: {tuple(array.shape)}"
            )
        return torch.from_numpy(self.session.run(None, {self.input_name: np.ascontiguousarray(array)})[0])

    def predict(self, inputs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Outputs for any number of inputs, in batches."""
        return torch.cat([self(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])


def verify_onnx(
    model: nn.Module, path: str | os.PathLike[str], inputs: torch.Tensor, exporter: str, tolerance: float = TOLERANCE
) -> ExportCheck:
    """Run the ONNX file in ONNX Runtime and the model in PyTorch on ``inputs``; compare outputs."""
    with torch.inference_mode():
        expected = model.cpu().eval()(inputs)
    actual = OnnxModel(path).predict(inputs)
    diff = float((actual - expected).abs().max()) if len(inputs) else 0.0
    return ExportCheck(max_abs_diff=diff, examples=len(inputs), tolerance=tolerance, exporter=exporter)
