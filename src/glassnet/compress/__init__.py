"""Compression and export: pruning, int8 quantisation, distillation and ONNX, each variant measured
against the fp32 original (size, parameters, test metric, latency, throughput)."""

from glassnet.compress.core import CompressResult, compress
from glassnet.compress.distillation import DistillationStep, distill
from glassnet.compress.export import ExportCheck, OnnxModel, compact_onnx, export_onnx, verify_onnx
from glassnet.compress.pruning import channel_prune, magnitude_prune
from glassnet.compress.quantization import dynamic_quantize, ort_quantize, static_quantize
from glassnet.compress.recurrent import recurrent_prune
from glassnet.compress.run import compress_run
from glassnet.compress.storage import load_compressed, save_compressed

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
