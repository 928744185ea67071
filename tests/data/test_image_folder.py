"""Image-folder loader: layouts, pixels, in-memory and streamed splits, and every bad folder."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

import glassnet
import glassnet.data.images  # noqa: F401  (registers the "images" format)
from glassnet.config import RunConfig
from glassnet.data import load_dataset
from glassnet.data.images import ImageFolderDataset, decode_image, is_image_folder, load_image_folder
from glassnet.errors import ConfigError, DataError

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (230, 30, 20)}


def quadrant_image(label: int, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """A dark noisy grey image whose quadrant ``label`` (0-3) is bright."""
    pixels = rng.integers(0, 50, size=(size, size)).astype(np.uint8)
    r, c = divmod(label, 2)
    half = size // 2
    pixels[r * half : (r + 1) * half, c * half : (c + 1) * half] += 180
    return pixels


def write_quadrants(root: Path, per_class: int = 20, size: int = 16, seed: int = 0) -> Path:
    """Grey PNGs in four class folders (q0..q3): the class is the bright quadrant."""
    rng = np.random.default_rng(seed)
    for label in range(4):
        folder = root / f"q{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(quadrant_image(label, rng, size), mode="L").save(folder / f"{i:03d}.png")
    return root


def write_colours(root: Path, per_class: int = 10, size: tuple[int, int] = (12, 10), fmt: str = "png") -> Path:
    """RGB images of one flat colour per class folder, ``size`` given as (height, width)."""
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (size[1], size[0]), colour).save(folder / f"{i:03d}.{fmt}")
    return root


@pytest.fixture
def quadrants(tmp_path: Path) -> Path:
    return write_quadrants(tmp_path / "quadrants")


@pytest.fixture
def colours(tmp_path: Path) -> Path:
    return write_colours(tmp_path / "colours")


# --- happy paths ----------------------------------------------------------------------------


def test_rgb_folder_loads_as_float_chw_tensors_in_unit_range(colours):
    bundle = load_image_folder(colours)
    spec = bundle.spec
    assert spec.modality == "image" and spec.task == "classify"
    assert spec.input_shape == (3, 12, 10) and spec.class_names == ("blue", "green", "red")
    assert isinstance(bundle.train, TensorDataset)  # small: decoded into memory
    x, y = bundle.train.tensors
    assert x.dtype == torch.float32 and x.shape[1:] == (3, 12, 10)
    assert x.min() >= 0 and x.max() <= 1
    first_red = x[(y == 2).nonzero()[0, 0]]
    assert torch.allclose(first_red[:, 0, 0], torch.tensor(COLOURS["red"]) / 255.0)
    assert sum(len(s) for s in (bundle.train, bundle.val, bundle.test)) == 30
    assert bundle.info["in_memory"] is True and bundle.info["layout"] == "class folders"


def test_jpeg_files_with_upper_case_suffixes_are_read(tmp_path):
    root = write_colours(tmp_path / "jpegs", fmt="JPG")
    bundle = load_image_folder(root)
    x, y = bundle.train.tensors
    red = x[y == 2].mean(dim=(0, 2, 3))
    assert red[0] > 0.8 and red[1] < 0.2 and red[2] < 0.2  # JPEG is lossy but the colour survives


def test_grey_images_give_one_channel_and_a_grey_rgb_mix_gives_three(quadrants, tmp_path):
    assert load_image_folder(quadrants).spec.input_shape == (1, 16, 16)
    Image.new("RGB", (16, 16), (200, 10, 10)).save(quadrants / "q0" / "colour.png")
    mixed = load_image_folder(quadrants)
    assert mixed.spec.input_shape == (3, 16, 16)
    x = torch.cat([mixed.train.tensors[0], mixed.val.tensors[0], mixed.test.tensors[0]])
    grey = x[(x[:, 0] == x[:, 1]).all(dim=(1, 2))]
    assert len(grey) == 80  # the grey images are replicated into three equal channels


def test_channels_option_forces_grey_or_rgb(colours, quadrants):
    grey = load_image_folder(colours, channels=1)
    assert grey.spec.input_shape == (1, 12, 10)
    rgb = load_image_folder(quadrants, channels=3)
    assert rgb.spec.input_shape == (3, 16, 16)
    x = rgb.train.tensors[0]
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_rgba_and_palette_images_become_rgb(tmp_path):
    root = tmp_path / "alpha"
    for name, colour in (("a", (255, 0, 0, 128)), ("b", (0, 0, 255, 255))):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGBA", (8, 8), colour).save(root / name / f"{i}.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).convert("P").save(root / "b" / "palette.png")
    bundle = load_image_folder(root)
    assert bundle.spec.input_shape == (3, 8, 8)
    x, y = bundle.train.tensors
    assert torch.allclose(x[y == 0][0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # alpha dropped, colour kept
    palette = decode_image(root / "b" / "palette.png", 3, (8, 8))
    assert np.allclose(palette[:, 0, 0], [0.0, 1.0, 0.0])


def test_sixteen_bit_grey_is_scaled_to_unit_range(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((6, 6), 32768, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = decode_image(path, 1, (3, 3))
    assert pixels.shape == (1, 3, 3) and np.allclose(pixels, 32768 / 65535, atol=1e-4)


def test_default_size_is_the_most_common_and_others_are_resized(tmp_path):
    root = write_colours(tmp_path / "mixed", per_class=10, size=(12, 10))
    Image.new("RGB", (30, 40), COLOURS["red"]).save(root / "red" / "big.png")  # 40 high, 30 wide
    bundle = load_image_folder(root)
    assert bundle.spec.input_shape == (3, 12, 10)
    x = torch.cat([s.tensors[0] for s in (bundle.train, bundle.val, bundle.test)])
    assert x.shape[0] == 31  # the odd-sized image is resized, not refused


@pytest.mark.parametrize(("size", "shape"), [(6, (6, 6)), ([4, 7], (4, 7)), ((5, 3), (5, 3))])
def test_size_option_resizes_bilinearly_and_keeps_flat_colours(colours, size, shape):
    bundle = load_image_folder(colours, size=size)
    assert bundle.spec.input_shape == (3, *shape)
    x, y = bundle.train.tensors
    blue = x[y == 0][0]
    assert torch.allclose(blue, (torch.tensor(COLOURS["blue"]) / 255.0)[:, None, None].expand_as(blue), atol=1e-6)


def test_hidden_files_and_other_extensions_are_ignored(colours):
    (colours / "red" / ".DS_Store").write_bytes(b"\x00\x01junk")
    (colours / "red" / "._001.png").write_bytes(b"AppleDouble junk, not an image")
    (colours / "red" / "notes.txt").write_text("not an image")
    (colours / ".thumbnails").mkdir()
    Image.new("RGB", (10, 12), (0, 0, 0)).save(colours / ".thumbnails" / "x.png")
    bundle = load_image_folder(colours)
    assert bundle.spec.class_names == ("blue", "green", "red")
    assert sum(len(s) for s in (bundle.train, bundle.val, bundle.test)) == 30


def test_images_in_nested_folders_belong_to_their_class_folder(colours):
    nested = colours / "red" / "2024" / "batch"
    nested.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (10, 12), COLOURS["red"]).save(nested / f"n{i}.png")
    bundle = load_image_folder(colours, in_memory=False)
    files = bundle.train.files + bundle.val.files + bundle.test.files
    assert len(files) == 33 and bundle.spec.class_names == ("blue", "green", "red")


def test_stratified_split_keeps_class_shares_and_follows_split_seed(tmp_path):
    root = write_quadrants(tmp_path / "q", per_class=20)
    bundle = load_image_folder(root, val_fraction=0.25, test_fraction=0.25)
    for split, expected in ((bundle.train, 10), (bundle.val, 5), (bundle.test, 5)):
        assert torch.bincount(split.tensors[1], minlength=4).tolist() == [expected] * 4
    again = load_image_folder(root, val_fraction=0.25, test_fraction=0.25)
    other = load_image_folder(root, val_fraction=0.25, test_fraction=0.25, split_seed=1)
    assert torch.equal(bundle.test.tensors[0], again.test.tensors[0])
    assert not torch.equal(bundle.test.tensors[0], other.test.tensors[0])


def test_statistics_are_fitted_on_the_training_split_only(quadrants):
    bundle = load_image_folder(quadrants)
    x = bundle.train.tensors[0]
    assert bundle.spec.input_mean == pytest.approx([x.mean().item()], abs=1e-6)
    assert bundle.spec.input_std == pytest.approx([x.std().item()], abs=1e-6)


def test_train_and_test_folders_are_kept_and_val_comes_stratified_from_train(tmp_path):
    root = tmp_path / "given"
    write_quadrants(root / "train", per_class=12, seed=0)
    write_quadrants(root / "test", per_class=3, seed=1)
    bundle = load_image_folder(root, val_fraction=0.25, in_memory=False)
    assert bundle.info["layout"] == "train/test folders"
    assert sorted(Path(f).relative_to(root).parts[0] for f in bundle.test.files) == ["test"] * 12
    assert all(Path(f).relative_to(root).parts[0] == "train" for f in bundle.train.files + bundle.val.files)
    assert torch.bincount(bundle.val.targets, minlength=4).tolist() == [3, 3, 3, 3]
    assert len(bundle.train) == 36 and not set(bundle.train.files) & set(bundle.val.files)
    assert bundle.spec.class_names == ("q0", "q1", "q2", "q3")


def test_a_val_folder_beside_train_and_test_is_used_as_the_validation_split(tmp_path):
    root = tmp_path / "given"
    write_quadrants(root / "train", per_class=6, seed=0)
    write_quadrants(root / "val", per_class=2, seed=1)
    write_quadrants(root / "test", per_class=3, seed=2)
    bundle = load_image_folder(root, in_memory=False)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (24, 8, 12)
    assert all("/val/" in f for f in bundle.val.files)


def test_streamed_splits_equal_the_in_memory_tensors(quadrants):
    memory = load_image_folder(quadrants, in_memory=True)
    lazy = load_image_folder(quadrants, in_memory=False)
    assert isinstance(lazy.train, ImageFolderDataset) and lazy.info["in_memory"] is False
    for name in ("train", "val", "test"):
        x, y = memory.split(name).tensors
        streamed = lazy.split(name)
        assert len(streamed) == len(x)
        assert torch.equal(torch.stack([streamed[i][0] for i in range(len(streamed))]), x)
        assert torch.equal(streamed.targets, y)
    assert lazy.spec.input_shape == memory.spec.input_shape and lazy.spec.class_names == memory.spec.class_names
    # fewer than 2,000 training images: the estimate uses all of them
    assert lazy.spec.input_mean == pytest.approx(memory.spec.input_mean, abs=1e-5)
    assert lazy.spec.input_std == pytest.approx(memory.spec.input_std, abs=1e-5)


def test_threaded_decoding_gives_the_same_tensors_and_names_a_bad_file(quadrants, monkeypatch):
    serial = load_image_folder(quadrants, in_memory=True)
    monkeypatch.setattr(glassnet.data.images, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(glassnet.data.images.os, "cpu_count", lambda: 4)
    threaded = load_image_folder(quadrants, in_memory=True)
    assert torch.equal(threaded.train.tensors[0], serial.train.tensors[0])
    truncate_png(quadrants / "q2" / "cut.png")
    with pytest.raises(DataError, match=r"cannot read image '.*q2/cut\.png'"):
        load_image_folder(quadrants, in_memory=True, channels=1)


def test_auto_streams_when_the_decoded_size_exceeds_the_memory_budget(quadrants):
    # 80 images x 1 x 16 x 16 float32 = 80 KiB
    assert load_image_folder(quadrants, memory_budget_mb=0.1).info["in_memory"] is True
    assert load_image_folder(quadrants, memory_budget_mb=0.05).info["in_memory"] is False


def test_lazy_dataset_pickles_to_an_equal_dataset(quadrants):
    dataset = load_image_folder(quadrants, in_memory=False).train
    copy = pickle.loads(pickle.dumps(dataset))
    assert isinstance(copy, ImageFolderDataset) and copy.files == dataset.files
    image, label = copy[3]
    assert torch.equal(image, dataset[3][0]) and int(label) == int(dataset[3][1])
    assert len(pickle.dumps(dataset)) < 200 * len(dataset)  # paths and labels, not pixels


def test_cnn_trains_on_a_streamed_bundle_with_dataloader_workers(quadrants):
    bundle = load_image_folder(quadrants, in_memory=False)
    model = glassnet.create_model("cnn", bundle.spec, channels=[4], hidden=8)
    trainer = glassnet.Trainer(task="classify", max_epochs=1, batch_size=16, num_workers=2, device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    result = trainer.fit(model, bundle)
    assert result.epochs_run == 1 and result.steps == 4  # 56 training images in batches of 16
    assert np.isfinite(result.history[0]["train/loss"]) and "val/accuracy" in result.history[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_load_dataset_detects_an_image_folder_by_path(quadrants, tmp_path):
    assert is_image_folder(quadrants)
    given = tmp_path / "given"
    write_quadrants(given / "train", per_class=2)
    assert is_image_folder(given)
    (tmp_path / "tables" / "a").mkdir(parents=True)
    (tmp_path / "tables" / "a" / "x.csv").write_text("a,b\n1,2\n")
    assert not is_image_folder(tmp_path / "tables")
    assert not is_image_folder(quadrants / "q0" / "000.png")
    bundle = load_dataset(str(quadrants), format="images", size=8)
    assert bundle.spec.input_shape == (1, 8, 8)


def test_train_end_to_end_on_an_image_folder_reaches_high_accuracy(tmp_path):
    root = write_quadrants(tmp_path / "photos", per_class=30)
    config = RunConfig(
        data=str(root), model="cnn", epochs=8, batch_size=16, model_args={"channels": [8], "hidden": 16}, device="cpu"
    )
    run = glassnet.train(config, out=tmp_path / "run")
    result = run.read_result("train")
    assert result["data"]["name"] == "photos" and result["data"]["input_shape"] == [1, 16, 16]
    assert result["test"]["accuracy"] >= 0.9


def test_train_end_to_end_on_a_streamed_folder_writes_a_complete_run(tmp_path):
    root = write_quadrants(tmp_path / "photos", per_class=6)
    config = RunConfig(
        data=str(root),
        data_args={"in_memory": False, "size": 8},
        model="cnn",
        epochs=1,
        model_args={"channels": [4], "hidden": 8},
        device="cpu",
    )
    run = glassnet.train(config, out=tmp_path / "run")
    result = run.read_result("train")
    assert result["data"]["in_memory"] is False and result["data"]["splits"]["test"]["size"] == 4
    assert len(result["test"]["confusion_matrix"]) == 4 and run.has_model()


# --- bad folders and files --------------------------------------------------------------------


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=r"image folder '.*nowhere' not found; give the path of a folder"):
        load_image_folder(tmp_path / "nowhere")


def test_a_file_instead_of_a_folder_is_refused(quadrants):
    with pytest.raises(DataError, match=r"'.*000\.png' is a file, not an image folder"):
        load_image_folder(quadrants / "q0" / "000.png")


def test_empty_folder_says_how_to_lay_out_classes(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"image folder '.*empty' has no class sub-folders; .*cat.*001\.png"):
        load_image_folder(tmp_path / "empty")


def test_loose_images_without_class_folders_are_refused(tmp_path):
    root = tmp_path / "loose"
    root.mkdir()
    Image.new("L", (4, 4)).save(root / "a.png")
    with pytest.raises(DataError, match=r"'.*loose' has no class sub-folders"):
        load_image_folder(root)


def test_class_folders_without_any_images_are_refused(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        (tmp_path / "pets" / name / "readme.txt").write_text("todo")
    with pytest.raises(DataError, match=r"no images in '.*pets': its class folders \(cat, dog\) hold no .*\.png"):
        load_image_folder(tmp_path / "pets")


def test_a_single_class_is_refused(tmp_path):
    root = tmp_path / "one"
    (root / "cat").mkdir(parents=True)
    Image.new("L", (4, 4)).save(root / "cat" / "a.png")
    with pytest.raises(DataError, match=r"'.*one' has a single class \('cat'\); .*at least two"):
        load_image_folder(root)


def test_a_class_folder_without_images_is_named(colours):
    (colours / "yellow").mkdir()
    (colours / "yellow" / "notes.txt").write_text("to do")
    with pytest.raises(DataError, match=r"class folder '.*colours/yellow' holds no images .*remove the folder"):
        load_image_folder(colours)


def test_random_bytes_named_png_are_named(colours):
    (colours / "red" / "x.png").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(DataError, match=r"cannot read image '.*red/x\.png': .*delete it"):
        load_image_folder(colours)


def truncate_png(path: Path) -> None:
    """Cut a PNG of noise (so it does not compress to a few bytes) in half."""
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_png_is_named_when_decoded_into_memory(colours):
    truncate_png(colours / "green" / "cut.png")
    with pytest.raises(DataError, match=r"cannot read image '.*green/cut\.png': .*truncated"):
        load_image_folder(colours, in_memory=True)


def test_a_truncated_png_is_named_when_streamed(colours):
    truncate_png(colours / "green" / "cut.png")
    dataset = ImageFolderDataset([colours / "green" / "cut.png", colours / "red" / "000.png"], [1, 2], 3, (12, 10))
    assert dataset[1][0].shape == (3, 12, 10)  # the other files still stream
    with pytest.raises(DataError, match=r"cannot read image '.*green/cut\.png': .*truncated"):
        dataset[0]


def test_a_truncated_png_in_the_statistics_sample_is_named_when_the_folder_is_streamed(tmp_path):
    root = tmp_path / "given"
    for split in ("train", "val", "test"):
        write_colours(root / split, per_class=3)
    truncate_png(root / "train" / "green" / "cut.png")
    # fewer than 2,000 training images: the statistics sample decodes every one of them
    with pytest.raises(DataError, match=r"cannot read image '.*train/green/cut\.png': .*truncated"):
        load_image_folder(root, in_memory=False)


def test_test_classes_missing_from_train_are_named(tmp_path):
    root = tmp_path / "given"
    write_quadrants(root / "train", per_class=4)
    write_quadrants(root / "test", per_class=2)
    (root / "test" / "q9").mkdir()
    Image.new("L", (16, 16)).save(root / "test" / "q9" / "a.png")
    with pytest.raises(DataError, match=r"'.*test' has class folders that '.*train' lacks: q9"):
        load_image_folder(root)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"size": 0}, r"size must be a positive integer .* Received: size=0"),
        ({"size": [4, 5, 6]}, r"Received: size=\[4, 5, 6\]"),
        ({"size": "big"}, r"Received: size='big'"),
        ({"channels": 2}, r"channels must be 1, 3 or 'auto'. Received: channels=2"),
        ({"in_memory": "yes"}, r"in_memory must be true, false or 'auto'. Received: in_memory='yes'"),
        ({"memory_budget_mb": -1}, r"memory_budget_mb must be a number >= 0. Received: memory_budget_mb=-1"),
        ({"test_fraction": 1.5}, r"test_fraction"),
    ],
)
def test_bad_options_are_config_errors_quoting_the_value(colours, option, message):
    with pytest.raises(ConfigError, match=message):
        load_image_folder(colours, **option)


def test_cli_exits_with_status_2_and_leaves_an_existing_run_untouched(tmp_path, capsys):
    from glassnet.cli.main import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')
    status = main(
        ["train", "--data", str(tmp_path / "empty"), "--model", "cnn", "--out", str(out), "data.format=images"]
    )
    assert status == 2
    assert "has no class sub-folders" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 1}\n'
