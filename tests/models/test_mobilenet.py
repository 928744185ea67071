"""mobilenet_v2: torchvision-compatible parameter names, ImageNet weights, fine-tuning variants, errors."""

import os
from pathlib import Path

import pytest
import torch

import glassnet.models.mobilenet  # noqa: F401  (registers "mobilenet_v2" before the integrator wires it)
from glassnet.data import DataSpec
from glassnet.errors import ConfigError, DataError, GlassnetError
from glassnet.models import create_model, load_model, save_model
from glassnet.models.mobilenet import (
    WEIGHTS_FILE,
    MobileNetV2,
    imagenet_class_names,
    imagenet_spec,
    imagenet_weights_path,
    load_imagenet_weights,
    round_channels,
)

WEIGHTS = Path(os.environ.get("GLASSNET_DATA", "/nonexistent")) / WEIGHTS_FILE
needs_weights = pytest.mark.skipif(
    not WEIGHTS.exists(),
    reason=f"needs the torchvision checkpoint at $GLASSNET_DATA/{WEIGHTS_FILE} (point GLASSNET_DATA at ../shared/data)",
)
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
ESPRESSO = 967
GREY_10 = DataSpec(modality="image", input_shape=(1, 64, 64), task="classify", num_outputs=10, name="grey")
RGB_10 = DataSpec(modality="image", input_shape=(3, 64, 64), task="classify", num_outputs=10, name="rgb")


def checkpoint():
    return torch.load(WEIGHTS, map_location="cpu", weights_only=True)


def eval_transform(image):
    """The standard ImageNet evaluation transform with PIL only: shorter side 256, centre crop 224, [0, 1]."""
    from PIL import Image

    scale = 256 / min(image.size)
    width, height = round(image.width * scale), round(image.height * scale)
    image = image.resize((width, height), Image.BILINEAR)
    left, top = round((width - 224) / 2), round((height - 224) / 2)
    image = image.crop((left, top, left + 224, top + 224))
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(224, 224, 3)
    return pixels.permute(2, 0, 1).float() / 255


def skimage_photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the chelsea and coffee photos")
    from PIL import Image

    return torch.stack(
        [eval_transform(Image.fromarray(data.chelsea())), eval_transform(Image.fromarray(data.coffee()))]
    )


def test_class_names_are_imagenet_in_index_order():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[ESPRESSO] == "espresso"
    names.append("not shared")  # each call returns a fresh list
    assert len(imagenet_class_names()) == 1000


@needs_weights
def test_state_dict_keys_and_shapes_equal_the_torchvision_checkpoint():
    model = create_model("mobilenet_v2", imagenet_spec())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in checkpoint().items()}
    assert {k: s for k, s in ours.items() if not k.startswith("normalize.")} == theirs
    assert set(ours) - set(theirs) == {"normalize.mean", "normalize.std"}


@needs_weights
def test_pretrained_model_holds_the_checkpoint_tensors_exactly(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = create_model("mobilenet_v2", imagenet_spec(), pretrained="imagenet")
    assert calls and all(c.get("weights_only") is True for c in calls)
    monkeypatch.undo()
    state = model.state_dict()
    for key, tensor in checkpoint().items():
        assert torch.equal(state[key], tensor), key
    torch.testing.assert_close(model.normalize.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


@needs_weights
def test_imagenet_weights_recognise_a_cat_and_an_espresso():
    model = create_model("mobilenet_v2", imagenet_spec(), pretrained="imagenet").eval()
    with torch.no_grad():
        top1 = model(skimage_photos()).argmax(dim=1).tolist()
    names = imagenet_class_names()
    assert top1[0] in CAT_CLASSES, f"chelsea classified as {names[top1[0]]!r}"
    assert top1[1] == ESPRESSO, f"coffee classified as {names[top1[1]]!r}"


@needs_weights
def test_grey_variant_sums_the_stem_over_rgb_and_still_recognises_the_photos():
    stem = checkpoint()["features.0.0.weight"]
    grey_imagenet = DataSpec(modality="image", input_shape=(1, 224, 224), task="classify", num_outputs=1000)
    grey_model = create_model("mobilenet_v2", grey_imagenet, pretrained="imagenet").eval()
    with torch.no_grad():
        top1 = grey_model(skimage_photos().mean(dim=1, keepdim=True)).argmax(dim=1).tolist()
    assert top1[0] in CAT_CLASSES and top1[1] == ESPRESSO, f"grey photos classified as {top1}"

    model = create_model("mobilenet_v2", GREY_10, pretrained="imagenet")
    torch.testing.assert_close(model.features[0][0].weight, stem.sum(dim=1, keepdim=True), rtol=0, atol=0)
    assert model.classifier[1].weight.shape == (10, 1280)
    out = model(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 10)
    out.sum().backward()


@needs_weights
def test_ten_class_finetuning_keeps_the_backbone_and_builds_a_fresh_head():
    theirs = checkpoint()
    model = create_model("mobilenet_v2", RGB_10, pretrained="imagenet")
    state = model.state_dict()
    assert torch.equal(state["features.18.0.weight"], theirs["features.18.0.weight"])
    assert state["classifier.1.weight"].shape == (10, 1280)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)


@needs_weights
def test_pretrained_model_survives_the_safetensors_round_trip(tmp_path):
    model = create_model("mobilenet_v2", RGB_10, pretrained="imagenet").eval()
    save_model(model, RGB_10, tmp_path)
    loaded, _ = load_model(tmp_path)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_tiny_rgb_images_run_forward_and_backward():
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(3, 32, 32), task="classify", num_outputs=5)
    model = create_model("mobilenet_v2", spec, width_mult=0.5, dropout=0.0)
    out = model(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, 5) and torch.isfinite(out).all()
    out.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.features[0][0].weight.grad.abs().sum() > 0


def test_width_multiplier_rounds_channels_to_multiples_of_eight():
    assert [round_channels(c * 0.35) for c in (32, 16, 24, 320)] == [16, 8, 8, 112]
    assert round_channels(1280 * 1.4) == 1792
    thin = create_model("mobilenet_v2", RGB_10, width_mult=0.35)
    convs = [m for m in thin.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert thin.classifier[1].in_features == 1280  # the last convolution never shrinks
    full = create_model("mobilenet_v2", RGB_10)
    assert sum(p.numel() for p in thin.parameters()) < sum(p.numel() for p in full.parameters()) / 3


def test_shortcuts_only_where_stride_and_width_allow():
    model = create_model("mobilenet_v2", RGB_10)
    blocks = list(model.features)[1:-1]
    assert len(blocks) == 17
    assert sum(b.use_shortcut for b in blocks) == 10  # every repeated block of a stage, as in the paper


def test_missing_weights_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="mobilenet_v2-b0353104.pth") as info:
        imagenet_weights_path()
    assert str(tmp_path / "cache" / WEIGHTS_FILE) in str(info.value)
    assert str(tmp_path / "data" / WEIGHTS_FILE) in str(info.value)
    assert "download.pytorch.org" in str(info.value)
    # create_model passes the same message on (the registry may wrap it in a ConfigError)
    with pytest.raises(GlassnetError, match="download.pytorch.org"):
        create_model("mobilenet_v2", RGB_10, pretrained="imagenet")


def test_weights_are_found_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    assert imagenet_weights_path() == tmp_path / WEIGHTS_FILE


def test_corrupt_weights_are_a_data_error(monkeypatch, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    model = MobileNetV2(in_channels=3, num_classes=10)
    with pytest.raises(DataError, match="cannot read"):
        load_imagenet_weights(model, keep_classifier=False)


def test_a_checkpoint_of_another_network_is_refused(monkeypatch, tmp_path):
    (tmp_path / "weights").mkdir()
    torch.save({"layer1.0.conv1.weight": torch.zeros(1)}, tmp_path / WEIGHTS_FILE)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match="layer1.0.conv1.weight"):
        load_imagenet_weights(MobileNetV2(in_channels=3, num_classes=10), keep_classifier=False)


@pytest.mark.parametrize(
    "spec,hparams,message",
    [
        (RGB_10, {"pretrained": "imagenet21k"}, "pretrained='imagenet21k'"),
        (RGB_10, {"width_mult": 0}, "width_mult=0"),
        (RGB_10, {"width_mult": 0.5, "pretrained": "imagenet"}, "width_mult=1.0"),
        (RGB_10, {"dropout": 1.5}, "dropout=1.5"),
        (DataSpec("image", (2, 32, 32), "classify", 3), {"pretrained": "imagenet"}, "2 channels"),
        (DataSpec("image", (32, 32), "classify", 3), {}, "C x H x W"),
        (DataSpec("tabular", (5,), "classify", 2), {}, "Models that fit it"),
        (DataSpec("image", (3, 8, 8), "regress", 2), {}, "takes image data for classify"),
    ],
)
def test_wrong_combinations_are_config_errors(spec, hparams, message):
    with pytest.raises(ConfigError, match=message):
        create_model("mobilenet_v2", spec, **hparams)
