"""The GAN families: shapes for any image size and channel count, the forward contract, errors, save/load."""

import pytest
import torch

from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import create_model, load_model, save_model
from glassnet.models.gan import doublings


def image_spec(shape, classes=3, mean=None):
    names = tuple(f"c{i}" for i in range(classes))
    stats = {"input_mean": (mean,) * shape[0], "input_std": (0.3,) * shape[0]} if mean is not None else {}
    return DataSpec(modality="image", input_shape=shape, task="generate", num_outputs=1, class_names=names,
                    name="imgs", **stats)  # fmt: skip


SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 12, 10), (1, 8, 16), (2, 5, 7)]


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_generator_and_discriminator_fit_any_image_size(name, shape):
    torch.manual_seed(0)
    model = create_model(name, image_spec(shape, mean=0.4), latent=16, width=8)
    images = torch.rand(5, *shape)
    labels = torch.tensor([0, 1, 2, 0, 1])
    assert model(images).shape == (5, 1)  # the forward pass: the discriminator's "real" logit
    assert model.discriminator(images, labels if model.conditional else None).shape == (5,)
    samples = model.sample(5, labels=labels if model.conditional else None)
    assert samples.shape == (5, *shape)
    assert float(samples.min()) >= 0 and float(samples.max()) <= 1  # the data's value range
    fake = model.generator(torch.randn(5, 16), labels if model.conditional else None)
    assert fake.shape == (5, *shape) and fake.requires_grad


def test_the_grid_doubles_at_most_three_times_from_at_least_four_pixels():
    assert [doublings(s, s) for s in (4, 7, 8, 16, 28, 32, 64, 224)] == [0, 0, 1, 2, 2, 3, 3, 3]
    assert doublings(8, 16) == 1


def test_conditional_sampling_draws_the_classes_asked_for_and_is_reproducible():
    model = create_model("cgan", image_spec((1, 8, 8)), latent=8, width=8)
    a = model.sample(6, labels=torch.tensor([0, 0, 0, 1, 1, 1]), generator=torch.Generator().manual_seed(3))
    b = model.sample(6, labels=torch.tensor([0, 0, 0, 1, 1, 1]), generator=torch.Generator().manual_seed(3))
    c = model.sample(6, labels=torch.tensor([2, 2, 2, 2, 2, 2]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError, match="needs the class of each image"):
        model.generator(torch.randn(2, 8))


def test_the_discriminator_has_spectral_norm_unless_switched_off():
    spec = image_spec((1, 8, 8))
    with_norm = create_model("dcgan", spec, width=8)
    without = create_model("dcgan", spec, width=8, spectral_norm=False)
    assert any("parametrizations" in name for name, _ in with_norm.discriminator.named_parameters())
    assert not any("parametrizations" in name for name, _ in without.discriminator.named_parameters())


def test_bad_settings_and_data_are_refused_with_the_value():
    with pytest.raises(ConfigError, match="loss must be one of hinge, bce. Received: loss='wgan'"):
        create_model("dcgan", image_spec((1, 8, 8)), loss="wgan")
    with pytest.raises(ConfigError, match="at least 2 named classes"):
        create_model("cgan", image_spec((1, 8, 8), classes=1))
    tabular = DataSpec(modality="tabular", input_shape=(5,), task="generate", num_outputs=1, name="t")
    with pytest.raises(ConfigError, match="takes image data"):
        create_model("dcgan", tabular)
    with pytest.raises(ConfigError, match="width must be a positive integer"):
        create_model("dcgan", image_spec((1, 8, 8)), width=0)


def test_save_and_load_keep_both_networks_and_the_average(tmp_path):
    spec = image_spec((3, 12, 10), mean=0.5)
    model = create_model("cgan", spec, latent=8, width=8)
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.add_(0.01)  # the average differs from the generator
    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    for ema in (True, False):
        expected = model.eval().sample(4, generator=torch.Generator().manual_seed(0), ema=ema)
        got = loaded.sample(4, generator=torch.Generator().manual_seed(0), ema=ema)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    x = torch.rand(4, *spec.input_shape)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_channels_last_and_bf16_autocast_run_both_networks():
    model = create_model("cgan", image_spec((1, 28, 28)), latent=8, width=8).to(memory_format=torch.channels_last)
    images = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.discriminator(images, labels)
        fake = model.generator(torch.randn(4, 8), labels)
    assert torch.isfinite(logits.float()).all() and fake.shape == (4, 1, 28, 28)
    logits.float().mean().backward()
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_given_latent_noise_decides_the_samples():
    model = create_model("cgan", image_spec((1, 8, 8)), latent=8, width=8)
    noise = torch.randn(4, *model.noise_shape)
    labels = torch.tensor([0, 1, 2, 0])
    assert model.noise_shape == (8,)
    assert torch.equal(model.sample(4, labels=labels, noise=noise), model.sample(4, labels=labels, noise=noise))
    assert not torch.equal(model.sample(4, labels=labels, noise=noise), model.sample(4, labels=labels))
