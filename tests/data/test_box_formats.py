"""Detection formats: YOLO folders and COCO JSON, with their bad-input errors."""

import json

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.data.registry import load_named
from glassnet.errors import DataError


def _images(folder, n=10, size=(20, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full(size, 10 * i, np.uint8)).save(folder / f"im{i}.png")


def _yolo(root, n=10, classes=("cat", "dog")):
    _images(root / "images", n)
    (root / "labels").mkdir()
    for i in range(n):
        lines = ["0 0.5 0.5 0.2 0.4"] + (["1 0.25 0.25 0.1 0.1"] if i % 2 else [])
        (root / "labels" / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    if classes:
        (root / "classes.txt").write_text("\n".join(classes))
    return root


def test_a_yolo_folder_loads_boxes_as_shares_of_the_image(tmp_path):
    bundle = gn.load_dataset(str(_yolo(tmp_path / "shelves")))
    spec = bundle.spec
    assert spec.task == "detect" and spec.class_names == ("cat", "dog") and spec.extra["max_objects"] == 2
    assert spec.input_shape == (1, 20, 30) and bundle.info["format"] == "yolo" and bundle.info["boxes"] == 15
    rows = np.concatenate([bundle.split(s).tensors[1].numpy().reshape(-1, 5) for s in ("train", "val", "test")])
    np.testing.assert_allclose(rows[rows[:, 0] == 0][0], [0, 0.4, 0.3, 0.6, 0.7], atol=1e-6)
    assert (rows[:, 0] == -1).sum() == 5  # images with one box pad their second row


@pytest.mark.parametrize(
    "line,message",
    [("0 0.5 0.5 0.2", "class cx cy w h"), ("a 0.5 0.5 0.2 0.2", "class cx cy w h"),
     ("0 0.95 0.5 0.2 0.2", "outside"), ("5 0.5 0.5 0.2 0.2", "class id 5")],
)  # fmt: skip
def test_bad_yolo_lines_name_their_file_and_line(tmp_path, line, message):
    root = _yolo(tmp_path / "d")
    (root / "labels" / "im3.txt").write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(DataError, match=f"im3.txt line 2.*{message}|{message}.*"):
        load_named(str(root), {})


def test_a_yolo_image_without_its_label_file_is_named(tmp_path):
    root = _yolo(tmp_path / "d")
    (root / "labels" / "im4.txt").unlink()
    with pytest.raises(DataError, match="im4.png"):
        load_named(str(root), {})


def _coco(root, n=8, **changes):
    _images(root / "images", n)
    document = {
        "images": [{"id": 100 + i, "file_name": f"im{i}.png", "width": 30, "height": 20} for i in range(n)],
        "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "bike"}],
        "annotations": [
            {"id": i, "image_id": 100 + i, "category_id": 7 if i % 2 else 3, "bbox": [3, 2, 12, 10], "iscrowd": 0}
            for i in range(n)
        ]
        + [{"id": 99, "image_id": 100, "category_id": 7, "bbox": [0, 0, 30, 20], "iscrowd": 1}],
    }
    document.update(changes)
    (root / "instances.json").write_text(json.dumps(document))
    return root / "instances.json"


def test_a_coco_file_maps_category_ids_to_classes_and_skips_crowds(tmp_path):
    bundle = gn.load_dataset(str(_coco(tmp_path / "d")))
    assert bundle.spec.class_names == ("bike", "car")  # in the order of their ids (3, 7)
    assert bundle.spec.extra["max_objects"] == 1 and bundle.info["boxes"] == 8
    rows = np.concatenate([bundle.split(s).tensors[1].numpy().reshape(-1, 5) for s in ("train", "val", "test")])
    np.testing.assert_allclose(rows[0, 1:], [0.1, 0.1, 0.5, 0.6], atol=1e-6)
    assert set(rows[:, 0]) == {0.0, 1.0}
    assert gn.load_dataset(str(tmp_path / "d")).spec.class_names == ("bike", "car")  # the folder holding the file


@pytest.mark.parametrize(
    "change,message",
    [
        ({"annotations": [{"id": 5, "image_id": 100, "category_id": 9, "bbox": [1, 1, 2, 2]}]}, "category_id 9"),
        ({"annotations": [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2, 2]}]}, "image_id 1"),
        ({"annotations": [{"id": 5, "image_id": 100, "category_id": 7, "bbox": [25, 1, 10, 2]}]}, "5.*outside"),
        ({"images": [{"id": 100, "file_name": "gone.png", "width": 30, "height": 20}], "annotations": []}, "gone.png"),
        ({"images": [{"id": 100, "file_name": "im0.png", "width": 60, "height": 20}], "annotations": []}, "60x20"),
    ],
)  # fmt: skip
def test_bad_coco_files_name_the_annotation_or_image(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        load_named(str(_coco(tmp_path / "d", **change)), {})


def test_a_truncated_coco_file_is_refused_with_what_it_needs(tmp_path):
    path = _coco(tmp_path / "d")
    path.write_text(path.read_text()[:-40])
    with pytest.raises(DataError, match="COCO"):
        load_named(str(path), {"format": "coco"})
