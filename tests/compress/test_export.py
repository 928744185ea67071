"""ONNX export: one file, dynamic batch, equal to PyTorch within 1e-4; clear errors otherwise."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from glassnet.compress import OnnxModel, export_onnx, verify_onnx
from glassnet.compress.optional import require
from glassnet.data import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model


@pytest.fixture(scope="module")
def exported_cnn(digits_cnn, digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    exporter = export_onnx(digits_cnn, digits.train.tensors[0], path)
    return path, exporter


def test_onnx_outputs_equal_pytorch_within_1e_4(exported_cnn, digits_cnn, digits):
    path, exporter = exported_cnn
    assert exporter == "dynamo"
    check = verify_onnx(digits_cnn, path, digits.test.tensors[0], exporter)
    assert check.passed and check.max_abs_diff < 1e-4
    assert check.examples == len(digits.test)
    assert check.to_dict()["passed"] is True


def test_onnx_file_is_one_file_with_a_dynamic_batch(exported_cnn, digits_cnn, digits):
    path, _ = exported_cnn
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no external data, no temp files
    runner = OnnxModel(path)
    for n in (1, 7, 300):
        x = digits.test.tensors[0][:n] if n <= len(digits.test) else digits.test.tensors[0].repeat(2, 1, 1, 1)[:n]
        out = runner(x)
        assert out.shape == (n, 10)
        assert torch.allclose(out, digits_cnn(x), atol=1e-4)


def test_mlp_exports_too(cancer_mlp, cancer, tmp_path):
    exporter = export_onnx(cancer_mlp, cancer.train.tensors[0], tmp_path / "mlp.onnx")
    assert verify_onnx(cancer_mlp, tmp_path / "mlp.onnx", cancer.test.tensors[0], exporter).passed


@pytest.mark.parametrize("bidirectional", [False, True])
def test_text_recurrent_models_export_through_their_unpacked_twin(tmp_path, bidirectional):
    spec = DataSpec(modality="text", input_shape=(12,), task="classify", num_outputs=2, extra={"vocab_size": 50})
    model = create_model("lstm", spec, hidden=8, embedding_dim=8, layers=2, bidirectional=bidirectional).eval()
    x = torch.randint(1, 50, (24, 12))
    for i in range(len(x)):
        x[i, i % 12 + 1 :] = 0  # every length from 1 to 12, padding at the end
    exporter = export_onnx(model, x, tmp_path / "lstm.onnx")
    assert verify_onnx(model, tmp_path / "lstm.onnx", x, exporter).passed
    import onnx

    assert "LSTM" in {node.op_type for node in onnx.load(tmp_path / "lstm.onnx").graph.node}


def test_a_model_no_exporter_handles_gives_a_clear_error(tmp_path):
    class Untraceable(torch.nn.Module):
        def forward(self, x):
            if torch.compiler.is_compiling() or torch.jit.is_tracing():
                raise RuntimeError("this layer cannot be traced")  # stands in for an unsupported operator
            return x

    with pytest.raises(ConfigError, match="cannot be exported to ONNX \\(dynamo: .*; torchscript: .*cannot be traced"):
        export_onnx(Untraceable(), torch.ones(4, 3), tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_onnx_model_errors(tmp_path, exported_cnn):
    with pytest.raises(ConfigError, match="does not exist; export it first"):
        OnnxModel(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot load"):
        OnnxModel(tmp_path / "bad.onnx")
    with pytest.raises(DataError, match="takes inputs of shape \\(batch, 1, 8, 8\\)"):
        OnnxModel(exported_cnn[0])(torch.zeros(2, 1, 9, 9))


def test_integer_inputs_are_cast_to_the_model_dtype(exported_cnn, digits):
    x = digits.test.tensors[0][:3]
    runner = OnnxModel(exported_cnn[0])
    assert runner.input_dtype == np.float32
    assert torch.allclose(runner(x.double()), runner(x))


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an absent package looks like to import
    with pytest.raises(ConfigError, match=r"pip install 'glassnet\[compress\]'"):
        require("onnxruntime")
