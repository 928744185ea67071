import json
import math
import os

import numpy as np
import pytest
import torch

from glassnet.errors import RunError
from glassnet.runs import RunDir, atomic_write, to_jsonable, write_json


def test_write_json_is_strict_and_converts_tensors(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": torch.tensor([1.5, 2.0]), "b": np.float32(0.25), "c": math.nan, "d": (1, 2)})
    assert json.loads(path.read_text()) == {"a": [1.5, 2.0], "b": 0.25, "c": None, "d": [1, 2]}


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def fail(tmp):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_written_files_have_ordinary_permissions(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_results_round_trip_and_absent_stage_is_none(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_result("explain") is None
    run.write_result("train", {"test": {"accuracy": 0.9}})
    assert run.read_result("train") == {"test": {"accuracy": 0.9}}


def test_corrupt_result_names_the_file(tmp_path):
    run = RunDir(tmp_path)
    run.results_dir.mkdir()
    run.result_file("train").write_text("{")
    with pytest.raises(RunError, match="train.json"):
        run.read_result("train")


def test_require_model_says_what_is_missing(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        RunDir(tmp_path / "x").require_model()
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(RunError, match="model.safetensors missing"):
        RunDir(tmp_path).require_model()
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(RunError, match="is a file"):
        RunDir(file).require_model()


def test_to_jsonable_handles_nested_values():
    assert to_jsonable({"x": [np.int64(3), {"y": torch.tensor(1)}]}) == {"x": [3, {"y": 1}]}
