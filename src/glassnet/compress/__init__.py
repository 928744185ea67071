"""Compression and export: pruning, int8 quantisation, distillation and ONNX, each variant measured
against the fp32 original (size, parameters, test metric, latency, throughput).

The names below load on first use, so that importing the package (for the command line's parser) does
not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glassnet.lazy import lazy_exports

if TYPE_CHECKING:
    from glassnet.compress.core import CompressResult, compress
    from glassnet.compress.distillation import DistillationStep, distill
    from glassnet.compress.export import ExportCheck, OnnxModel, compact_onnx, export_onnx, verify_onnx
    from glassnet.compress.pruning import channel_prune, magnitude_prune
    from glassnet.compress.quantization import dynamic_quantize, ort_quantize, static_quantize
    from glassnet.compress.recurrent import recurrent_prune
    from glassnet.compress.run import compress_run
    from glassnet.compress.storage import load_compressed, save_compressed

_HOMES = {
    **dict.fromkeys(("CompressResult", "compress"), "glassnet.compress.core"),
    **dict.fromkeys(("DistillationStep", "distill"), "glassnet.compress.distillation"),
    **dict.fromkeys(
        ("ExportCheck", "OnnxModel", "compact_onnx", "export_onnx", "verify_onnx"), "glassnet.compress.export"
    ),
    **dict.fromkeys(("channel_prune", "magnitude_prune"), "glassnet.compress.pruning"),
    **dict.fromkeys(("dynamic_quantize", "ort_quantize", "static_quantize"), "glassnet.compress.quantization"),
    "recurrent_prune": "glassnet.compress.recurrent",
    "compress_run": "glassnet.compress.run",
    **dict.fromkeys(("load_compressed", "save_compressed"), "glassnet.compress.storage"),
}

__all__ = [
    "CompressResult",
    "DistillationStep",
    "ExportCheck",
    "OnnxModel",
    "channel_prune",
    "compact_onnx",
    "compress",
    "compress_run",
    "distill",
    "dynamic_quantize",
    "export_onnx",
    "load_compressed",
    "magnitude_prune",
    "ort_quantize",
    "recurrent_prune",
    "save_compressed",
    "static_quantize",
    "verify_onnx",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
