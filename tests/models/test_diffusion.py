"""The ``ddpm`` family: the U-Net fits any image size, the schedule, DDIM sampling, guidance and its errors."""

from collections import Counter

import pytest
import torch

from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import create_model, load_model, model_info, save_model
from glassnet.models.diffusion import halvings, noise_schedule


def image_spec(shape, classes=3):
    names = tuple(f"c{i}" for i in range(classes))
    return DataSpec(modality="image", input_shape=shape, task="generate", num_outputs=1, class_names=names,
                    name="imgs")  # fmt: skip


SHAPES = [(1, 8, 8), (1, 28, 28), (3, 12, 10), (2, 5, 7), (1, 9, 17)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_unet_keeps_the_image_shape_and_samples_lie_in_the_data_range(shape):
    torch.manual_seed(0)
    model = create_model("ddpm", image_spec(shape), width=8, timesteps=50, sample_steps=4)
    images = torch.rand(5, *shape)
    t = torch.tensor([0, 1, 10, 30, 49])
    assert model.denoise(images * 2 - 1, t, torch.tensor([0, 1, 2, 3, 0])).shape == (5, *shape)  # 3: "no class"
    assert model(images).shape == (5, 1) and bool((model(images) <= 0).all())  # minus a squared error
    samples = model.sample(3)
    assert samples.shape == (3, *shape) and samples.dtype == torch.float32
    assert float(samples.min()) >= 0 and float(samples.max()) <= 1


def test_the_grid_halves_at_most_twice_keeping_four_pixels():
    assert [halvings(s, s) for s in (4, 7, 8, 15, 16, 28, 64)] == [0, 0, 1, 1, 2, 2, 2]
    assert halvings(8, 32) == 1


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_the_noise_schedule_falls_from_almost_all_signal_to_almost_none(kind):
    alpha_bar = noise_schedule(kind, 1000)
    assert alpha_bar.shape == (1000,) and bool((alpha_bar[1:] < alpha_bar[:-1]).all())
    assert alpha_bar[0] > 0.99 and alpha_bar[-1] < 1e-3
    short = noise_schedule(kind, 100)  # fewer steps cover the same path
    assert short[-1] < 1e-2


def test_sampling_is_reproducible_and_follows_the_class_and_the_options():
    model = create_model("ddpm", image_spec((1, 8, 8)), width=8, timesteps=20, sample_steps=5).eval()
    labels = torch.tensor([0, 1, 2, 0])
    a = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(3))
    b = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(3))
    c = model.sample(4, labels=torch.tensor([2, 2, 2, 2]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, c)
    plain = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(3), guidance=1.0)
    assert not torch.equal(a, plain)  # guidance 2 (default) mixes in the unconditional estimate
    ancestral = model.sample(4, generator=torch.Generator().manual_seed(3), steps=20, eta=1.0)
    assert ancestral.shape == (4, 1, 8, 8)
    for bad in ({"steps": 0}, {"steps": 21}, {"steps": 2.5}, {"guidance": -1}, {"eta": 2}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            model.sample(2, **bad)


def test_large_draws_are_sampled_in_chunks_with_the_same_images(monkeypatch):
    import glassnet.models.diffusion as diffusion

    model = create_model("ddpm", image_spec((1, 8, 8)), width=8, timesteps=20, sample_steps=4).eval()
    calls = []
    original = model.net_ema.forward
    monkeypatch.setattr(model.net_ema, "forward", lambda *a: calls.append(len(a[0])) or original(*a))
    monkeypatch.setattr(diffusion, "SAMPLE_CHUNK", 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    for options in ({}, {"eta": 1.0}, {"guidance": 1.0}):
        chunked = model.sample(6, labels=labels, generator=torch.Generator().manual_seed(1), **options)
        monkeypatch.setattr(diffusion, "SAMPLE_CHUNK", 1000)
        whole = model.sample(6, labels=labels, generator=torch.Generator().manual_seed(1), **options)
        monkeypatch.setattr(diffusion, "SAMPLE_CHUNK", 4)
        torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    # 4 steps each: guided draws run 12 rows (6 images twice) as 3 calls of 4, or 1 call of 12 unchunked;
    # the unguided one 6 rows as 4 + 2, or 6
    assert sorted(Counter(calls).items()) == [(2, 4), (4, 2 * 12 + 4), (6, 4), (12, 2 * 4)]


def test_the_forward_score_is_deterministic():
    model = create_model("ddpm", image_spec((1, 8, 8)), width=8, timesteps=50)
    images = torch.rand(6, 1, 8, 8)
    assert torch.equal(model(images), model(images))


def test_a_model_without_classes_or_asked_not_to_condition_is_unconditional():
    assert not create_model("ddpm", image_spec((1, 8, 8), classes=1), width=8).conditional
    assert not create_model("ddpm", image_spec((1, 8, 8)), width=8, conditional=False).conditional
    assert create_model("ddpm", image_spec((1, 8, 8)), width=8).conditional


@pytest.mark.parametrize(
    "options,match",
    [
        ({"timesteps": 5}, "timesteps must be"),
        ({"schedule": "sigmoid"}, "schedule must be one of cosine, linear"),
        ({"sample_steps": 2000}, "sample_steps must be"),
        ({"guidance": 50}, "guidance must be"),
        ({"width": 0}, "width"),
    ],
)
def test_bad_hyper_parameters_are_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        create_model("ddpm", image_spec((1, 8, 8)), **options)


def test_tabular_data_is_refused():
    spec = DataSpec(modality="tabular", input_shape=(4,), task="generate", num_outputs=1)
    with pytest.raises(ConfigError, match="model 'ddpm' takes image data"):
        create_model("ddpm", spec)


def test_the_saved_model_samples_the_same_images_and_names_its_step(tmp_path):
    spec = image_spec((1, 8, 8))
    model = create_model("ddpm", spec, width=8, timesteps=30, sample_steps=3, schedule="linear")
    save_model(model, spec, tmp_path)
    loaded, _ = load_model(tmp_path)
    seed = torch.Generator().manual_seed(1)
    again = torch.Generator().manual_seed(1)
    assert torch.equal(model.sample(4, generator=seed), loaded.sample(4, generator=again))
    assert loaded.schedule == "linear" and loaded.sample_steps == 3
    assert model_info("ddpm").step == "diffusion" and model_info("cgan").step is None


def test_given_noise_starts_the_sampler_and_makes_ddim_deterministic():
    model = create_model("ddpm", image_spec((1, 8, 8)), width=8, timesteps=20, sample_steps=4).eval()
    noise = torch.randn(3, *model.noise_shape)
    first = model.sample(3, labels=torch.tensor([0, 1, 2]), noise=noise, generator=torch.Generator().manual_seed(1))
    again = model.sample(3, labels=torch.tensor([0, 1, 2]), noise=noise, generator=torch.Generator().manual_seed(9))
    assert model.noise_shape == (1, 8, 8) and torch.equal(first, again)
