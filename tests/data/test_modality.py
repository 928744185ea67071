"""One ``Modality`` per kind of input: the registry, each built-in modality's answers on small tensors, and a
modality registered in a test that the data spec, explain and attack pick up without other code changing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassnet.data import modality as modality_module
from glassnet.data.modality import MODALITIES, TEXT_PAD, TEXT_UNK, Modality, get_modality, register_modality
from glassnet.data.spec import DataSpec
from glassnet.data.text import PAD_INDEX, UNK_INDEX
from glassnet.errors import ConfigError, DataError, UnknownNameError

IMAGE = DataSpec(
    modality="image", input_shape=(3, 4, 5), task="classify", num_outputs=2, input_mean=(0.5, 0.4, 0.3),
    input_std=(0.2, 0.2, 0.2),
)  # fmt: skip
TABLE = DataSpec(
    modality="tabular", input_shape=(3,), task="classify", num_outputs=2, input_mean=(1.0, 2.0, 3.0),
    input_std=(0.5, 1.0, 2.0), feature_names=("a", "b", "c"),
)  # fmt: skip
SERIES = DataSpec(
    modality="sequence", input_shape=(4, 2), task="regress", num_outputs=1, input_mean=(1.0, -1.0),
    input_std=(2.0, 3.0), feature_names=("x", "y"),
)  # fmt: skip
AUDIO = DataSpec(
    modality="audio", input_shape=(2, 3, 4), task="classify", num_outputs=2, input_mean=(-4.0, 1.0),
    input_std=(2.0, 0.5),
)  # fmt: skip
TEXT = DataSpec(
    modality="text", input_shape=(5,), task="classify", num_outputs=2,
    extra={"vocab": ["<pad>", "<unk>", "good", "bad", "film"]},
)  # fmt: skip


# --- registry --------------------------------------------------------------------------------------


def test_the_built_in_modalities_are_registered_in_order():
    assert tuple(MODALITIES) == ("image", "tabular", "text", "sequence", "audio")
    assert MODALITIES == ("image", "tabular", "text", "sequence", "audio")
    assert "audio" in MODALITIES and "video" not in MODALITIES
    for name in MODALITIES:
        assert isinstance(get_modality(name), Modality) and get_modality(name).name == name


def test_an_unknown_modality_is_refused_with_a_suggestion():
    with pytest.raises(UnknownNameError, match=r"unknown modality 'imag'\. Did you mean 'image'\?"):
        get_modality("imag")
    with pytest.raises(DataError, match="modality must be one of image, tabular, text, sequence, audio"):
        DataSpec(modality="video", input_shape=(3,), task="classify", num_outputs=2)


def test_registering_twice_or_a_non_modality_is_refused(monkeypatch):
    monkeypatch.setattr(modality_module, "_REGISTRY", dict(modality_module._REGISTRY))
    with pytest.raises(ValueError, match="'image' is registered twice"):
        register_modality(type(get_modality("image")))
    with pytest.raises(ValueError, match="has no name"):
        register_modality(Modality())
    with pytest.raises(TypeError, match="Modality subclass or instance"):
        register_modality("graph")  # type: ignore[arg-type]


def test_text_ids_match_the_text_encoder():
    assert (TEXT_PAD, TEXT_UNK) == (PAD_INDEX, UNK_INDEX)


def test_every_built_in_picture_kind_is_drawable():
    from glassnet.explain import pictures

    for name in MODALITIES:
        kind = get_modality(name).picture
        assert kind is None or kind in pictures._KINDS, (name, kind)


# --- baselines -------------------------------------------------------------------------------------


def test_baselines_with_no_signal():
    assert torch.equal(get_modality("image").baseline(IMAGE), torch.zeros(1, 3, 4, 5))  # black, not the mean
    assert torch.equal(get_modality("tabular").baseline(TABLE), torch.tensor([[1.0, 2.0, 3.0]]))
    series = get_modality("sequence").baseline(SERIES)
    assert series.shape == (1, 4, 2) and torch.equal(series[0, :, 0], torch.ones(4))
    assert torch.equal(series[0, :, 1], -torch.ones(4))  # channels on the last axis
    audio = get_modality("audio").baseline(AUDIO)
    assert audio.shape == (1, 2, 3, 4) and bool((audio[0, 0] == -4).all()) and bool((audio[0, 1] == 1).all())
    text = get_modality("text").baseline(TEXT)
    assert text.dtype == torch.long and torch.equal(text, torch.full((1, 5), TEXT_PAD))
    plain = DataSpec(modality="tabular", input_shape=(3,), task="regress", num_outputs=1)
    assert torch.equal(get_modality("tabular").baseline(plain), torch.zeros(1, 3))


def test_masking_keeps_padding_and_hides_tokens():
    ids = torch.tensor([[2, 3, 4, 0, 0]])
    masked = get_modality("text").masking_baseline(ids, get_modality("text").baseline(TEXT))
    assert torch.equal(masked, torch.tensor([[TEXT_UNK, TEXT_UNK, TEXT_UNK, TEXT_PAD, TEXT_PAD]]))
    x = torch.randn(2, 3)
    assert torch.equal(get_modality("tabular").masking_baseline(x, torch.zeros(1, 3)), torch.zeros(2, 3))


# --- noise scale -----------------------------------------------------------------------------------


def test_noise_scales():
    x = torch.tensor([[0.0, 0.5], [0.25, 0.75]]).reshape(1, 1, 2, 2).expand(2, 3, 2, 2)
    assert float(get_modality("image").noise_scale(IMAGE, x)) == 0.75  # the spread, whatever the channel stds
    assert float(get_modality("image").noise_scale(IMAGE, torch.ones(2, 3, 4, 5))) == 1.0  # constant: no spread
    assert torch.equal(get_modality("tabular").noise_scale(TABLE, torch.zeros(2, 3)), torch.tensor([[0.5, 1.0, 2.0]]))
    assert torch.equal(get_modality("sequence").noise_scale(SERIES, torch.zeros(2, 4, 2)), torch.tensor([[[2.0, 3.0]]]))
    assert get_modality("audio").noise_scale(AUDIO, torch.zeros(2, 2, 3, 4)).shape == (1, 2, 1, 1)


def test_only_tables_and_series_rescale_gradients():
    assert torch.equal(get_modality("tabular").per_unit_scale(TABLE, torch.zeros(2, 3)), torch.tensor([[0.5, 1, 2]]))
    assert get_modality("sequence").per_unit_scale(SERIES, torch.zeros(2, 4, 2)).shape == (1, 1, 2)
    assert get_modality("image").per_unit_scale(IMAGE, torch.zeros(2, 3, 4, 5)) is None
    assert get_modality("audio").per_unit_scale(AUDIO, torch.zeros(2, 2, 3, 4)) is None
    assert get_modality("text").per_unit_scale(TEXT, torch.zeros(2, 5, dtype=torch.long)) is None


# --- units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["image", "audio"])
def test_the_channels_of_a_pixel_form_one_unit(name):
    kind = get_modality(name)
    values = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert torch.equal(kind.unit_view(values), values.sum(dim=1).flatten(1))
    x = torch.zeros(2, 3, 2, 2)
    x[0, 2, 1, 1] = 1.0  # one channel of one pixel differs from the baseline
    valid = kind.valid_units(x, torch.zeros(1, 3, 2, 2))
    assert valid.shape == (2, 4) and valid.sum() == 1 and bool(valid[0, 3])
    chosen = torch.tensor([[False, False, False, True], [True, False, False, False]])
    replaced = kind.replace_units(torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2), chosen)
    assert bool((replaced[0, :, 1, 1] == 0).all()) and bool((replaced[1, :, 0, 0] == 0).all())
    assert int((replaced == 0).sum()) == 6  # every channel of the two chosen pixels, nothing else


@pytest.mark.parametrize("name,shape", [("tabular", (2, 3)), ("sequence", (2, 4, 2)), ("text", (2, 5))])
def test_other_modalities_count_every_value_as_a_unit(name, shape):
    kind = get_modality(name)
    values = torch.randn(shape)
    assert torch.equal(kind.unit_view(values), values.flatten(1))
    chosen = torch.zeros(shape[0], values[0].numel(), dtype=torch.bool)
    chosen[0, 0] = True
    replaced = kind.replace_units(torch.ones(shape), torch.zeros(shape), chosen)
    assert int((replaced == 0).sum()) == 1 and float(replaced.flatten()[0]) == 0


def test_feature_masks_and_windows_group_units():
    image, used = get_modality("image").feature_mask((3, 16, 16), "cpu")
    assert image.shape == (1, 3, 16, 16) and used == {"block": 2} and int(image.max()) == 63
    assert torch.equal(image[0, 0], image[0, 2])  # the channels of a block are one feature
    series, _ = get_modality("sequence").feature_mask((4, 2), "cpu")
    assert torch.equal(series[0], torch.tensor([[0, 0], [1, 1], [2, 2], [3, 3]]))
    table, used = get_modality("tabular").feature_mask((3,), "cpu")
    assert torch.equal(table, torch.tensor([[0, 1, 2]])) and used == {}
    assert get_modality("image").occlusion_window((3, 28, 28)) == ((3, 4, 4), (3, 2, 2))
    assert get_modality("sequence").occlusion_window((32, 2)) == ((2, 2), (1, 2))
    assert get_modality("text").occlusion_window((5,)) == ((1,), (1,))


# --- continuity, attack boxes, views ---------------------------------------------------------------


def test_only_text_is_not_continuous():
    assert [name for name in MODALITIES if not get_modality(name).continuous] == ["text"]
    assert get_modality("text").not_continuous == "token ids cannot be perturbed by small amounts"
    assert get_modality("text").positional and not get_modality("tabular").positional


def test_input_boxes():
    lower, upper, source = get_modality("image").input_box(IMAGE)
    assert torch.equal(lower, torch.zeros(3, 4, 5)) and torch.equal(upper, torch.ones(3, 4, 5))
    assert source == "pixels in [0, 1]"
    train = torch.tensor([[0.0, 1.0, 2.0], [1.0, 3.0, 2.0]])
    lower, upper, source = get_modality("tabular").input_box(TABLE, train, torch.tensor([[-1.0, 2.0, 2.0]]))
    assert torch.equal(lower, torch.tensor([-1.0, 1.0, 2.0])) and torch.equal(upper, torch.tensor([1.0, 3.0, 2.0]))
    assert source == "per-feature range of the training data"
    _, _, source = get_modality("audio").input_box(AUDIO, torch.rand(4, 2, 3, 4))
    assert source == "values in [0, 1]"
    with pytest.raises(ConfigError, match="need training data"):
        get_modality("sequence").input_box(SERIES)
    with pytest.raises(ConfigError, match=r"token ids, not a continuous range; use the embedding-space attack"):
        get_modality("text").input_box(TEXT, torch.zeros(2, 5, dtype=torch.long))


def test_views_of_an_explanation():
    values = torch.tensor([[0.1, -2.0, 0.5], [0.3, -1.0, 0.1]])
    features = get_modality("tabular").explanation_views(TABLE, torch.zeros(2, 3), values, 8)["features"]
    assert [f["feature"] for f in features] == ["b", "c", "a"] and features[0]["mean_attribution"] == -1.5
    top = get_modality("tabular").example_view(TABLE, torch.tensor([5.0, 6.0, 7.0]), values[0])["top_features"]
    assert top[0] == {"feature": "b", "value": 6.0, "attribution": -2.0}
    ids = torch.tensor([[2, 4, 0, 0, 0], [3, 4, 2, 0, 0]])
    scores = torch.tensor([[1.0, 0.5, 0, 0, 0], [-1.0, 0.5, 3.0, 0, 0]])
    text = get_modality("text").explanation_views(TEXT, ids, scores, 1)
    assert text["examples"] == [{"index": 0, "tokens": ["good", "film"], "scores": [1.0, 0.5]}]
    assert text["top_tokens"][0] == {"token": "good", "mean_attribution": 2.0, "count": 2}
    series = get_modality("sequence").explanation_views(SERIES, torch.zeros(1, 4, 2), torch.ones(1, 4, 2), 8)
    assert series["per_time_step"] == [2.0] * 4 and series["per_channel"][1] == {"channel": "y", "mean_abs": 4.0}
    audio = get_modality("audio").explanation_views(AUDIO, torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4), 8)
    assert audio == {"per_frequency_band": [8.0] * 3, "per_time_step": [6.0] * 4}
    assert get_modality("image").explanation_views(IMAGE, torch.zeros(1, 3, 4, 5), torch.ones(1, 3, 4, 5), 8) == {}


# --- a new modality --------------------------------------------------------------------------------


class Graph(Modality):
    """A toy modality: the features of a graph's nodes, ``nodes x features``, each value one unit."""

    name = "graph"

    def statistic(self, spec, values):
        return torch.tensor(values, dtype=torch.float32).reshape(1, 1, -1)  # one statistic per node feature

    def explanation_views(self, spec, inputs, values, shown):
        return {"per_node": [round(float(v), 6) for v in values.abs().sum(dim=2).mean(dim=0)]}


@pytest.fixture
def graph(monkeypatch):
    """``graph`` registered for one test only (the registry is restored afterwards)."""
    monkeypatch.setattr(modality_module, "_REGISTRY", dict(modality_module._REGISTRY))
    register_modality(Graph)
    return get_modality("graph")


def test_a_registered_modality_is_picked_up_everywhere(graph):
    from glassnet.explain import explain, trust
    from glassnet.robustness import input_bounds

    assert isinstance(graph, Graph) and tuple(MODALITIES)[-1] == "graph" and "graph" in MODALITIES
    spec = DataSpec(modality="graph", input_shape=(3, 2), task="classify", num_outputs=2, input_mean=(1.0, 2.0))
    assert torch.equal(graph.baseline(spec), torch.tensor([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]]))
    x = torch.randn(4, 3, 2)
    assert trust.unit_view(x, "graph").shape == (4, 6)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2)).eval()
    result = explain(model, x, "feature_ablation", modality="graph")
    assert result.values.shape == x.shape and result.per_unit().shape == x.shape
    assert graph.explanation_views(spec, x, result.values, 8)["per_node"]
    bounds = input_bounds(spec, x)
    assert torch.equal(bounds.lower, x.amin(dim=0)) and torch.equal(bounds.upper, x.amax(dim=0))


def test_a_test_modality_does_not_outlive_its_test():
    assert "graph" not in MODALITIES
    with pytest.raises(UnknownNameError):
        get_modality("graph")
