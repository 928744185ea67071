"""The ``masks`` format: images/ beside masks/ (grey or palette PNG ids), with its bad-input errors."""

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.data.registry import load_named
from glassnet.errors import DataError


def test_a_mask_folder_loads_as_segmentation_with_unlabelled_pixels_ignored(write_mask_folder, tmp_path):
    root = write_mask_folder(tmp_path / "scans", classes=["background", "lesion", "vessel"])
    bundle = gn.load_dataset(str(root))  # detected before the image-folder format that would claim images/
    spec = bundle.spec
    assert spec.task == "segment" and spec.class_names == ("background", "lesion", "vessel")
    assert spec.input_shape == (1, 12, 10)
    x, y = bundle.train.tensors
    assert y.shape[1:] == (12, 10) and int(y[0, 0, 0]) == -100
    assert set(np.unique(y.numpy())) <= {-100, 0, 1, 2}
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 20
    assert bundle.info["format"] == "masks"


def test_palette_masks_without_classes_file_are_named_by_id(write_mask_folder, tmp_path):
    bundle = gn.load_dataset(str(write_mask_folder(tmp_path / "d", palette=True, unlabelled=False)))
    assert bundle.spec.class_names == ("0", "1", "2")


def test_images_of_other_sizes_are_resized_masks_by_nearest_neighbour(write_mask_folder, tmp_path):
    root = write_mask_folder(tmp_path / "d")
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(root / "images" / "s00.png")
    mask = np.zeros((24, 20), np.uint8)
    mask[4:12, 4:12] = 2
    Image.fromarray(mask).save(root / "masks" / "s00.png")
    bundle = gn.load_dataset(str(root))
    assert bundle.spec.input_shape == (1, 12, 10) and bundle.info["resized_to"] == [12, 10]
    for split in ("train", "val", "test"):
        assert set(np.unique(bundle.split(split).tensors[1].numpy())) <= {-100, 0, 1, 2}  # no blended ids


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda r: (r / "masks" / "s03.png").unlink(), "s03.png"),
        (lambda r: Image.fromarray(np.zeros((5, 5), np.uint8)).save(r / "masks" / "s04.png"), "s04.png.*size"),
        (lambda r: Image.new("RGB", (10, 12)).save(r / "masks" / "s05.png"), "s05.png.*colour"),
        (lambda r: (r / "masks" / "s06.png").write_bytes(b"not a png"), "s06.png"),
        (lambda r: Image.fromarray(np.full((12, 10), 7, np.uint8)).save(r / "masks" / "s07.png"), "s07.png.*id 7"),
        (lambda r: Image.new("L", (10, 12)).save(r / "masks" / "extra.png"), "extra.png"),
    ],
)
def test_bad_masks_are_named_in_the_error(write_mask_folder, tmp_path, damage, message):
    root = write_mask_folder(tmp_path / "d", classes=["background", "a", "b"])
    damage(root)
    with pytest.raises(DataError, match=message):
        load_named(str(root), {})
