import numpy as np
import pytest
import torch

from glassnet.data import DataSpec, list_datasets, load_dataset
from glassnet.errors import ConfigError, DataError, UnknownNameError


def test_list_datasets_names_and_describes_each():
    infos = {d.name: d for d in list_datasets()}
    assert {"digits", "breast-cancer", "diabetes"} <= set(infos)
    assert infos["digits"].task == "classify" and infos["digits"].modality == "image"
    assert all(d.size and d.source and d.description for d in infos.values())


def test_digits_are_images_in_unit_range_with_stratified_disjoint_splits():
    bundle = load_dataset("digits")
    spec = bundle.spec
    assert spec.input_shape == (1, 8, 8) and spec.num_outputs == 10 and spec.task == "classify"
    x_train, y_train = bundle.train.tensors
    assert x_train.dtype == torch.float32 and x_train.min() >= 0 and x_train.max() <= 1
    sizes = [len(bundle.train), len(bundle.val), len(bundle.test)]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == 270
    counts = torch.bincount(bundle.test.tensors[1], minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28  # ~27 per class: stratified


def test_split_seed_changes_the_split_but_not_the_data():
    a, b = load_dataset("digits", split_seed=0), load_dataset("digits", split_seed=1)
    assert not torch.equal(a.test.tensors[0], b.test.tensors[0])
    again = load_dataset("digits", split_seed=0)
    assert torch.equal(a.test.tensors[0], again.test.tensors[0])


def test_breast_cancer_keeps_natural_units_and_fits_statistics_on_train_only():
    bundle = load_dataset("breast-cancer")
    spec = bundle.spec
    assert spec.modality == "tabular" and spec.input_shape == (30,)
    assert spec.class_names == ("malignant", "benign") and len(spec.feature_names) == 30
    x_train = bundle.train.tensors[0]
    np.testing.assert_allclose(spec.input_mean, x_train.mean(0).numpy(), rtol=1e-5)
    everything = torch.cat([bundle.train.tensors[0], bundle.val.tensors[0], bundle.test.tensors[0]])
    assert not np.allclose(spec.input_mean, everything.mean(0).numpy(), rtol=1e-4)
    assert x_train[:, 3].max() > 100  # 'mean area' stays in square micrometres, not standardised


def test_diabetes_is_a_regression_task_with_target_statistics():
    bundle = load_dataset("diabetes")
    assert bundle.spec.task == "regress" and bundle.spec.num_outputs == 1
    assert bundle.train.tensors[1].shape[1] == 1
    assert bundle.spec.target_mean[0] == pytest.approx(bundle.train.tensors[1].mean().item(), rel=1e-5)


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'") as info:
        load_dataset("digit")
    assert "breast-cancer" in str(info.value)


def test_unknown_loader_option_lists_the_options():
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", valfraction=0.2)


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_summary_counts_classes_per_split():
    summary = load_dataset("breast-cancer").summary()
    assert summary["splits"]["test"]["size"] == sum(summary["splits"]["test"]["class_counts"])
    assert summary["class_names"] == ["malignant", "benign"]


def test_spec_round_trips_through_a_dict():
    spec = load_dataset("digits").spec
    assert DataSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "change,message",
    [({"modality": "video"}, "modality"), ({"task": "cluster"}, "task"), ({"input_shape": [0, 3]}, "input_shape")],
)
def test_spec_rejects_bad_values(change, message):
    values = load_dataset("digits").spec.to_dict() | change
    with pytest.raises(DataError, match=message):
        DataSpec.from_dict(values)
