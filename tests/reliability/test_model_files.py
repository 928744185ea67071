"""Issue 18, item 2 and its two cosmetic items: model sizes are bounded before anything is allocated
(on the command line and in a model.json received from someone else), a pickled checkpoint is refused
without torch's advice to unpickle it, and the weights file gets the permissions of the other files."""

from __future__ import annotations

import json
import os
import pickle
import time
import warnings

import numpy as np
import pytest
import torch
from reliability_checks import refused

from glassnet.data import DataSpec
from glassnet.errors import CheckpointError, ConfigError, DataError
from glassnet.models import create_model, load_model, model_info, save_model
from glassnet.models.registry import MAX_PARAMS_VARIABLE

TABLE = DataSpec(modality="tabular", input_shape=(30,), task="classify", num_outputs=2, name="tab")
IMAGE = {"modality": "image", "input_shape": [1, 8, 8], "input_mean": None, "input_std": None, "feature_names": []}
FAST = 15  # seconds: building what these files ask for would take minutes, or all the memory there is


class Payload:
    """An object that only a full unpickler would rebuild (by importing this module)."""


# --- sizes on the command line ---------------------------------------------------------------------


def test_train_refuses_a_billion_wide_model_at_once(capsys, tmp_path):
    start = time.perf_counter()
    args = ["train", "--data", "breast-cancer", "--model", "mlp", "--epochs", "1", "--quiet", "--out", tmp_path / "r"]
    refused(capsys, [*args, "model.width=1000000000"], "width=1000000000", "parameters", MAX_PARAMS_VARIABLE)
    assert time.perf_counter() - start < FAST


def test_describe_refuses_it_too(capsys):
    args = ["models", "--describe", "mlp", "--data", "breast-cancer", "model.width=1000000000"]
    refused(capsys, args, MAX_PARAMS_VARIABLE)


def test_describe_refuses_a_batch_too_large_to_measure(capsys):
    args = ["models", "--describe", "mlp", "--data", "breast-cancer", "--batch-size", "1000000000"]
    refused(capsys, args, "batch_size=1000000000", "smaller batch")


def test_a_million_layers_are_refused_before_any_is_built():
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="depth=1000000 builds 1,000,000 layers.*limit of 1000"):
        create_model("mlp", TABLE, depth=1_000_000)
    assert time.perf_counter() - start < 1


def test_the_limit_can_be_raised_and_lowered(monkeypatch):
    monkeypatch.setenv(MAX_PARAMS_VARIABLE, "1000")
    with pytest.raises(ConfigError, match=f"would have 1,058 parameters.*{MAX_PARAMS_VARIABLE} to at least 1058"):
        create_model("mlp", TABLE, width=32, depth=1)
    monkeypatch.setenv(MAX_PARAMS_VARIABLE, "1.1e3")
    assert sum(p.numel() for p in create_model("mlp", TABLE, width=32, depth=1).parameters()) == 1058
    monkeypatch.setenv(MAX_PARAMS_VARIABLE, "lots")
    with pytest.raises(ConfigError, match=f"{MAX_PARAMS_VARIABLE} must be a positive number"):
        create_model("mlp", TABLE)


def test_counting_first_leaves_the_weights_and_the_generators_as_they_were():
    info = model_info("mlp")
    torch.manual_seed(3)
    expected = info.builder(TABLE, **info.defaults()).state_dict()
    next_draw = torch.rand(1)
    torch.manual_seed(3)
    built = create_model("mlp", TABLE).state_dict()
    assert all(torch.equal(expected[k], built[k]) for k in expected)
    assert torch.equal(torch.rand(1), next_draw)


# --- sizes and types in a model.json received from someone else ---------------------------------------


def cnn(hparams):
    """A cnn record on 1 x 8 x 8 images (cnn does not take the run's table)."""
    return lambda record: (record.update(name="cnn", hparams=hparams), record["spec"].update(IMAGE))


HOSTILE = {
    "width": (lambda r: r["hparams"].update(width=10**9), ["width=1000000000", MAX_PARAMS_VARIABLE]),
    "depth": (lambda r: r["hparams"].update(depth=10**6), ["depth=1000000", "limit of 1000"]),
    "hidden": (cnn({"hidden": 10**9}), ["hidden=1000000000", MAX_PARAMS_VARIABLE]),
    "channels": (cnn({"channels": [10**6, 10**6]}), ["channels=[1000000, 1000000]", MAX_PARAMS_VARIABLE]),
    "resnet-blocks": (
        lambda r: (r.update(name="resnet", hparams={"depth": [10**6]}), r["spec"].update(IMAGE)),
        ["depth=[1000000]", "limit of 1000"],
    ),
    "input_shape": (lambda r: r["spec"].update(input_shape=[10**6, 10**6]), ["input_shape", "268,435,456"]),
    "input_shape-stats": (lambda r: r["spec"].update(input_shape=[10**5]), ["input_mean", "100000"]),
    "wrong-type": (lambda r: r["hparams"].update(width="abc"), ["width must be an integer", "'abc'"]),
    "nested-list": (lambda r: r["hparams"].update(width=[[1, 2], [3]]), ["'width'", "flat list"]),
    "not-finite": (lambda r: r["hparams"].update(dropout=float("nan")), ["dropout must be a finite number"]),
    "class-names": (lambda r: r["spec"].update(class_names=[1, 2]), ["class_names must be a list of strings"]),
    "num-outputs": (lambda r: r["spec"].update(num_outputs="2"), ["num_outputs must be an integer"]),
    "negative-shape": (lambda r: r["spec"].update(input_shape=[-3]), ["input_shape must be"]),
    "extra": (lambda r: r["spec"].update(extra=[1]), ["extra must be a mapping"]),
    "name": (lambda r: r.update(name="mlpp"), ["unknown model 'mlpp'"]),
}


def damage(run, change) -> None:
    record = json.loads((run / "model.json").read_text())
    change(record)
    (run / "model.json").write_text(json.dumps(record))


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_model_json_is_refused_by_evaluate_at_once(case, run_copy, capsys):
    change, fragments = HOSTILE[case]
    damage(run_copy, change)
    start = time.perf_counter()
    refused(capsys, ["evaluate", run_copy], "model.json", *fragments)
    assert time.perf_counter() - start < FAST


@pytest.mark.parametrize("case", ["width", "depth", "channels", "wrong-type"])
def test_report_predict_and_load_refuse_it_too(case, run_copy, capsys, tmp_path):
    change, fragments = HOSTILE[case]
    damage(run_copy, change)
    refused(capsys, ["report", run_copy], "model.json", *fragments)
    np.save(tmp_path / "x.npy", np.zeros((2, 30), dtype=np.float32))
    refused(capsys, ["predict", run_copy, tmp_path / "x.npy"], "model.json", *fragments)
    with pytest.raises(CheckpointError, match="model.json"):
        load_model(run_copy)


def test_deeply_nested_json_is_refused(run_copy, capsys):
    (run_copy / "model.json").write_text("[" * 200_000)
    refused(capsys, ["evaluate", run_copy], "model.json", "not valid JSON")


def test_an_untouched_model_json_still_loads(run_copy):
    model, spec = load_model(run_copy)
    assert spec.input_shape == (30,) and model(torch.zeros(1, 30)).shape == (1, 2)


# --- cosmetic (a): a pickled object in a file glassnet torch.loads ----------------------------------


def no_unpickling_advice(err: str) -> None:
    assert "holds Python objects that glassnet will not unpickle" in err
    assert "weights_only" not in err and "Weights only" not in err and "trusted source" not in err


def test_a_pickled_checkpoint_is_refused_without_advice_to_unpickle_it(run_copy, capsys):
    (run_copy / "checkpoints" / "last.pt").write_bytes(pickle.dumps({"format": 2, "x": Payload()}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # torch warns "Detected pickle protocol 4" while it reads one
        err = refused(capsys, ["train", "--resume", run_copy, "--quiet"], "last.pt", "Delete it")
    no_unpickling_advice(err)
    assert not [w for w in caught if "pickle" in str(w.message)]


def test_a_zipped_checkpoint_with_an_object_is_refused_the_same_way(run_copy, capsys):
    torch.save({"format": 2, "x": Payload()}, run_copy / "checkpoints" / "last.pt")
    no_unpickling_advice(refused(capsys, ["train", "--resume", run_copy, "--quiet"], "last.pt"))


def test_a_pickled_mobilenet_checkpoint_is_refused_the_same_way(monkeypatch, tmp_path):
    from glassnet.models.mobilenet import WEIGHTS_FILE, MobileNetV2, load_imagenet_weights

    (tmp_path / WEIGHTS_FILE).parent.mkdir(parents=True)
    (tmp_path / WEIGHTS_FILE).write_bytes(pickle.dumps({"features.0.0.weight": Payload()}))
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(DataError) as error:
        load_imagenet_weights(MobileNetV2(in_channels=3, num_classes=10), keep_classifier=False)
    no_unpickling_advice(str(error.value))
    assert "\n" not in str(error.value)


# --- cosmetic (b): the weights file's permissions ------------------------------------------------------


def test_the_weights_file_gets_the_permissions_of_the_other_files(tmp_path):
    umask = os.umask(0o022)
    try:
        save_model(create_model("mlp", TABLE, width=4), TABLE, tmp_path / "run")
    finally:
        os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert modes == {"model.json": 0o644, "model.safetensors": 0o644}
