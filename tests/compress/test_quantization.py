"""Int8 quantisation: PyTorch dynamic and static, ONNX Runtime static (QDQ) and dynamic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from glassnet.compress import dynamic_quantize, export_onnx, ort_quantize, static_quantize
from glassnet.compress.export import OnnxModel
from glassnet.compress.quantization import resolve_methods
from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import create_model


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())


def test_resolve_methods_expands_int8_and_checks_names():
    assert resolve_methods(None) == []
    assert resolve_methods("int8") == ["torch-dynamic", "torch-static", "ort-static"]
    assert resolve_methods(["ort-dynamic", "int8", "ort-static"]) == [
        "ort-dynamic",
        "torch-dynamic",
        "torch-static",
        "ort-static",
    ]
    with pytest.raises(ConfigError, match="Received: quantize='int4'"):
        resolve_methods("int4")


def test_dynamic_quantisation_swaps_linear_layers_and_keeps_predictions(cancer_mlp, cancer):
    x = cancer.test.tensors[0]
    quantized = dynamic_quantize(cancer_mlp)
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    assert any(type(m) is nn.Linear for m in cancer_mlp.modules())  # the original is untouched
    assert _agreement(quantized(x), cancer_mlp(x)) >= 0.97


def test_dynamic_quantisation_covers_lstm_layers():
    spec = DataSpec(modality="sequence", input_shape=(10, 3), task="classify", num_outputs=2)
    model = create_model("lstm", spec, hidden=16).eval()
    quantized = dynamic_quantize(model)
    assert "quantized" in type(quantized.rnn).__module__
    x = torch.randn(8, 10, 3)
    assert torch.allclose(quantized(x), model(x), atol=0.05)


def test_static_quantisation_of_a_cnn_is_calibrated_and_accurate(digits_cnn, digits):
    x = digits.test.tensors[0]
    quantized = static_quantize(digits_cnn, digits.train.tensors[0])
    assert _agreement(quantized(x), digits_cnn(x)) >= 0.95


def test_static_quantisation_refuses_models_without_convolutions(cancer_mlp, cancer):
    with pytest.raises(ConfigError, match="no convolution"):
        static_quantize(cancer_mlp, cancer.train.tensors[0])


@pytest.mark.parametrize("method", ["ort-static", "ort-dynamic"])
def test_onnx_runtime_quantisation_is_smaller_and_agrees(digits_cnn, digits, tmp_path, method):
    x = digits.test.tensors[0]
    export_onnx(digits_cnn, x, tmp_path / "model.onnx")
    ort_quantize(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", digits.train.tensors[0], method=method)
    assert (tmp_path / "model.int8.onnx").stat().st_size < (tmp_path / "model.onnx").stat().st_size
    # the weight matrices themselves are stored as int8 (small models keep a fixed overhead of graph and scales)
    graph = onnx.load(tmp_path / "model.int8.onnx").graph
    big = [t for t in graph.initializer if np.prod(t.dims) >= 64]
    assert big and all(t.data_type == onnx.TensorProto.INT8 for t in big)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]  # no leftovers
    assert _agreement(OnnxModel(tmp_path / "model.int8.onnx").predict(x), digits_cnn(x)) >= 0.95


def test_static_onnx_quantisation_needs_calibration_data(digits_cnn, digits, tmp_path):
    export_onnx(digits_cnn, digits.test.tensors[0], tmp_path / "model.onnx")
    with pytest.raises(ConfigError, match="calibration"):
        ort_quantize(tmp_path / "model.onnx", tmp_path / "q.onnx", None, method="ort-static")
    assert not (tmp_path / "q.onnx").exists()


def test_calibration_draws_from_the_whole_split_not_its_first_rows():
    """A split stored grouped by class (the text loaders do) must not calibrate on one class."""
    from glassnet.compress.quantization import CALIBRATION_EXAMPLES, calibration_sample

    inputs = torch.arange(4000.0)[:, None]  # row i "belongs to class" i // 1000
    sample = calibration_sample(inputs)
    assert len(sample) == CALIBRATION_EXAMPLES == len(torch.unique(sample))
    assert torch.bincount((sample[:, 0] // 1000).long()).min() > 80  # every quarter is represented
    assert torch.equal(sample, calibration_sample(inputs))  # seeded: the same draw every time
    assert torch.equal(calibration_sample(inputs[:100]), inputs[:100])


def test_onnx_runtime_quantisation_leaves_the_working_directory_as_it_was(tmp_path, monkeypatch):
    """Bug: where ONNX Runtime's symbolic shape inference gave up (a diffusion U-Net's attention), it saved
    sym_shape_infer_temp.onnx and a <uuid>.data file into the user's working directory."""
    from glassnet.compress.generator import Denoising

    spec = DataSpec(modality="image", input_shape=(1, 8, 8), task="generate", num_outputs=1,
                    class_names=["a", "b", "c"], name="tiny")  # fmt: skip
    torch.manual_seed(0)
    net = Denoising(create_model("ddpm", spec, width=8, timesteps=40, sample_steps=8).net_ema).eval()
    rows = torch.cat([torch.randn(16, 64), torch.randint(0, 40, (16, 1)).float(), torch.ones(16, 1)], dim=1)
    export_onnx(net, rows[:8], tmp_path / "denoiser.onnx")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ort_quantize(tmp_path / "denoiser.onnx", tmp_path / "denoiser.int8.onnx", rows)
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["denoiser.int8.onnx", "denoiser.onnx", "work"]
    assert OnnxModel(tmp_path / "denoiser.int8.onnx")(rows[:4]).shape == (4, 64)
