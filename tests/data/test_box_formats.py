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


# ---------------------------------------------------------------------------------------------
# COCO masks (data.target=masks): polygons and run-length encoding


def _masked_coco(root, n=8):
    """Images 20 x 30 (h x w); each holds a bike polygon (rows 2-11, columns 3-14) and, on even images, a car given
    as uncompressed RLE (rows 5-9 of columns 10-11); image 100 has a crowd region as compressed RLE."""
    from pycocotools import mask as coco_mask

    car = np.zeros((20, 30), dtype=np.uint8)
    car[5:10, 10:12] = 1
    runs = []
    flat, current, length = car.T.reshape(-1), 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    crowd = np.zeros((20, 30), dtype=np.uint8, order="F")
    crowd[15:20, 0:30] = 1
    compressed = coco_mask.encode(np.asfortranarray(crowd))
    annotations = []
    for i in range(n):
        polygon = [3, 2, 15, 2, 15, 12, 3, 12]  # a rectangle's corners
        annotations.append({"id": i, "image_id": 100 + i, "category_id": 3, "bbox": [3, 2, 12, 10],
                            "segmentation": [polygon], "iscrowd": 0})  # fmt: skip
        if i % 2 == 0:
            annotations.append({"id": 50 + i, "image_id": 100 + i, "category_id": 7, "bbox": [10, 5, 2, 5],
                                "segmentation": {"size": [20, 30], "counts": runs}, "iscrowd": 0})  # fmt: skip
    annotations.append({"id": 99, "image_id": 100, "category_id": 7, "bbox": [0, 15, 30, 5], "iscrowd": 1,
                        "segmentation": {"size": [20, 30], "counts": compressed["counts"].decode()}})  # fmt: skip
    return _coco(root, n=n, annotations=annotations), car, crowd.astype(bool)


def test_coco_masks_paint_polygons_and_run_lengths_smaller_objects_on_top(tmp_path):
    from glassnet.data.annotated import IGNORE_INDEX

    path, car, crowd = _masked_coco(tmp_path / "d")
    bundle = gn.load_dataset(str(path), target="masks", val_fraction=0.25, test_fraction=0.25)
    assert bundle.spec.task == "segment" and bundle.spec.class_names == ("background", "bike", "car")
    assert bundle.info["format"] == "coco"
    masks = {}
    for split in ("train", "val", "test"):
        x, y = bundle.split(split).tensors
        for image, mask in zip(x, y):
            masks[round(float(image.max()) * 255 / 10)] = mask.numpy()  # image i is filled with 10 * i
    first = masks[0]
    bike = np.zeros((20, 30), dtype=bool)
    bike[2:13, 3:16] = True  # PIL fills the polygon's edges too
    assert (first[car.astype(bool)] == 2).all()  # the smaller car painted over the bike
    assert (first[bike & ~car.astype(bool) & ~crowd] == 1).all()
    assert (first[crowd] == IGNORE_INDEX).all() and (first[~bike & ~crowd] == 0).all()
    assert (masks[1][car.astype(bool)] == 1).all()  # odd images have no car


def test_compressed_run_lengths_decode_as_pycocotools_does():
    from pycocotools import mask as coco_mask

    from glassnet.data.annotated import coco_segmentation

    rng = np.random.default_rng(0)
    for shape in ((7, 5), (40, 33)):
        pixels = np.asfortranarray(rng.random(shape) > 0.6)
        encoded = coco_mask.encode(pixels.astype(np.uint8))
        rle = {"size": list(shape), "counts": encoded["counts"].decode()}
        np.testing.assert_array_equal(coco_segmentation(rle, shape), pixels)


@pytest.mark.parametrize(
    "segmentation,message",
    [
        (None, "has no segmentation.*data.target=boxes"),
        ([[1, 1, 5, 1]], "at least 3 points"),
        ([[1, 1, 5, 1, 5]], "at least 3 points"),
        ({"size": [10, 30], "counts": [600]}, r"\[10, 30\].*\[20, 30\]"),
        ({"size": [20, 30], "counts": [500, 20]}, "add up to 520"),
        ({"size": [20, 30], "counts": "0!"}, "holds"),
    ],
)  # fmt: skip
def test_bad_coco_segmentations_name_their_annotation(tmp_path, segmentation, message):
    annotation = {"id": 41, "image_id": 100, "category_id": 7, "bbox": [1, 1, 2, 2], "iscrowd": 0}
    if segmentation is not None:
        annotation["segmentation"] = segmentation
    path = _coco(tmp_path / "d", annotations=[annotation])
    with pytest.raises(DataError, match=f"annotation 41.*{message}"):
        load_named(str(path), {"target": "masks"})
    from glassnet.errors import ConfigError

    with pytest.raises(ConfigError, match="target must be"):
        load_named(str(path), {"target": "polygons"})


def test_a_unet_trains_on_coco_masks_from_the_command_line(tmp_path, capsys):
    from glassnet.cli import main

    path, _, _ = _masked_coco(tmp_path / "d", n=12)
    out = tmp_path / "run"
    args = ["train", "--data", str(path), "--model", "unet", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main([*args, "data.target=masks", "model.channels=[4,8]"]) == 0
    assert "miou" in capsys.readouterr().out


def test_coco_instances_give_each_annotation_its_own_id_and_an_instance_model_trains_on_them(tmp_path, capsys):
    from glassnet.cli import main
    from glassnet.data.annotated import IGNORE_INDEX

    path, car, crowd = _masked_coco(tmp_path / "d", n=12)
    bundle = gn.load_dataset(str(path), target="instances", val_fraction=0.25, test_fraction=0.25)
    assert bundle.spec.task == "instances" and bundle.spec.class_names == ("background", "bike", "car")
    x, y = bundle.train.tensors
    first = next(k for k, image in enumerate(x) if round(float(image.max()) * 255 / 10) % 2 == 0)  # holds a car
    semantic, ids = y[first].numpy()
    assert y.shape[1:] == (2, 20, 30)
    car_ids, bike_ids = set(np.unique(ids[car.astype(bool)])), set(np.unique(ids[(semantic == 1)]))
    assert len(car_ids) == 1 and len(bike_ids) == 1 and car_ids != bike_ids and 0 not in car_ids | bike_ids
    if (semantic == IGNORE_INDEX).any():  # the crowd region (image 0 only) is unlabelled in both maps
        assert (ids[semantic == IGNORE_INDEX] == IGNORE_INDEX).all()
    assert (ids[semantic == 0] == 0).all()
    out = tmp_path / "run"
    args = ["train", "--data", str(path), "--model", "instance_unet", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main([*args, "data.target=instances", "model.channels=[4,8]"]) == 0
    assert "map_50" in capsys.readouterr().out
