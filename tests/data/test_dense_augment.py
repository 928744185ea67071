"""Augmentation of segmentation and detection batches: masks and boxes move with their images."""

import pytest
import torch

import glassnet as gn
from glassnet.data.augment import build_augmentation, dense_geometry
from glassnet.errors import ConfigError


def _scene():
    image = torch.zeros(1, 1, 8, 10)
    image[0, 0, 1:4, 2:5] = 1.0  # a bright square: rows 1-3, columns 2-4
    mask = (image[:, 0] > 0).long() * 2
    boxes = torch.tensor([[[1, 0.2, 0.125, 0.5, 0.5], [-1, 0, 0, 0, 0]]])
    return image, mask, boxes


@pytest.mark.parametrize("option,axis", [("hflip", 3), ("vflip", 2)])
def test_flips_mirror_the_mask_and_the_boxes_with_the_image(option, axis):
    image, mask, boxes = _scene()
    flipped, moved = dense_geometry(image, mask, "segment", {option: 1.0})
    assert torch.equal(flipped, image.flip(axis)) and torch.equal(moved, mask.flip(axis - 1))
    flipped, moved = dense_geometry(image, boxes, "detect", {option: 1.0})
    expected = [1, 0.5, 0.125, 0.8, 0.5] if option == "hflip" else [1, 0.2, 0.5, 0.5, 0.875]
    torch.testing.assert_close(moved[0, 0], torch.tensor(expected))
    assert moved[0, 1, 0] == -1  # padding rows stay padding
    ys, xs = torch.nonzero(flipped[0, 0] > 0, as_tuple=True)  # the box still holds the object
    assert xs.min() / 10 == moved[0, 0, 1] and (xs.max() + 1) / 10 == pytest.approx(float(moved[0, 0, 3]))


def test_shifts_move_masks_with_the_image_and_mark_the_border_unlabelled():
    torch.manual_seed(0)
    images = torch.zeros(16, 1, 12, 12)
    images[:, 0, 4:7, 4:7] = 1.0  # a square the shifts never cut
    masks = (images[:, 0] > 0).long() * 2
    boxes = torch.tensor([[[1, 4 / 12, 4 / 12, 7 / 12, 7 / 12]]]).repeat(16, 1, 1)
    shifted, moved = dense_geometry(images, masks, "segment", {"crop": 2})
    assert (moved == -100).any()  # some shift uncovered a border
    for picture, labels in zip(shifted, moved):
        labelled = labels != -100
        assert torch.equal(picture[0][labelled] > 0, labels[labelled] == 2)  # object pixels keep their class
        assert int((labels == 2).sum()) == 9
    shifted, moved = dense_geometry(images, boxes, "detect", {"crop": 2})
    for picture, rows in zip(shifted, moved):
        ys, xs = torch.nonzero(picture[0] > 0, as_tuple=True)
        expected = torch.tensor([xs.min() / 12, ys.min() / 12, (xs.max() + 1) / 12, (ys.max() + 1) / 12])
        torch.testing.assert_close(rows[0, 1:], expected)


def test_a_box_shifted_out_of_the_image_is_dropped():
    image = torch.zeros(1, 1, 8, 8)
    boxes = torch.tensor([[[0, 0.0, 0.0, 0.125, 0.125]]])
    torch.manual_seed(3)
    for _ in range(20):
        _, moved = dense_geometry(image, boxes, "detect", {"crop": 2})
        row = moved[0, 0]
        assert row[0] == -1 or (row[3] - row[1]) * 8 >= 1


def test_dense_runs_take_the_moving_options_and_refuse_the_others():
    spec = gn.load_dataset("digits-scenes", train_scenes=2, val_scenes=0, test_scenes=0).spec
    augment = build_augmentation(spec, {"hflip": 0.5, "crop": 2, "color": 0.2})
    x, y = torch.rand(4, 1, 32, 32), torch.randint(0, 11, (4, 32, 32))
    out, moved = augment(x, y)
    assert out.shape == x.shape and moved.shape == y.shape
    for option in ("rotate", "erase"):
        with pytest.raises(ConfigError, match="without its mask"):
            build_augmentation(spec, {option: 0.5})
    boxes = gn.load_dataset("digits-detection", train_scenes=2, val_scenes=0, test_scenes=0).spec
    with pytest.raises(ConfigError, match="without its boxes"):
        build_augmentation(boxes, {"rotate": 10})


@pytest.mark.parametrize("data,model", [("digits-scenes", "unet"), ("digits-detection", "centernet")])
def test_dense_runs_train_with_moving_augmentation(tmp_path, data, model):
    from glassnet.cli import main

    args = ["train", "--data", data, "--model", model, "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]
    small = ["data.train_scenes=60", "data.val_scenes=10", "data.test_scenes=10", "model.channels=[8,16]"]
    assert main([*args, *small, "augment.hflip=0.5", "augment.crop=2"]) == 0
