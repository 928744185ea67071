import json

import pytest
import torch

from glassnet.data import DataSpec
from glassnet.errors import CheckpointError, RunError
from glassnet.models import create_model, load_model, save_model
from glassnet.runs import RunDir

SPEC = DataSpec(modality="tabular", input_shape=(4,), task="classify", num_outputs=3, name="t")


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("mlp", SPEC, width=8)
    save_model(model, SPEC, tmp_path)
    return tmp_path, model


def test_saved_files_are_json_and_safetensors(saved):
    path, _ = saved
    record = json.loads((path / "model.json").read_text())
    assert record["format"] == "glassnet.model/1" and record["name"] == "mlp" and record["hparams"]["width"] == 8
    assert (path / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, JSON header


def test_round_trip_gives_identical_weights(saved):
    path, model = saved
    loaded, _ = load_model(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not loaded.training


def test_missing_run_directory(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_missing_weights(saved):
    path, _ = saved
    (path / "model.safetensors").unlink()
    with pytest.raises(RunError, match="model.safetensors missing"):
        load_model(path)


def test_truncated_weights(saved):
    path, _ = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(path)


def test_weights_of_another_architecture(saved, tmp_path_factory):
    path, _ = saved
    other = tmp_path_factory.mktemp("other")
    save_model(create_model("mlp", SPEC, width=16), SPEC, other)
    (path / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        load_model(path)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "pickle"}', "not a glassnet model file"),
        ('{"format": "glassnet.model/1", "name": "mlp", "hparams": {}}', "lacks a valid 'spec'"),
    ],
)
def test_corrupt_model_json(saved, text, message):
    path, _ = saved
    (path / "model.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_model_json_naming_an_unknown_model(saved):
    path, _ = saved
    record = json.loads((path / "model.json").read_text())
    record["name"] = "resnet9000"
    (path / "model.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot be built.*unknown model 'resnet9000'"):
        load_model(path)


def test_interrupted_write_keeps_the_previous_file(saved, monkeypatch):
    path, model = saved
    before = (path / "model.safetensors").read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, SPEC, path)
    assert (path / "model.safetensors").read_bytes() == before
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]
    assert RunDir(path).has_model()


def test_model_not_built_by_the_registry_cannot_be_saved(tmp_path):
    with pytest.raises(CheckpointError, match="create_model"):
        save_model(torch.nn.Linear(4, 3), SPEC, tmp_path)


def test_a_pretrained_model_reloads_without_its_weights_file(tmp_path, monkeypatch):
    # model.json says pretrained="imagenet"; reloading used to look for the .pth again
    import os

    if not os.environ.get("GLASSNET_DATA"):
        pytest.skip("needs weights/mobilenet_v2-b0353104.pth: set GLASSNET_DATA to ../shared/data")
    spec = DataSpec(modality="image", input_shape=(3, 32, 32), task="classify", num_outputs=4, name="small")
    model = create_model("mobilenet_v2", spec, pretrained="imagenet").eval()
    save_model(model, spec, tmp_path)
    monkeypatch.delenv("GLASSNET_DATA")
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "empty-cache"))
    loaded, _ = load_model(tmp_path)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
