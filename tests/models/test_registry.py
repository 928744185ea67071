import pytest
import torch

from glassnet.data import DataSpec
from glassnet.errors import ConfigError, UnknownNameError
from glassnet.models import count_parameters, create_model, list_models, register_model, summarize

IMAGE = DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=10, name="digits")
TABLE = DataSpec(modality="tabular", input_shape=(30,), task="classify", num_outputs=2, name="breast-cancer")


def test_list_models_by_wildcard_and_by_data():
    assert {"cnn", "mlp"} <= set(list_models())
    assert list_models("cnn*") == ["cnn", "cnn1d"]
    assert "cnn" not in list_models(spec=TABLE) and "mlp" in list_models(spec=TABLE)


def test_create_model_records_all_hyperparameters():
    model = create_model("mlp", TABLE, width=16)
    assert model.glassnet_arch["name"] == "mlp"
    assert model.glassnet_arch["hparams"]["width"] == 16 and "depth" in model.glassnet_arch["hparams"]


def test_unknown_model_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'mlp'"):
        create_model("mpl", TABLE)


def test_unknown_hyperparameter_quotes_it_and_lists_the_real_ones():
    with pytest.raises(ConfigError, match=r"no hyper-parameter 'widht'.*Did you mean 'width'.*depth=2"):
        create_model("mlp", TABLE, widht=3)


@pytest.mark.parametrize(
    "name,spec,hparams,message",
    [
        ("mlp", TABLE, {"width": 0}, "width must be a positive integer. Received: width=0"),
        ("mlp", TABLE, {"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
        ("mlp", TABLE, {"activation": "swish"}, "activation must be one of"),
        ("mlp", TABLE, {"norm": "group"}, "norm must be one of"),
        ("cnn", IMAGE, {"kernel_size": 4}, "kernel_size must be a positive odd integer"),
        ("cnn", IMAGE, {"channels": []}, "at least one convolution block"),
    ],
)
def test_bad_hyperparameter_values_are_quoted(name, spec, hparams, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, spec, **hparams)


def test_model_that_does_not_fit_the_data_names_the_ones_that_do():
    with pytest.raises(ConfigError, match=r"'cnn' takes image/audio data.*Models that fit it: mlp"):
        create_model("cnn", TABLE)


def test_registering_a_name_twice_fails():
    with pytest.raises(ValueError, match="twice"):
        register_model("mlp", modalities=("tabular",))(lambda spec: torch.nn.Identity())


def test_standardisation_is_the_first_layer():
    spec = DataSpec(
        modality="tabular", input_shape=(2,), task="classify", num_outputs=2, input_mean=(10, 20), input_std=(2, 4)
    )
    model = create_model("mlp", spec, depth=0, dropout=0.0)
    standardize = model[0]
    torch.testing.assert_close(standardize(torch.tensor([[12.0, 16.0]])), torch.tensor([[1.0, -1.0]]))


def test_summary_lists_layers_shapes_and_parameters():
    model = create_model("cnn", IMAGE, channels=[8, 16], hidden=32)
    summary = summarize(model, IMAGE)
    assert summary["parameters"] == count_parameters(model) == sum(r["parameters"] for r in summary["layers"])
    convs = [r for r in summary["layers"] if r["type"] == "Conv2d"]
    assert [c["output_shape"] for c in convs] == [[8, 8, 8], [16, 4, 4]]
    assert summary["layers"][-1]["output_shape"] == [10]


@pytest.mark.parametrize("task", ["regress", "forecast"])
def test_regression_and_forecast_heads_predict_in_natural_units(task):
    # forecast heads used to skip the rescaling and predicted standardised values
    from glassnet.models.layers import Rescale

    spec = DataSpec(
        modality="sequence", input_shape=(6, 1), task=task, num_outputs=2, target_mean=(300.0, 300.0),
        target_std=(10.0, 10.0),
    )  # fmt: skip
    for name in list_models(spec=spec):
        assert any(isinstance(m, Rescale) for m in create_model(name, spec).modules()), name
