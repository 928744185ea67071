"""Composed segmentation scenes: masks follow the pasted items, and splits never share items."""

import numpy as np
import pytest

import glassnet as gn
from glassnet.data.scenes import Layout, _scene_bundle, compose_scenes
from glassnet.errors import ConfigError

LAYOUT = Layout(canvas=24, items=(1, 3), sizes=(6, 10), clutter=0, fragment=(2, 3))


def _items(n=30, value=1.0, seed=0):
    """Square items: a bright disc (the silhouette) on a dark square."""
    yy, xx = np.mgrid[:8, :8]
    disc = ((yy - 3.5) ** 2 + (xx - 3.5) ** 2 <= 9).astype(np.float32) * value
    return np.repeat(disc[None], n, axis=0), np.arange(n) % 3


def test_masks_hold_class_plus_one_on_visible_silhouettes_and_background_elsewhere():
    items, labels = _items()
    images, masks, placed, instances = compose_scenes(items, labels, 20, LAYOUT, seed=1)
    assert images.shape == (20, 1, 24, 24) and masks.shape == (20, 24, 24)
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert ((instances > 0) == (masks > 0)).all()
    for image, mask, scene in zip(images, masks, placed):
        assert 1 <= len(scene) <= 3
        inside = np.zeros((24, 24), bool)
        for _, top, left, h, w in scene:
            inside[top : top + h, left : left + w] = True
        assert (mask[~inside] == 0).all()  # nothing labelled outside the pasted items
        assert set(np.unique(mask)) <= {0} | {int(labels[i]) + 1 for i, *_ in scene}
        # labelled pixels are item pixels: brighter than the silhouette's cut (edges are blurred by resizing)
        assert image[0][mask > 0].min() > 0.1 - 0.08 and np.median(image[0][mask > 0]) > 0.8
        last = scene[-1]  # the last item is never covered
        assert (mask[last[1] : last[1] + last[3], last[2] : last[2] + last[4]] == labels[last[0]] + 1).any()


def test_composition_is_seeded():
    items, labels = _items()
    a = compose_scenes(items, labels, 5, LAYOUT, seed=3)
    b = compose_scenes(items, labels, 5, LAYOUT, seed=3)
    c = compose_scenes(items, labels, 5, LAYOUT, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[1], c[1])


def test_each_split_is_composed_from_its_own_items_only():
    """Items of each split have their own brightness: the labelled pixels of a split's scenes show only it."""
    splits = {name: _items(value=v) for name, v in (("train", 0.3), ("val", 0.6), ("test", 0.95))}
    layout = Layout(canvas=24, items=(1, 3), sizes=(6, 10), clutter=2, fragment=(2, 3))
    bundle = _scene_bundle("t", splits, {"train": 30, "val": 10, "test": 10}, layout, ("a", "b", "c"), 0, {})
    for split, value in (("train", 0.3), ("val", 0.6), ("test", 0.95)):
        x, y = bundle.split(split).tensors
        pixels = x[:, 0][y > 0].numpy()
        assert abs(np.median(pixels) - value) < 0.03, split
        # clutter is cut from the same split's items, dimmed: never brighter than its items
        assert x.max() <= value + 0.1
    assert bundle.spec.task == "segment" and bundle.spec.class_names == ("background", "a", "b", "c")
    assert bundle.spec.num_outputs == 4


def test_digits_scenes_is_a_segmentation_dataset_with_pixel_counts():
    bundle = gn.load_dataset("digits-scenes", train_scenes=60, val_scenes=10, test_scenes=10)
    spec = bundle.spec
    assert spec.modality == "image" and spec.task == "segment" and spec.input_shape == (1, 32, 32)
    assert spec.num_outputs == 11 and spec.class_names[0] == "background"
    x, y = bundle.train.tensors
    assert x.shape == (60, 1, 32, 32) and y.shape == (60, 32, 32) and y.dtype.is_floating_point is False
    summary = bundle.summary()
    assert sum(summary["splits"]["train"]["pixel_counts"]) == 60 * 32 * 32
    assert summary["layout"]["canvas"] == 32


@pytest.mark.parametrize("option", [{"train_scenes": 0}, {"val_scenes": -1}, {"test_scenes": 2.5}])
def test_bad_scene_counts_are_refused(option):
    with pytest.raises(ConfigError, match="scenes"):
        gn.load_dataset("digits-scenes", **option)


def test_the_canvas_option_scales_scenes_and_items():
    bundle = gn.load_dataset("digits-scenes", train_scenes=4, val_scenes=1, test_scenes=1, canvas=64)
    assert bundle.spec.input_shape == (1, 64, 64)
    assert bundle.summary()["layout"]["item_sizes"] == [20, 32]  # 10-16 pixels on 32, doubled
    with pytest.raises(ConfigError, match="canvas"):
        gn.load_dataset("digits-scenes", canvas=4)


def test_fashion_scenes_and_boxes_are_composed_from_the_real_articles():
    import os
    from pathlib import Path

    data = os.environ.get("GLASSNET_DATA")
    if not data or not (Path(data) / "fashion-mnist").is_dir():
        pytest.skip("needs the real Fashion-MNIST files: set GLASSNET_DATA to ../shared/data")
    counts = {"train_scenes": 20, "val_scenes": 5, "test_scenes": 5, "download": False}
    masks = gn.load_dataset("fashion-scenes", **counts)
    boxes = gn.load_dataset("fashion-detection", **counts)
    assert masks.spec.input_shape == (1, 64, 64) and masks.spec.class_names[1] == "T-shirt/top"
    assert boxes.spec.num_outputs == 10 and boxes.spec.class_names[-1] == "Ankle boot"
    np.testing.assert_array_equal(masks.test.tensors[0].numpy(), boxes.test.tensors[0].numpy())
    assert masks.info["files"].endswith("fashion-mnist")
