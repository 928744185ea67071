"""The ``fast`` recipe: what it chooses for the data and the hardware, and that what a run sets wins."""

import json
import warnings

import pytest
import torch
import yaml

from glassnet.cli import main
from glassnet.config import RunConfig
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.pipeline import recipes
from glassnet.pipeline.recipes import apply_recipe
from glassnet.train import precision

CPU = torch.device("cpu")
FASHION = DataSpec(modality="image", input_shape=(1, 28, 28), task="classify", num_outputs=10, name="fm")
TABLE = DataSpec(modality="tabular", input_shape=(30,), task="classify", num_outputs=2, name="bc")
HOUSES = DataSpec(modality="tabular", input_shape=(8,), task="regress", num_outputs=1, name="houses")


@pytest.fixture
def no_bf16_units(monkeypatch):
    monkeypatch.setattr(recipes, "bf16_units", lambda device: False)


def fast(spec, train_size, val_size=6_000, **settings):
    return apply_recipe(RunConfig(recipe="fast", **settings), spec, train_size, CPU, val_size)


def test_images_get_larger_batches_nhwc_label_smoothing_and_the_most_accurate_epoch(no_bf16_units):
    config, choices = fast(FASHION, 54_000, data="fashion-mnist", model="cnn")
    assert (config.batch_size, config.monitor, config.label_smoothing) == (128, "val/accuracy", 0.1)
    assert config.channels_last and config.augment == {} and config.model_args == {}
    assert config.precision == "fp32"  # no bf16 units: bf16 would be emulated
    assert "no bf16 units" in choices.describe() and "batch_size=128" in choices.describe()
    assert set(choices.reasons) == set(choices.settings)


def test_bf16_only_where_the_device_has_bf16_units(monkeypatch):
    monkeypatch.setattr(recipes, "bf16_units", lambda device: True)
    config, choices = fast(FASHION, 54_000)
    assert config.precision == "bf16" and choices.settings["precision"] == "bf16"


GENERATE = DataSpec(modality="image", input_shape=(1, 28, 28), task="generate", num_outputs=1, name="fm")


@pytest.mark.parametrize("units", [True, False])
def test_ddpm_gets_nhwc_only_without_bf16_where_nhwc_slows_its_u_net(monkeypatch, units):
    monkeypatch.setattr(recipes, "bf16_units", lambda device: units)
    config, choices = fast(GENERATE, 54_000, model="ddpm")
    assert config.channels_last is not units and (config.precision == "bf16") is units
    assert ("channels_last stays false: NHWC is slower for ddpm in bf16" in choices.describe()) is units
    gan, _ = fast(GENERATE, 54_000, model="dcgan")  # NHWC pays for the GAN's convolutions in bf16
    assert gan.channels_last and gan.precision == ("bf16" if units else "fp32")
    explicit, _ = fast(GENERATE, 54_000, model="ddpm", precision="bf16")
    assert not explicit.channels_last


TEXT = DataSpec(modality="text", input_shape=(128,), task="classify", num_outputs=3, name="reviews")


@pytest.mark.parametrize("model", ["gru", "lstm", "rnn"])
def test_recurrent_families_keep_fp32_on_a_cpu_where_bf16_slows_them(monkeypatch, model):
    # sentiment, one epoch on an AMX CPU: gru 2,722 against 4,668 examples/s in fp32 (lstm 1,880 / 2,342)
    monkeypatch.setattr(recipes, "bf16_units", lambda device: True)
    config, choices = fast(TEXT, 20_000, model=model)
    assert config.precision == "fp32" and "precision" not in choices.settings
    assert f"precision stays fp32: bf16 autocast slows {model} on a CPU" in choices.describe()
    transformer, _ = fast(TEXT, 20_000, model="transformer")  # its matrix products gain
    assert transformer.precision == "bf16"
    on_a_gpu, _ = apply_recipe(RunConfig(recipe="fast", model=model), TEXT, 20_000, torch.device("cuda"), 6_000)
    assert on_a_gpu.precision == "bf16"  # cuDNN's recurrences run in bf16


def test_mobilenet_keeps_fp32_on_a_cpu_where_bf16_slows_its_depthwise_convolutions(monkeypatch):
    # fashion-mnist at 64 pixels, channels-last, AMX CPU: 613 ms a step in bf16 against 329 ms in fp32
    monkeypatch.setattr(recipes, "bf16_units", lambda device: True)
    config, choices = fast(FASHION, 54_000, model="mobilenet_v2")
    assert config.precision == "fp32" and config.channels_last  # NHWC still pays in fp32 (329 against 437 ms)
    assert "precision stays fp32: bf16 autocast slows mobilenet_v2 on a CPU" in choices.describe()
    on_a_gpu, _ = apply_recipe(
        RunConfig(recipe="fast", model="mobilenet_v2"), FASHION, 54_000, torch.device("cuda"), 6_000
    )
    assert on_a_gpu.precision == "bf16"


def test_every_setting_the_run_gives_is_kept(no_bf16_units):
    config, choices = fast(FASHION, 54_000, model="cnn", batch_size=32, label_smoothing=0.2, channels_last=False)
    assert (config.batch_size, config.label_smoothing) == (32, 0.2)
    assert "batch_size" not in choices.settings and "label_smoothing" not in choices.settings
    # False is channels_last's default: a recipe cannot tell it from a key left alone
    assert config.channels_last


def test_small_data_keeps_small_batches_and_tables_get_no_image_settings(no_bf16_units):
    config, choices = fast(TABLE, 455, model="mlp")
    assert config.batch_size == 64 and not config.channels_last and config.augment == {}
    assert config.monitor == "val/accuracy" and "channels_last" not in choices.settings


def test_a_small_validation_split_keeps_the_loss_as_monitor(no_bf16_units):
    # on digits (270 validation images) epochs tie on accuracy and the first tie was kept:
    # epoch 3 of 10, test accuracy 0.974 against 0.993 with val/loss
    config, choices = fast(FASHION, 1_200, val_size=270)
    assert config.monitor == "val/loss" and "monitor" not in choices.settings
    assert "monitor stays val/loss: on 270 validation examples" in choices.describe()


def test_regression_keeps_the_loss_as_monitor(no_bf16_units):
    config, choices = fast(HOUSES, 16_000, model="mlp")
    assert config.monitor == "val/loss" and config.label_smoothing == 0.0
    assert config.batch_size == 64  # 16,000 // 128 = 125 steps per epoch: below the 400 kept


def test_no_recipe_changes_nothing():
    config = RunConfig()
    assert apply_recipe(config, FASHION, 54_000, CPU) == (config, None)


def test_an_unknown_recipe_is_refused_with_the_close_name():
    with pytest.raises(ConfigError, match="recipe must be one of fast.*Did you mean 'fast'"):
        RunConfig(recipe="fats")


def test_bf16_on_a_cpu_without_bf16_units_warns_that_it_is_emulated(monkeypatch):
    monkeypatch.setattr(precision, "bf16_units", lambda device: False)
    with pytest.warns(UserWarning, match="no bf16 units.*emulated"):
        precision.check_precision("bf16", CPU)
    monkeypatch.setattr(precision, "bf16_units", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.check_precision("bf16", CPU)


def test_cpu_flags_decide_bf16_units(monkeypatch):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not precision.bf16_units(CPU)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert precision.bf16_units(CPU)


def test_train_fast_saves_the_resolved_settings_and_what_the_recipe_chose(tmp_path, capsys, no_bf16_units):
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--model", "mlp", "--fast", "--epochs", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "recipe fast: label_smoothing=0.1" in captured.err and "monitor stays val/loss" in captured.err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["recipe"] == "fast" and saved["monitor"] == "val/loss" and saved["label_smoothing"] == 0.1
    recipe = json.loads((out / "results" / "train.json").read_text())["training"]["recipe"]
    assert (
        recipe["name"] == "fast"
        and recipe["settings"]["label_smoothing"] == 0.1
        and "monitor" not in recipe["settings"]
    )
    assert recipe["reasons"]["label_smoothing"] and recipe["notes"]


def test_fast_and_a_disagreeing_recipe_key_are_refused(capsys):
    assert main(["train", "--data", "digits", "--model", "mlp", "--fast", "recipe=other"]) == 2
    assert "--fast fast and recipe=other disagree" in capsys.readouterr().err


def test_an_environment_run_is_told_the_recipe_sets_nothing(no_bf16_units):
    config = RunConfig(recipe="fast", env="CartPole-v1", step={"name": "ppo"})
    resolved, choices = apply_recipe(config, TABLE, 0, CPU)
    assert resolved == config and choices.settings == {}
    assert "sets nothing for an environment run" in choices.describe()
