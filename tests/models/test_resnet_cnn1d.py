"""The ``resnet`` and ``cnn1d`` families: shapes, layouts, refusals, save/load and quick learning."""

import numpy as np
import pytest
import torch
from torch import nn

import glassnet.models.cnn1d
import glassnet.models.resnet  # noqa: F401  (registers "resnet" before the integrator imports it)
from glassnet.data import DataSpec, bundle_from_arrays
from glassnet.errors import ConfigError
from glassnet.models import create_model, list_models, load_model, save_model
from glassnet.models.resnet import BasicBlock
from glassnet.train import Trainer

IMAGE = DataSpec(modality="image", input_shape=(1, 28, 28), task="classify", num_outputs=10, input_mean=(0.3,),
                 input_std=(0.3,), name="img")  # fmt: skip
RGB = DataSpec(modality="image", input_shape=(3, 12, 10), task="classify", num_outputs=3, name="rgb")
LARGE = DataSpec(modality="image", input_shape=(3, 64, 72), task="regress", num_outputs=2, target_mean=(5.0, -1.0),
                 target_std=(2.0, 0.5), name="large")  # fmt: skip
AUDIO = DataSpec(modality="audio", input_shape=(1, 16, 25), task="classify", num_outputs=5, input_mean=(-4.0,),
                 input_std=(2.0,), name="mel")  # fmt: skip
SEQ = DataSpec(modality="sequence", input_shape=(20, 3), task="classify", num_outputs=2, input_mean=(0.0, 1.0, 2.0),
               input_std=(1.0, 2.0, 3.0), name="seq")  # fmt: skip
FORECAST = DataSpec(modality="sequence", input_shape=(12, 1), task="forecast", num_outputs=4, input_mean=(3.0,),
                    input_std=(2.0,), target_mean=(3.0,) * 4, target_std=(2.0,) * 4, name="fc")  # fmt: skip
TABLE = DataSpec(modality="tabular", input_shape=(1,), task="classify", num_outputs=2, name="one-column")


def batch(spec, n=3):
    return torch.rand(n, *spec.input_shape)


@pytest.mark.parametrize("spec", [IMAGE, RGB, LARGE, AUDIO], ids=lambda s: s.name)
def test_resnet_output_shapes(spec):
    model = create_model("resnet", spec, depth=[1, 1], width=8).eval()
    assert model(batch(spec)).shape == (3, spec.num_outputs)


@pytest.mark.parametrize("spec", [SEQ, FORECAST, AUDIO], ids=lambda s: s.name)
@pytest.mark.parametrize("pool", ["avg", "max", "flatten"])
def test_cnn1d_output_shapes(spec, pool):
    model = create_model("cnn1d", spec, channels=[4, 8], pool=pool).eval()
    assert model(batch(spec)).shape == (3, spec.num_outputs)


def test_resnet_width_doubles_per_stage_and_resolution_halves():
    model = create_model("resnet", IMAGE, depth=[2, 1, 1], width=8)
    stages = list(model.features)[1:]
    assert [len(stage) for stage in stages] == [2, 1, 1]
    out = model.features(model.normalize(batch(IMAGE)))
    assert out.shape == (3, 32, 7, 7)  # 28 -> 28 (stage 1) -> 14 -> 7


@pytest.mark.parametrize("spec,stem,pooled", [(IMAGE, "auto", False), (LARGE, "auto", True), (IMAGE, "large", True),
                                              (LARGE, "small", False)])  # fmt: skip
def test_stem_keeps_small_images_at_full_resolution(spec, stem, pooled):
    model = create_model("resnet", spec, depth=[1], width=4, stem=stem)
    first = model.features[0]
    assert any(isinstance(m, nn.MaxPool2d) for m in first) == pooled
    height = first(model.normalize(batch(spec))).shape[2]
    assert height == (spec.input_shape[1] // 4 if pooled else spec.input_shape[1])


def test_last_convolution_is_in_the_last_element_of_features():
    # Grad-CAM takes the last convolution of ``features``; it must sit at the end, after every stage
    model = create_model("resnet", IMAGE, depth=[1, 2], width=4)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert convs[-1] is model.features[-1][-1].conv2
    model = create_model("cnn1d", SEQ, channels=[4, 6])
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv1d)]
    assert convs[-1].out_channels == 6 and isinstance(model.features[-1], nn.ReLU)


def test_zero_init_makes_each_residual_block_start_as_its_shortcut():
    block_of = lambda model: model.features[1][1]  # noqa: E731  (an identity-shortcut block)
    x = torch.randn(2, 4, 6, 6)
    model = create_model("resnet", RGB, depth=[2], width=4).eval()
    assert isinstance(block_of(model), BasicBlock)
    torch.testing.assert_close(block_of(model)(x), torch.relu(x))
    plain = create_model("resnet", RGB, depth=[2], width=4, zero_init_residual=False).eval()
    assert not torch.allclose(block_of(plain)(x), torch.relu(x))


def test_resnet_is_standardised_and_rescaled():
    model = create_model("resnet", LARGE, depth=[1], width=4)
    assert type(model.normalize).__name__ == "Identity"  # LARGE carries no input statistics
    assert type(model.classifier[-1]).__name__ == "Rescale"
    model = create_model("resnet", IMAGE, depth=[1], width=4)
    torch.testing.assert_close(model.normalize(torch.full((1, 1, 2, 2), 0.6)), torch.ones(1, 1, 2, 2))


def test_cnn1d_reads_sequence_channels_and_mel_bands_as_conv_channels():
    seq = create_model("cnn1d", SEQ, channels=[4])
    x = torch.arange(2 * 20 * 3, dtype=torch.float32).reshape(2, 20, 3)
    assert torch.equal(seq.features[0](x), x.transpose(1, 2))  # N x C x T
    assert seq.features[1].in_channels == 3
    audio = create_model("cnn1d", AUDIO, channels=[4])
    assert audio.features[0](batch(AUDIO)).shape == (3, 16, 25)  # mel bands are channels, frames are time
    assert audio.features[1].in_channels == 16


def test_cnn1d_flatten_head_sees_the_time_position():
    model = create_model("cnn1d", FORECAST, channels=[4, 4, 4], pool="flatten", dropout=0.0)
    assert model.classifier[-2].in_features == 4 * 3  # 12 steps halved twice
    model = create_model("cnn1d", FORECAST, channels=[4, 4, 4], pool="avg", dropout=0.0)
    assert model.classifier[-2].in_features == 4


@pytest.mark.parametrize(
    "name,spec,fitting",
    [("resnet", TABLE, "mlp"), ("cnn1d", IMAGE, "resnet"), ("cnn1d", TABLE, "mlp"), ("resnet", SEQ, "cnn1d")],
)
def test_wrong_data_is_refused_naming_the_models_that_fit(name, spec, fitting):
    with pytest.raises(ConfigError, match="Models that fit it") as error:
        create_model(name, spec)
    assert fitting in str(error.value) and spec.modality in str(error.value)
    assert name not in list_models(spec=spec)


@pytest.mark.parametrize(
    "name,spec,hparams,message",
    [
        ("resnet", IMAGE, {"depth": []}, "depth=\\[\\]"),
        ("resnet", IMAGE, {"depth": [2, 0]}, "depth=0"),
        ("resnet", IMAGE, {"width": -4}, "width=-4"),
        ("resnet", IMAGE, {"stem": "huge"}, "stem='huge'"),
        ("resnet", IMAGE, {"dropout": 1.5}, "dropout=1.5"),
        ("resnet", IMAGE, {"activation": "swish"}, "activation='swish'"),
        ("resnet", IMAGE, {"blocks": 3}, "no hyper-parameter 'blocks'"),
        ("cnn1d", SEQ, {"kernel_size": 4}, "kernel_size=4"),
        ("cnn1d", SEQ, {"channels": []}, "channels=\\[\\]"),
        ("cnn1d", SEQ, {"pool": "sum"}, "pool='sum'"),
    ],
)
def test_bad_hyperparameters_are_refused_quoting_the_value(name, spec, hparams, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, spec, **hparams)


@pytest.mark.parametrize(
    "name,spec",
    [
        ("resnet", DataSpec(modality="audio", input_shape=(16, 25), task="classify", num_outputs=2)),
        ("cnn1d", DataSpec(modality="sequence", input_shape=(20,), task="classify", num_outputs=2)),
        ("cnn1d", DataSpec(modality="audio", input_shape=(16, 25), task="classify", num_outputs=2)),
    ],
)
def test_inputs_without_the_expected_axes_are_refused(name, spec):
    with pytest.raises(ConfigError, match=r"input_shape=\("):
        create_model(name, spec)


@pytest.mark.parametrize("name,spec", [("resnet", AUDIO), ("cnn1d", AUDIO), ("cnn1d", SEQ), ("cnn1d", FORECAST)])
def test_save_load_round_trip_on_specs_the_registry_test_lacks(name, spec, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, spec)
    x = batch(spec, 4)
    model(x).sum().backward()  # moves batch-norm statistics away from their initial values
    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    model.eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def bars(n=192, side=10, seed=0):
    """Class 0: a horizontal bright bar; class 1: a vertical one; anywhere in a noisy image."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, size=(n, 1, side, side)).astype(np.float32)
    y = np.arange(n) % 2
    for i, label in enumerate(y):
        where, start = rng.integers(0, side), rng.integers(0, side - 5)
        if label:
            x[i, 0, start : start + 5, where] += 0.6
        else:
            x[i, 0, where, start : start + 5] += 0.6
    return x, y


def waves(n=192, steps=32, seed=0):
    """Two channels: a sine of 2 or 5 cycles (the class) with random phase and noise, and pure noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    cycles = np.where(y == 1, 5.0, 2.0)[:, None]
    t = np.arange(steps)[None, :] / steps
    signal = 3 + np.sin(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi, (n, 1))) + rng.normal(0, 0.3, (n, steps))
    x = np.stack([signal, rng.normal(0, 1, (n, steps))], axis=-1).astype(np.float32)
    return x, y


@pytest.mark.parametrize(
    "name,data,modality,hparams",
    [
        ("resnet", bars, "image", {"depth": [1, 1], "width": 8}),
        ("cnn1d", waves, "sequence", {"channels": [8, 16]}),
    ],
)
def test_learns_a_small_generated_task(name, data, modality, hparams):
    x, y = data()
    bundle = bundle_from_arrays(x, y, name=name, modality=modality, task="classify", class_names=("a", "b"))
    model = create_model(name, bundle.spec, **hparams)
    trainer = Trainer(max_epochs=8, batch_size=16, lr=5e-3, seed=0, device="cpu")
    before = trainer.evaluate(model, bundle.test)["accuracy"]
    trainer.fit(model, bundle)
    after = trainer.evaluate(model, bundle.test)["accuracy"]
    assert after >= 0.9, (before, after)
