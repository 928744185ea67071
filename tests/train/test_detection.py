"""The ``detect`` task: CenterNet's targets and decoding, COCO mAP, and runs end to end."""

import json

import pytest
import torch

import glassnet as gn
from glassnet.cli import main
from glassnet.errors import DataError
from glassnet.train.detection import Detection, coco_metrics, decode, encode

TARGETS = torch.tensor(
    [
        [[1, 0.10, 0.20, 0.40, 0.60], [0, 0.50, 0.50, 0.90, 0.80], [-1, 0, 0, 0, 0]],
        [[2, 0.25, 0.25, 0.75, 0.75], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]],
    ]
)


def _perfect_outputs(targets, classes=3, h=16, w=16):
    """Logits whose decoding is exactly ``targets``: a sure peak at each centre, true sizes and offsets."""
    heat, cells, size, offset, valid = encode(targets, classes, h, w)
    outputs = torch.full((len(targets), classes + 4, h, w), -20.0)
    for n in range(len(targets)):
        for m in range(targets.shape[1]):
            if valid[n, m]:
                y, x, c = int(cells[n, m]) // w, int(cells[n, m]) % w, int(targets[n, m, 0])
                outputs[n, c, y, x] = 20.0
                outputs[n, classes:, y, x] = torch.cat([size[n, m], offset[n, m]])
    return outputs


def test_heatmaps_peak_at_one_on_each_centre_cell_of_its_class():
    heat, cells, size, offset, valid = encode(TARGETS, 3, 16, 16)
    assert heat.shape == (2, 3, 16, 16) and valid.tolist() == [[1, 1, 0], [1, 0, 0]]
    assert int(cells[0, 0]) == 6 * 16 + 4  # centre (0.25, 0.40) of 16 cells: column 4, row 6
    assert heat[0, 1].flatten()[cells[0, 0]] == 1 and int((heat == 1).sum()) == 3
    assert heat[0, 2].max() == 0  # no box of class 2 in the first image
    assert ((offset >= 0) & (offset < 1)).all()
    torch.testing.assert_close(size[0, 0].exp(), torch.tensor([0.3, 0.4]))


def test_decoding_perfect_outputs_gives_the_boxes_back_and_map_one():
    found = decode(_perfect_outputs(TARGETS), 3)
    assert found.shape == (2, 20, 6)
    best = found[0, :2]
    torch.testing.assert_close(best[best[:, 5].argsort()][:, :4], TARGETS[0, :2, 1:][[1, 0]], atol=1e-5, rtol=0)
    scores = coco_metrics(found, TARGETS, 3)
    assert scores["map"] == pytest.approx(1.0) and scores["map_50"] == pytest.approx(1.0)
    assert scores["per_class"] == [pytest.approx(1.0)] * 3


def test_a_flat_topped_peak_is_one_detection_not_two():
    """Neighbouring cells of one class with equal logits (as 8-bit outputs often have) used to give two boxes."""
    outputs = _perfect_outputs(TARGETS)
    peak = (outputs[1, 2] == 20.0).nonzero()[0]
    outputs[1, 2, peak[0], peak[1] + 1] = 20.0  # the right neighbour ties with the centre
    outputs[1, 3:, peak[0], peak[1] + 1] = outputs[1, 3:, peak[0], peak[1]]
    outputs[1, 0, peak[0], peak[1] + 1] = 20.0  # another class at the same cell stays a detection of its own
    found = decode(outputs, 3)
    assert (found[1, :, 4] > 0.5).sum() == 2 and sorted(found[1, found[1, :, 4] > 0.5, 5].tolist()) == [0, 2]
    assert coco_metrics(found, TARGETS, 3)["per_class"][2] == pytest.approx(1.0)


def test_map_falls_as_boxes_drift_and_is_zero_without_detections():
    found = decode(_perfect_outputs(TARGETS), 3)
    shifted = found.clone()
    shifted[..., [0, 2]] += 0.08  # IoU with the truth falls below 0.75 but stays above 0.5
    scores = coco_metrics(shifted, TARGETS, 3)
    assert scores["map_50"] == pytest.approx(1.0) and scores["map_75"] < 0.5 and scores["map"] < 0.7
    none = torch.zeros_like(found)
    assert coco_metrics(none, TARGETS, 3)["map"] == 0.0
    assert coco_metrics(found, TARGETS, 4)["per_class"][3] is None  # a class without test boxes


def test_the_loss_is_low_for_perfect_outputs_and_checks_shapes():
    task = Detection()
    assert float(task.loss(_perfect_outputs(TARGETS), TARGETS)) < 0.05
    assert float(task.loss(torch.zeros(2, 7, 16, 16), TARGETS)) > 1
    with pytest.raises(DataError, match="N x M x 5"):
        task.loss(torch.zeros(2, 7, 16, 16), torch.zeros(2, 3, 4))
    with pytest.raises(DataError, match="0..2"):
        task.loss(torch.zeros(1, 7, 16, 16), torch.tensor([[[5, 0.1, 0.1, 0.2, 0.2]]]))


def test_detection_scenes_box_the_visible_part_of_every_item():
    boxes = gn.load_dataset("digits-detection", train_scenes=50, val_scenes=5, test_scenes=5)
    masks = gn.load_dataset("digits-scenes", train_scenes=50, val_scenes=5, test_scenes=5)
    assert boxes.spec.task == "detect" and boxes.spec.num_outputs == 10 and boxes.spec.extra["max_objects"] == 3
    x, y = boxes.train.tensors
    torch.testing.assert_close(x, masks.train.tensors[0])  # the same scenes
    _, mask = masks.train.tensors
    for rows, m in zip(y, mask):
        rows = rows[rows[:, 0] >= 0]
        assert 1 <= len(rows) <= 3
        for cls, x1, y1, x2, y2 in rows.tolist():
            inside = m[round(y1 * 32) : round(y2 * 32), round(x1 * 32) : round(x2 * 32)]
            assert (inside == cls + 1).sum() >= 12  # the class is visible inside its box
        labelled = torch.nonzero(m > 0)
        covered = torch.zeros_like(m, dtype=torch.bool)
        for _, x1, y1, x2, y2 in rows.tolist():
            covered[round(y1 * 32) : round(y2 * 32), round(x1 * 32) : round(x2 * 32)] = True
        assert covered[labelled[:, 0], labelled[:, 1]].float().mean() > 0.95  # only hidden slivers fall outside


@pytest.fixture(scope="module")
def det_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "centernet"
    args = ["train", "--data", "digits-detection", "--model", "centernet", "--epochs", "2", "--out", str(out)]
    small = ["data.train_scenes=120", "data.val_scenes=20", "data.test_scenes=20", "model.channels=[8,16,32]"]
    assert main([*args, *small, "--quiet"]) == 0
    return out


def test_a_detection_run_writes_map_per_class_ap_baseline_and_boxes(det_run):
    result = json.loads((det_run / "results" / "train.json").read_text())
    assert result["task"] == "detect" and {"loss", "map", "map_50", "map_75"} <= set(result["test"])
    assert set(result["test"]["per_class_ap"]) == set(map(str, range(10)))
    assert result["baseline"]["name"] == "otsu_components" and result["baseline"]["comparison"]["metric"] == "map_50"
    assert (det_run / "figures" / "detections.png").is_file() and (det_run / "figures" / "detection_pr.png").is_file()
    html = gn.report(det_run).read_text()
    assert "<h2>Detection</h2>" in html and "Average precision per class" in html


def test_predict_lists_boxes_in_pixels_with_class_and_score(det_run, capsys):
    records = gn.predict(det_run, data="digits-detection", limit=2)
    assert len(records) == 2 and isinstance(records[0]["prediction"], list)
    for box in records[0]["true"]:
        assert set(box) == {"class", "box"} and all(0 <= v <= 32 for v in box["box"])
    for box in records[0]["prediction"]:
        assert box["score"] >= 0.3 and len(box["box"]) == 4
    assert main(["evaluate", str(det_run)]) == 0
    assert "map_50" in capsys.readouterr().out


@pytest.mark.slow
def test_centernet_finds_digits_in_scenes_far_beyond_the_classical_baseline(tmp_path):
    """1,000 training scenes, 8 epochs (~15 s here): test mAP@.5 >= 0.8 where Otsu + components reach ~0.57."""
    out = tmp_path / "centernet"
    args = ["train", "--data", "digits-detection", "--model", "centernet", "--epochs", "8", "--out", str(out)]
    assert main([*args, "data.train_scenes=1000", "lr=3e-3", "--quiet"]) == 0
    result = json.loads((out / "results" / "train.json").read_text())
    assert result["test"]["map_50"] >= 0.8 and result["test"]["map"] >= 0.5
    assert result["baseline"]["comparison"]["verdict"] == "beats"


def test_dense_runs_keep_the_epoch_with_the_best_task_score_unless_told_otherwise(det_run, tmp_path):
    """The heatmap loss on validation can rise while mAP improves: detection keeps the best val/map."""
    config = (det_run / "config.yaml").read_text()
    assert "monitor: val/map" in config
    out = tmp_path / "by-loss"
    args = ["train", "--data", "digits-detection", "--model", "centernet", "--epochs", "1", "--out", str(out)]
    small = ["data.train_scenes=40", "data.val_scenes=10", "data.test_scenes=10", "model.channels=[8,16]"]
    assert main([*args, *small, "monitor=val/map_50", "--quiet"]) == 0  # a metric the run names is kept
    assert "monitor: val/map_50" in (out / "config.yaml").read_text()


def test_int8_keeps_the_joined_heads_in_float_and_the_boxes_with_them(det_run):
    """One 8-bit scale for heatmap logits and box offsets blurred the boxes (mAP@.75 fell from 0.85 to 0.36
    on fashion-detection); the output join now stays in float in torch and in ONNX Runtime."""
    assert main(["compress", str(det_run), "--quantize", "int8", "--export", "onnx", "--quiet"]) == 0
    result = json.loads((det_run / "results" / "compress.json").read_text())
    variants = {v["name"]: v for v in result["variants"]}
    assert result["metric"] == "map"
    for name in ("int8-torch-static", "int8-ort-static"):
        assert abs(variants[name]["metrics"]["map"] - variants["fp32"]["metrics"]["map"]) < 0.05, name
    int8, fp32 = (det_run / "compressed" / f for f in ("model.int8.onnx", "model.onnx"))
    assert int8.stat().st_size < fp32.stat().st_size / 2  # the rest was quantised


def test_output_joins_names_unnamed_nodes_and_finds_only_the_output_concat(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from glassnet.compress.quantization import output_joins

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 6])
    nodes = [
        helper.make_node("Concat", ["x", "x"], ["inner"], axis=1),
        helper.make_node("Concat", ["inner", "x"], ["out"], axis=1),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [out])), str(path))
    names = output_joins(path)
    saved = onnx.load(str(path)).graph.node
    assert all(n.name for n in saved) and names == [saved[1].name]


def test_the_sliding_window_baseline_finds_and_names_simple_shapes():
    """White squares (class 0) and hollow squares (class 1) on black: the windows find and tell them apart."""
    import numpy as np

    from glassnet.train.detection import SlidingWindow, _suppress, coco_metrics

    rng = np.random.default_rng(0)
    images, targets = torch.zeros(80, 1, 24, 24), torch.full((80, 1, 5), -1.0)
    for i in range(80):
        y0, x0, kind = *rng.integers(0, 16, size=2), i % 2
        images[i, 0, y0 : y0 + 8, x0 : x0 + 8] = 1.0
        if kind:
            images[i, 0, y0 + 2 : y0 + 6, x0 + 2 : x0 + 6] = 0.0
        targets[i, 0] = torch.tensor([kind, x0 / 24, y0 / 24, (x0 + 8) / 24, (y0 + 8) / 24])
    detector = SlidingWindow(classes=2).fit(images[:60], targets[:60])
    assert detector.sizes == [pytest.approx(8 / 24, abs=1e-3)] and detector.aspect == pytest.approx(1.0)
    scores = coco_metrics(detector.predict(images[60:]), targets[60:], 2)
    assert scores["map_50"] >= 0.8, scores  # measured 1.0
    # suppression keeps the best of overlapping boxes and every box apart from them
    boxes = np.array([[0, 0, 0.5, 0.5], [0.05, 0, 0.55, 0.5], [0.6, 0.6, 1, 1]])
    assert _suppress(boxes, np.array([0.5, 0.9, 0.2]), 0.3) == [1, 2]
