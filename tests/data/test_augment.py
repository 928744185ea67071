"""Tests of on-the-fly batch augmentation (glassnet.data.augment) on small generated batches."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import glassnet
import glassnet.data.augment  # noqa: F401  (the module under test, imported before it is wired)
from glassnet.data.augment import BatchAugmentation, build_augmentation
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.train import SupervisedStep, Trainer
from glassnet.train.tasks import Classification

GREY = DataSpec("image", (1, 12, 12), "classify", 4, name="grey")
RGB = DataSpec("image", (3, 12, 12), "classify", 4, name="rgb")
SEQUENCE = DataSpec("sequence", (40, 2), "classify", 3, name="series")
AUDIO = DataSpec("audio", (1, 16, 24), "classify", 3, name="speech")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def images(spec: DataSpec = GREY, n: int = 16, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random images in [0.1, 1] (so that a zero can only come from padding or erasing) and labels."""
    generator = torch.Generator().manual_seed(3)
    x = 0.1 + 0.9 * torch.rand(n, *spec.input_shape, generator=generator)
    return x.to(device), (torch.arange(n) % spec.num_outputs).to(device)


def series(spec: DataSpec, n: int = 8) -> torch.Tensor:
    """Examples whose channels have very different scales and offsets, and no zeros."""
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(n, *spec.input_shape, generator=generator)
    if spec.modality == "sequence":
        return x * torch.tensor([1.0, 100.0]) + torch.tensor([5.0, 500.0])
    return x - 10.0  # log-mel-like values: far below zero


def run(spec: DataSpec, options: dict, x: torch.Tensor, y: torch.Tensor | None = None, seed: int = 0):
    torch.manual_seed(seed)
    aug = build_augmentation(spec, options)
    targets = y if y is not None else torch.zeros(len(x), dtype=torch.long, device=x.device)
    return aug(x, targets)


# --- image operations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (GREY, {"crop": 2}),
        (GREY, {"hflip": 1.0}),
        (GREY, {"vflip": 1.0}),
        (GREY, {"rotate": 30}),
        (GREY, {"erase": 1.0}),
        (GREY, {"color": 0.5}),
        (RGB, {"color": 0.5}),
        (RGB, {"mixup": 1.0}),
        (RGB, {"cutmix": 1.0}),
        (RGB, {"crop": 2, "hflip": 0.5, "rotate": 10, "color": 0.3, "erase": 0.5, "mixup": 0.4, "cutmix": 1.0}),
    ],
)
def test_each_image_op_changes_the_batch_and_keeps_shape_dtype_device_and_range(spec, options, device):
    x, y = images(spec, device=device)
    out, _ = run(spec, options, x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)
    assert out.min() >= 0 and out.max() <= 1


def test_flips_mirror_every_example_at_probability_one():
    x, y = images()
    assert torch.equal(run(GREY, {"hflip": 1.0}, x, y)[0], x.flip(-1))
    assert torch.equal(run(GREY, {"vflip": 1.0}, x, y)[0], x.flip(-2))


def test_crop_is_a_shift_of_the_zero_padded_image_by_at_most_the_padding():
    x, y = images()
    out, _ = run(GREY, {"crop": 2}, x, y)
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + 12, dx : dx + 12], out[i])
        ]
        assert found, f"example {i} is not a crop of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 1  # offsets are drawn per example


def test_erase_zeroes_one_rectangle_and_leaves_the_rest():
    x, y = images()
    out, _ = run(GREY, {"erase": 1.0}, x, y)
    for i in range(len(x)):
        erased = out[i, 0] == 0
        rows, cols = erased.any(dim=1).nonzero().flatten(), erased.any(dim=0).nonzero().flatten()
        assert erased.any(), f"example {i} was not erased"
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and erased.sum() == box.numel()  # one solid rectangle
        assert torch.equal(out[i, 0][~erased], x[i, 0][~erased])


def test_grey_colour_jitter_changes_brightness_or_contrast_only():
    x, y = images()
    out, _ = run(GREY, {"color": 0.5}, x, y)
    # brightness and contrast are monotone maps of each image's pixels: the ranking is kept (up to clipping)
    for i in range(len(x)):
        order = x[i].flatten().argsort()
        assert (out[i].flatten()[order].diff() >= -1e-6).all()


# --- mixing -------------------------------------------------------------------------------------------------------


def constant_images(n: int = 12, size: int = 10) -> tuple[DataSpec, torch.Tensor, torch.Tensor]:
    """Example i is filled with the value (i + 1) / (n + 1) and labelled class i, so pixels reveal their source."""
    spec = DataSpec("image", (1, size, size), "classify", n, name="constants")
    values = (torch.arange(n) + 1.0) / (n + 1)
    return spec, values.view(n, 1, 1, 1).expand(n, 1, size, size).clone(), torch.arange(n)


def assert_distributions(targets: torch.Tensor, n: int) -> None:
    assert targets.shape == (n, n) and targets.dtype == torch.float32
    assert (targets >= 0).all()
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(n))
    assert ((targets > 0).sum(dim=1) <= 2).all()  # each example mixes with one partner


def test_mixup_targets_are_the_blend_weights_of_the_right_pair():
    spec, x, y = constant_images()
    values = x[:, 0, 0, 0]
    out, targets = run(spec, {"mixup": 1.0}, x, y)
    assert_distributions(targets, len(x))
    own = targets[torch.arange(len(x)), y]
    assert (own > 0).all()
    assert (own < 0.99).sum() >= len(x) // 2  # Beta(1, 1) mixes most examples visibly
    # each image is exactly the target-weighted sum of the images of those classes
    torch.testing.assert_close(out[:, 0], (targets @ values).view(-1, 1, 1).expand_as(out[:, 0]))


def test_cutmix_targets_are_the_pixel_shares_of_the_right_pair():
    spec, x, y = constant_images()
    values = x[:, 0, 0, 0]
    out, targets = run(spec, {"cutmix": 1.0}, x, y)
    assert_distributions(targets, len(x))
    pasted = 0
    for i in range(len(x)):
        source = (out[i, 0, :, :, None] == values).float().mean(dim=(0, 1))  # share of pixels from each example
        torch.testing.assert_close(source, targets[i])
        pasted += int(source[i] < 1)
        partner = out[i, 0] != values[i]
        if partner.any():  # the pasted region is one rectangle
            rows, cols = partner.any(dim=1).nonzero().flatten(), partner.any(dim=0).nonzero().flatten()
            assert partner[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    assert pasted >= len(x) // 2


def test_mixing_accepts_probability_targets():
    spec, x, y = constant_images()
    soft = F.one_hot(y, len(y)).float() * 0.5 + 0.5 / len(y)
    _, targets = run(spec, {"mixup": 0.5}, x, soft)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(len(y)))
    assert (targets > 0).all()  # the soft input targets are mixed, not replaced by one-hot ones


def test_with_both_mixers_each_batch_gets_one_of_them():
    spec, x, y = constant_images()
    values = x[:, 0, 0, 0]
    torch.manual_seed(0)
    aug = build_augmentation(spec, {"mixup": 1.0, "cutmix": 1.0})
    kinds = set()
    for _ in range(20):
        out, targets = aug(x, y)
        assert_distributions(targets, len(x))
        only_sources = bool((out[..., None] == values).any(dim=-1).all())
        kinds.add("cutmix" if only_sources else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_mixed_targets_train_with_the_classification_loss():
    spec, x, y = constant_images()
    _, targets = run(spec, {"cutmix": 1.0, "mixup": 0.2}, x, y)
    logits = torch.randn(len(x), len(x), generator=torch.Generator().manual_seed(0))
    expected = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(Classification().loss(logits, targets), expected)
    assert not torch.allclose(Classification().loss(logits, y), expected)  # the mix changed what is learned


def test_mixing_refuses_targets_that_are_not_classes():
    spec, x, _ = constant_images()
    aug = build_augmentation(spec, {"mixup": 0.2})
    with pytest.raises(DataError, match=r"class indices \(N,\) or probabilities \(N, 12\).*torch.float32 \(12, 3\)"):
        aug(x, torch.rand(len(x), 3))


# --- sequence and spectrogram operations ----------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (SEQUENCE, {"noise": 0.1}),
        (SEQUENCE, {"shift": 0.25}),
        (SEQUENCE, {"time_mask": 6}),
        (AUDIO, {"noise": 0.1}),
        (AUDIO, {"shift": 0.25}),
        (AUDIO, {"time_mask": 6}),
        (AUDIO, {"freq_mask": 5, "masks": 2}),
        (AUDIO, {"shift": 0.1, "noise": 0.05, "time_mask": 4, "freq_mask": 3, "masks": 2}),
    ],
)
def test_each_series_op_changes_the_batch_and_keeps_shape_dtype_device(spec, options, device):
    x = series(spec).to(device)
    y = torch.arange(len(x), device=device) % 3
    out, targets = run(spec, options, x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x) and torch.isfinite(out).all()
    assert targets is y


def test_noise_std_is_a_fraction_of_each_examples_std_per_channel():
    x = series(SEQUENCE, n=64)
    out, _ = run(SEQUENCE, {"noise": 0.1}, x)
    ratio = (out - x).std(dim=1) / x.std(dim=1)  # (N, C): channel scales differ by 100
    assert ratio.mean().item() == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize(("spec", "time_dim"), [(SEQUENCE, 1), (AUDIO, 3)])
def test_shift_moves_whole_examples_in_time_and_fills_with_zeros(spec, time_dim):
    x = series(spec, n=16)
    out, _ = run(spec, {"shift": 0.25}, x)
    length, largest = x.shape[time_dim], int(0.25 * x.shape[time_dim])
    shifts = set()
    for i in range(len(x)):
        example, shifted = x[i].movedim(time_dim - 1, -1), out[i].movedim(time_dim - 1, -1)
        matches = []
        for s in range(-largest, largest + 1):
            expected = torch.zeros_like(example)  # not circular: what is shifted in is zero
            if s >= 0:
                expected[..., s:] = example[..., : length - s]
            else:
                expected[..., :s] = example[..., -s:]
            if torch.equal(shifted, expected):
                matches.append(s)
        assert matches, f"example {i} is not a zero-filled shift of at most {largest} steps"
        shifts.add(matches[0])
    assert len(shifts) > 2 and shifts != {0}


def test_time_masks_fill_whole_steps_with_each_examples_channel_mean():
    x = series(SEQUENCE, n=32)
    out, _ = run(SEQUENCE, {"time_mask": 6, "masks": 2}, x)
    mean = x.mean(dim=1, keepdim=True)  # (N, 1, C)
    steps = (out != x).any(dim=2)  # (N, T)
    assert steps.any(dim=1).sum() >= 16 and (steps.sum(dim=1) <= 12).all()
    for i in range(len(x)):
        torch.testing.assert_close(out[i, steps[i]], mean[i].expand(int(steps[i].sum()), 2))  # every channel


def test_freq_masks_fill_whole_mel_bands_across_all_frames():
    x = series(AUDIO, n=32)
    out, _ = run(AUDIO, {"freq_mask": 4, "masks": 1}, x)
    bands = (out != x).any(dim=3)[:, 0]  # (N, mels)
    assert bands.any(dim=1).sum() >= 16 and (bands.sum(dim=1) <= 4).all()
    for i in range(len(x)):
        block = out[i, 0, bands[i]]
        torch.testing.assert_close(block, torch.full_like(block, x[i].mean().item()))
        # a band is masked over every frame, and bands are contiguous
        index = bands[i].nonzero().flatten()
        if len(index):
            assert index.max() - index.min() + 1 == len(index)


def test_time_masks_of_spectrograms_cover_every_band():
    x = series(AUDIO, n=16)
    out, _ = run(AUDIO, {"time_mask": 5}, x)
    frames = (out != x).any(dim=2)[:, 0]  # (N, frames)
    assert frames.any()
    for i in range(len(x)):
        assert (out[i, 0][:, frames[i]] == out[i, 0, 0, frames[i]]).all()


# --- identity, reproducibility, describe -------------------------------------------------------------------------


def test_zero_options_are_the_identity():
    x, y = images()
    aug = build_augmentation(GREY, {"hflip": 0, "vflip": 0.0, "erase": 0, "crop": 0, "rotate": 0, "color": 0})
    out, targets = aug(x, y)
    assert torch.equal(out, x) and targets is y and aug.describe() == {}
    s = series(AUDIO)
    aug = build_augmentation(AUDIO, {"noise": 0, "shift": 0, "time_mask": 0, "freq_mask": 0, "masks": 3})
    assert torch.equal(aug(s, y[: len(s)])[0], s) and aug.describe() == {}


def test_empty_options_build_nothing():
    assert build_augmentation(GREY, None) is None
    assert build_augmentation(GREY, {}) is None


@pytest.mark.parametrize(
    ("spec", "options", "make"),
    [
        (RGB, {"crop": 2, "hflip": 0.5, "rotate": 10, "color": 0.3, "erase": 0.5, "mixup": 0.4, "cutmix": 1.0}, images),
        (AUDIO, {"shift": 0.1, "noise": 0.05, "time_mask": 4, "freq_mask": 3, "masks": 2}, None),
    ],
)
def test_the_global_torch_seed_makes_augmentation_reproducible(spec, options, make):
    x, y = make(spec) if make else (series(spec), torch.arange(8) % 3)
    first, second, other = (
        run(spec, options, x, y, seed=5),
        run(spec, options, x, y, seed=5),
        run(spec, options, x, y, 6),
    )
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_describe_lists_the_active_operations_in_order_and_rebuilds():
    aug = build_augmentation(RGB, {"mixup": 0.2, "hflip": 0.5, "vflip": 0, "crop": 2})
    described = aug.describe()
    assert list(described) == ["crop", "hflip", "mixup"] and described["hflip"] == 0.5
    assert json.loads(json.dumps(described)) == described
    assert build_augmentation(RGB, described).describe() == described
    assert build_augmentation(AUDIO, {"time_mask": 3}).describe() == {"time_mask": 3, "masks": 1}


def test_batches_that_do_not_match_the_spec_are_refused():
    aug = build_augmentation(GREY, {"hflip": 0.5})
    with pytest.raises(DataError, match=r"'grey' batches of floating N x 1 x 12 x 12 inputs.*\(4, 3, 12, 12\)"):
        aug(torch.rand(4, 3, 12, 12), torch.zeros(4, dtype=torch.long))


# --- option validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        (
            GREY,
            {"hflp": 0.5},
            r"unknown augmentation option 'hflp'\. Did you mean 'hflip'\? Options for image data: crop,",
        ),
        (AUDIO, {"time_msk": 3}, r"Did you mean 'time_mask'\? Options for audio data: shift, noise, time_mask, freq"),
        (GREY, {"zzz": 1}, r"unknown augmentation option 'zzz'\. Options for image data: crop, hflip, vflip, rotate"),
        (AUDIO, {"hflip": 0.5}, r"augment.hflip is for image data, not audio data\. Options for audio data: shift,"),
        (SEQUENCE, {"freq_mask": 2}, r"augment.freq_mask is for audio data, not sequence data\. Options for sequence"),
        (GREY, {"noise": 0.1}, r"augment.noise is for sequence and audio data, not image data\. Options for image"),
        (GREY, {"hflip": 1.5}, r"augment.hflip must be a probability in \[0, 1\]\. Received: 1.5"),
        (GREY, {"erase": -0.1}, r"augment.erase must be a probability in \[0, 1\]\. Received: -0.1"),
        (GREY, {"vflip": True}, r"augment.vflip must be a probability in \[0, 1\]\. Received: True"),
        (GREY, {"hflip": "0.5"}, r"augment.hflip must be a probability in \[0, 1\]\. Received: '0.5'"),
        (GREY, {"crop": -1}, r"augment.crop must be a whole number of pixels >= 0\. Received: -1"),
        (GREY, {"crop": 2.5}, r"augment.crop must be a whole number of pixels >= 0\. Received: 2.5"),
        (GREY, {"rotate": 200}, r"augment.rotate must be a number of degrees in \[0, 180\]\. Received: 200"),
        (GREY, {"color": 1.5}, r"augment.color must be a jitter strength in \[0, 1\]\. Received: 1.5"),
        (GREY, {"mixup": 0}, r"augment.mixup must be a Beta alpha > 0 .*Received: 0"),
        (GREY, {"cutmix": -1.0}, r"augment.cutmix must be a Beta alpha > 0 .*Received: -1.0"),
        (SEQUENCE, {"noise": -0.5}, r"augment.noise must be a noise std >= 0.*Received: -0.5"),
        (SEQUENCE, {"shift": 1.0}, r"augment.shift must be a fraction of the length in \[0, 0.99\]\. Received: 1.0"),
        (SEQUENCE, {"time_mask": -2}, r"augment.time_mask must be a whole number of steps >= 0\. Received: -2"),
        (SEQUENCE, {"time_mask": 41}, r"augment.time_mask must be at most the length 40\. Received: 41"),
        (AUDIO, {"freq_mask": 17}, r"augment.freq_mask must be at most the length 16\. Received: 17"),
        (AUDIO, {"time_mask": 2, "masks": 0}, r"augment.masks must be a whole number >= 1\. Received: 0"),
        (DataSpec("image", (4, 8, 8), "classify", 2), {"color": 0.2}, r"grey \(1\) or RGB \(3\).*Received: 4 channels"),
        (GREY, ["hflip"], r"augment must be a mapping of option to value.*Received: \['hflip'\]"),
    ],
)
def test_bad_options_are_refused_with_the_name_and_what_is_allowed(spec, options, message):
    with pytest.raises(ConfigError, match=message):
        build_augmentation(spec, options)


@pytest.mark.parametrize("task", ["regress", "reconstruct"])
@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_is_refused_for_tasks_without_classes(task, name):
    spec = DataSpec("image", (1, 8, 8), task, 1, name="depth")
    with pytest.raises(ConfigError, match=rf"augment.{name} .*needs a classification task; dataset 'depth' has task"):
        build_augmentation(spec, {name: 0.2})


@pytest.mark.parametrize(
    "spec", [DataSpec("text", (20,), "classify", 2), DataSpec("tabular", (5,), "classify", 2, name="table")]
)
def test_text_and_tables_get_no_augmentation(spec):
    with pytest.raises(ConfigError, match=rf"{spec.modality} data gets no augmentation.*augment.noise was given"):
        build_augmentation(spec, {"noise": 0.1})
    assert build_augmentation(spec, {}) is None


def test_a_batch_augmentation_built_directly_validates_too():
    with pytest.raises(ConfigError, match="augment.hflip must be a probability"):
        BatchAugmentation(GREY, {"hflip": 2})


# --- end to end ----------------------------------------------------------------------------------------------------


class Counting:
    """Wraps an augmentation and counts the batches it sees."""

    def __init__(self, aug: BatchAugmentation) -> None:
        self.aug, self.calls = aug, 0

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        return self.aug(inputs, targets)


def test_a_cnn_still_learns_with_augmented_batches_and_validation_is_not_augmented(image_bundle):
    spec = image_bundle.spec
    counting = Counting(build_augmentation(spec, {"hflip": 0, "crop": 1, "erase": 0.5, "mixup": 0.2}))
    torch.manual_seed(0)
    model = glassnet.create_model("cnn", spec, channels=(8, 16), hidden=32)  # small: two shared CPU cores
    trainer = Trainer(task="classify", max_epochs=6, batch_size=16, lr=1e-2, seed=0, step=SupervisedStep(counting))
    fit = trainer.fit(model, image_bundle)
    assert counting.calls == fit.steps > 0  # every training batch, and only those
    first, second = trainer.evaluate(model, image_bundle.val), trainer.evaluate(model, image_bundle.val)
    assert first == second and counting.calls == fit.steps
    x_val, y_val = image_bundle.val.tensors
    with torch.no_grad():
        # the trainer may have put the model on CUDA (device="auto"): score it where it lives
        predicted = model.eval()(x_val.to(trainer.device)).argmax(dim=1).cpu()
        accuracy = (predicted == y_val).float().mean().item()
    assert first["accuracy"] == pytest.approx(accuracy)
    assert trainer.evaluate(model, image_bundle.test)["accuracy"] >= 0.75  # chance is 0.25
