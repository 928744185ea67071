import pytest

from glassnet.config import RunConfig, load_config, parse_overrides, save_config
from glassnet.errors import ConfigError


def test_defaults_are_valid_and_round_trip_through_yaml(tmp_path):
    config = RunConfig(model_args={"width": 32})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_overrides_are_typed_and_nest_model_and_data_args():
    config = RunConfig().with_overrides(
        ["lr=0.01", "epochs=3", "model.channels=[8, 16]", "data.split_seed=4", "augment.hflip=0.5"]
    )
    assert config.lr == 0.01 and config.epochs == 3
    assert config.model_args == {"channels": [8, 16]} and config.data_args == {"split_seed": 4}
    assert config.augment == {"hflip": 0.5}


def test_integer_for_a_float_field_is_accepted():
    assert RunConfig().with_overrides(["lr=1"]).lr == 1.0


def test_exponent_without_a_dot_is_a_number_on_the_command_line_and_in_files(tmp_path):
    # YAML 1.1 (PyYAML) reads 3e-3 as the string '3e-3', which was refused as "lr must be of type float"
    config = RunConfig().with_overrides(["lr=3e-3", "weight_decay=5E-2", "model.scale=1e5"])
    assert (config.lr, config.weight_decay, config.model_args["scale"]) == (0.003, 0.05, 100000.0)
    path = tmp_path / "c.yaml"
    path.write_text("lr: 2e-4\nmodel_args: {name: e5}\n")
    loaded = load_config(path)
    assert loaded.lr == 0.0002 and loaded.model_args == {"name": "e5"}


def test_file_values_are_overridden_by_the_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: mlp\ndata: breast-cancer\nepochs: 7\n")
    config = load_config(path, ["epochs=2"])
    assert (config.model, config.data, config.epochs) == ("mlp", "breast-cancer", 2)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["epochz=3"], "unknown configuration key 'epochz'.*Did you mean 'epochs'"),
        (["epochs=-1"], r"epochs must be >= 1. Received: epochs=-1"),
        (["epochs=two"], "epochs must be of type int. Received: epochs='two'"),
        (["optimizer=adam"], "optimizer must be one of adamw, sgd. Received: optimizer='adam'.*Did you mean 'adamw'"),
        (["schedule=step"], "schedule must be one of"),
        (["lr=0"], "lr must be a finite number > 0"),
        (["lr=.inf"], "lr must be a finite number > 0. Received: lr=inf"),
        (["weight_decay=.nan"], "weight_decay must be a finite number"),
        (["momentum=-1"], r"momentum must be in \[0, 1\)"),
        (["monitor=loss"], "monitor must name a validation metric"),
        (["device=tpu"], "device must be one of"),
        (
            ["training.lr=1"],
            "only model.<arg>, data.<arg>, augment.<op>, step.<option> and adversarial.<option> take a dot",
        ),
        (["num_workers=-1"], "num_workers must be >= 0"),
        (["lr"], "not of the form key=value"),
        (["batch_size=true"], "batch_size must be of type int"),
    ],
)
def test_bad_overrides_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().with_overrides(overrides)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("lerning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="in config file"):
        load_config(unknown)


def test_empty_file_gives_the_defaults(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == RunConfig()


def test_parse_overrides_reads_yaml_scalars():
    assert parse_overrides(["a=1", "b=0.5", "c=adamw", "d=[1, 2]", "e=null"]) == {
        "a": 1, "b": 0.5, "c": "adamw", "d": [1, 2], "e": None,
    }  # fmt: skip


def test_engine_keys_have_working_defaults_and_take_overrides():
    config = RunConfig().with_overrides(
        ["precision=bf16", "channels_last=true", "accumulate=4", "warmup=0.05", "ema=0.999", "schedule=plateau"]
    )
    assert (config.precision, config.channels_last, config.accumulate, config.warmup) == ("bf16", True, 4, 0.05)
    assert config.ema == 0.999 and config.schedule == "plateau" and config.terminate_on_nan
    assert RunConfig().with_overrides(["warmup=500"]).warmup == 500
    assert RunConfig().with_overrides(["ema=0"]).ema == 0.0


@pytest.mark.parametrize(
    "override,message",
    [
        ("precision=fp8", "precision must be one of fp32, bf16, fp16. Received: precision='fp8'"),
        ("accumulate=0", "accumulate must be >= 1"),
        ("warmup=1.5", "warmup must be a number of steps.*Received: warmup=1.5"),
        ("warmup=-3", "warmup must be"),
        ("warmup=soon", "warmup must be"),
        ("ema=1", r"ema must be a decay in \(0, 1\)"),
        ("clip_grad_norm=-1", "clip_grad_norm must be a finite number >= 0"),
        ("time_limit=.inf", "time_limit must be a finite number"),
        ("checkpoint_every=-1", "checkpoint_every must be >= 0"),
        ("save_top_k=-2", "save_top_k must be >= 0"),
        ("plateau_factor=2", r"plateau_factor must be in \(0, 1\)"),
        ("channels_last=maybe", "channels_last must be of type bool"),
        ("compile=1", "compile must be of type bool"),
        ("schedule=plateu", "Did you mean 'plateau'"),
    ],
)
def test_bad_engine_values_are_explained(override, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().with_overrides([override])


def test_clipping_by_norm_and_by_value_together_is_refused():
    with pytest.raises(ConfigError, match="clip_grad_norm or clip_grad_value, not both"):
        RunConfig().with_overrides(["clip_grad_norm=1", "clip_grad_value=0.5"])
