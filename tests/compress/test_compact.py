"""``compact_onnx``: ONNX files without what inference does not read, and the same outputs."""

from __future__ import annotations

import shutil

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from glassnet.compress import OnnxModel, export_onnx
from glassnet.compress.export import INPUT_NAME, OUTPUT_NAME, compact_onnx


def _clutter(path) -> None:
    """Put back what the exporter and the quantiser write: metadata, doc strings, value_info, long names."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    for index, node in enumerate(model.graph.node):
        node.name = f"/features/block{index}/{node.op_type}_with_a_long_module_path_{index}"
        node.doc_string = "File 'model.py', line 12, in forward\n" * 4
        entry = node.metadata_props.add()
        entry.key, entry.value = "pkg.torch.onnx.stack_trace", "torch/nn/modules/module.py:1775 in _call_impl\n" * 5
    entry = model.graph.metadata_props.add()
    entry.key, entry.value = "pkg.torch.export.graph_signature", "x" * 500
    model.doc_string = "exported by a test"
    onnx.save(model, path)


def _structure(model: onnx.ModelProto) -> list[tuple[str, tuple[str, ...]]]:
    return [(node.op_type, tuple(str(a) for a in node.attribute)) for node in model.graph.node]


@pytest.fixture(scope="module")
def cluttered(digits_cnn, digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("compact") / "model.onnx"
    export_onnx(digits_cnn, digits.train.tensors[0], path)
    _clutter(path)
    return path


def test_compaction_drops_metadata_value_info_and_long_names(cluttered, tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(cluttered, path)
    before = onnx.load(path)
    assert len(before.graph.value_info) > 0 and any(node.metadata_props for node in before.graph.node)
    saved = compact_onnx(path)
    after = onnx.load(path)
    assert saved == cluttered.stat().st_size - path.stat().st_size > 2_000
    assert not after.graph.value_info and not after.graph.metadata_props and not after.metadata_props
    assert not after.doc_string and not any(n.metadata_props or n.doc_string or n.name for n in after.graph.node)
    names = [t.name for t in after.graph.initializer] + [o for n in after.graph.node for o in n.output]
    assert max(len(n) for n in names if n != OUTPUT_NAME) <= 4  # short ids
    assert [v.name for v in after.graph.input] == [INPUT_NAME] and [v.name for v in after.graph.output] == [OUTPUT_NAME]
    # the computation is untouched: same operators, attributes and weights
    assert _structure(after) == _structure(before)
    assert sorted(onnx.numpy_helper.to_array(t).tobytes() for t in after.graph.initializer) == sorted(
        onnx.numpy_helper.to_array(t).tobytes() for t in before.graph.initializer
    )
    onnx.checker.check_model(str(path))


def test_compacted_model_gives_exactly_the_same_outputs(cluttered, tmp_path, digits):
    path = tmp_path / "model.onnx"
    shutil.copy(cluttered, path)
    x = digits.test.tensors[0]
    expected = OnnxModel(cluttered).predict(x)
    compact_onnx(path)
    assert torch.equal(OnnxModel(path).predict(x), expected)


def test_quantised_files_are_compacted_and_unchanged_by_it(digits_cnn, digits, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    export_onnx(digits_cnn, digits.train.tensors[0], tmp_path / "model.onnx")
    raw = tmp_path / "raw.int8.onnx"
    quantize_dynamic(str(tmp_path / "model.onnx"), str(raw), weight_type=QuantType.QInt8)
    compacted = tmp_path / "compact.int8.onnx"
    shutil.copy(raw, compacted)
    compact_onnx(compacted)
    assert compacted.stat().st_size < raw.stat().st_size
    x = digits.test.tensors[0]
    assert torch.equal(OnnxModel(compacted).predict(x), OnnxModel(raw).predict(x))


def test_exported_and_quantised_files_come_out_compact(digits_cnn, digits, tmp_path):
    from glassnet.compress import ort_quantize

    export_onnx(digits_cnn, digits.train.tensors[0], tmp_path / "model.onnx")
    ort_quantize(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", digits.train.tensors[0])
    for name in ("model.onnx", "model.int8.onnx"):
        model = onnx.load(tmp_path / name)
        assert not model.graph.value_info and not model.metadata_props, name
        assert not any(n.metadata_props or n.doc_string for n in model.graph.node), name
        assert compact_onnx(tmp_path / name) == 0, name  # nothing left to drop


def test_graphs_with_subgraphs_keep_their_names_but_lose_their_metadata(tmp_path):
    """An If node's branches read values of the outer graph by name, so names stay as they are."""
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["x_value", "outer_weight"], ["then_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Sub", ["x_value", "outer_weight"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("Identity", [INPUT_NAME], ["x_value"], name="identity_node", doc_string="doc"),
        helper.make_node("ReduceSum", [INPUT_NAME], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], [OUTPUT_NAME], then_branch=then_branch, else_branch=else_branch),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [2])],
        initializer=[
            helper.make_tensor("outer_weight", TensorProto.FLOAT, [2], [1.0, 2.0]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "if.onnx"
    onnx.save(model, path)
    compact_onnx(path)
    after = onnx.load(path)
    assert [t.name for t in after.graph.initializer] == ["outer_weight", "zero"]
    assert not after.graph.node[0].name and not after.graph.node[0].doc_string
    runner = OnnxModel(path)
    assert runner(torch.tensor([1.0, 1.0])).tolist() == [2.0, 3.0]
    assert runner(torch.tensor([-1.0, -1.0])).tolist() == [-2.0, -3.0]
