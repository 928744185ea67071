"""`glassnet predict` warns in plain words when inputs lie far outside the training data."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.cli.main import main
from glassnet.config import RunConfig
from glassnet.data.bundle import bundle_from_arrays
from glassnet.data.modality import check_input_range


@pytest.fixture(scope="module")
def cancer_run(tmp_path_factory):
    """A breast-cancer MLP trained for one epoch (its spec records the training range of every feature)."""
    out = tmp_path_factory.mktemp("range") / "run"
    return gn.train(RunConfig(data="breast-cancer", model="mlp", epochs=1, baseline=False), out=out).path


def test_the_training_range_of_each_feature_is_recorded(cancer_run):
    spec = gn.load(cancer_run).spec
    train = gn.load(cancer_run).split("train")[0]
    recorded = spec.extra["input_range"]
    assert recorded["min"] == pytest.approx(train.amin(dim=0).tolist())
    assert recorded["max"] == pytest.approx(train.amax(dim=0).tolist())


def test_random_inputs_are_flagged_with_the_features_and_how_far_out(cancer_run, tmp_path):
    inputs = tmp_path / "random.npy"
    np.save(inputs, np.random.default_rng(0).random((4, 30)))
    with pytest.warns(UserWarning, match=r"4 of 4 inputs lie far outside the training data") as caught:
        records = gn.predict(cancer_run, [str(inputs)])
    message = str(caught[0].message)
    assert "features lie outside the training range (" in message and "trained on" in message
    assert "predictions may be meaningless" in message
    assert [r["in_range"] for r in records] == [False] * 4


def test_real_test_rows_are_silent_and_their_records_unchanged(cancer_run, tmp_path):
    rows = tmp_path / "test.npy"
    np.save(rows, gn.load(cancer_run).split("test")[0].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = gn.predict(cancer_run, [str(rows)])
        split_records = gn.predict(cancer_run, data="breast-cancer", limit=20)
    assert all("in_range" not in r for r in records + split_records)


def test_the_command_line_warns_and_writes_in_range(cancer_run, tmp_path, capsys):
    inputs, output = tmp_path / "one.npy", tmp_path / "predictions.json"
    np.save(inputs, np.random.default_rng(1).random((1, 30)))
    with pytest.warns(
        UserWarning, match=r"^\d+ of 30 features lie outside the training range \(.*trained on"
    ) as caught:
        assert main(["predict", str(cancer_run), str(inputs), "--output", str(output)]) == 0
    assert str(caught[0].message).endswith("; the prediction may be meaningless")
    assert "in_range" in capsys.readouterr().out.splitlines()[0].split()  # the printed table has the column
    assert json.loads(output.read_text())[0]["in_range"] is False


def test_runs_without_a_recorded_range_compare_with_mean_and_deviation(cancer_run):
    spec = gn.load(cancer_run).spec
    older = dataclasses.replace(spec, extra={})
    check = check_input_range(older, torch.rand(3, 30))
    assert check.in_range == [False] * 3 and "training mean" in check.details[0]
    assert check_input_range(older, gn.load(cancer_run).split("test")[0]).all_in_range


def test_run_predict_carries_class_names(cancer_run):
    run = gn.load(cancer_run)
    x = run.split("test")[0][:5]
    predictions = run.predict(x)
    assert predictions.class_names == ("malignant", "benign")
    assert predictions.labels == [run.spec.class_names[int(i)] for i in predictions.prediction]


def test_images_outside_zero_one_or_far_from_the_training_brightness_are_flagged():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, size=(40, 1, 8, 8)).astype(np.float32)
    x[:, :, :4, :4] += 0.5
    bundle = bundle_from_arrays(
        x, np.arange(40) % 2, name="dim", modality="image", task="classify", class_names=("a", "b")
    )
    spec, test = bundle.spec, bundle.test.tensors[0]
    assert check_input_range(spec, test).all_in_range
    eight_bit = check_input_range(spec, test * 255)
    assert not any(eight_bit.in_range) and "divide 8-bit images by 255" in eight_bit.details[0]
    bright = check_input_range(spec, torch.ones(2, 1, 8, 8))
    assert bright.in_range == [False, False] and "mean brightness" in bright.details[0]


def test_text_inputs_are_not_checked(make_key_token_bundle):
    bundle = make_key_token_bundle(40)
    assert check_input_range(bundle.spec, bundle.test.tensors[0]).all_in_range
