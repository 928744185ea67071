"""data.unlabelled=PATH: a user's unlabelled files as the pool of semi-supervised and contrastive runs."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from glassnet.cli import main
from glassnet.data import load_dataset
from glassnet.data.semi import UNKNOWN, with_unlabelled
from glassnet.errors import ConfigError, DataError
from glassnet.train.contrastive import contrastive_bundle
from glassnet.train.semi import PseudoLabelMonitor

PREFIX = "glassnet: error:"


def run_cli(capsys, args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def pool_folder(tmp_path):
    """12 PNGs of another size and colour mode in a class-like subfolder, 5 more in a .npy, a hidden file."""
    folder = tmp_path / "pool"
    (folder / "whatever").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "whatever" / f"{i}.png")
    np.save(folder / "more.npy", rng.random((5, 1, 8, 8)).astype(np.float32))
    (folder / ".DS_Store").write_bytes(b"\0\1")
    return folder


def test_a_folder_becomes_the_pool_converted_to_the_datas_shape(pool_folder):
    bundle = load_dataset("digits", unlabelled=str(pool_folder))
    pool = bundle.unlabelled
    assert len(pool) == 17 and tuple(pool.tensors[0].shape[1:]) == bundle.spec.input_shape
    assert pool.tensors[0].dtype == bundle.train.tensors[0].dtype
    assert pool.tensors[0].min() >= 0 and pool.tensors[0].max() <= 1
    assert bool((pool.tensors[1] == UNKNOWN).all())
    assert len(bundle.train) == len(load_dataset("digits").train)  # every label stays
    assert bundle.info["unlabelled_files"] == 13 and bundle.info["unlabelled_with_held_back_labels"] == 0


def test_with_labels_per_class_the_files_join_the_held_back_pool(pool_folder):
    bundle = load_dataset("digits", labels_per_class=5, unlabelled=str(pool_folder))
    held_back = len(load_dataset("digits").train) - 50
    assert len(bundle.train) == 50 and len(bundle.unlabelled) == held_back + 17
    assert bundle.info["unlabelled_with_held_back_labels"] == held_back
    assert int((bundle.unlabelled.tensors[1] == UNKNOWN).sum()) == 17


def test_what_cannot_be_a_pool_is_refused(tmp_path, pool_folder):
    digits = load_dataset("digits")
    with pytest.raises(DataError, match="not found"):
        with_unlabelled(digits, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        with_unlabelled(digits, tmp_path / "empty")
    sound = tmp_path / "sounds" / "a.wav"
    sound.parent.mkdir()
    with wave.open(str(sound), "wb") as handle:
        handle.setnchannels(1), handle.setsampwidth(2), handle.setframerate(8000)
        handle.writeframes(b"\0\0" * 800)
    with pytest.raises(DataError, match=r"unlabelled data: .*a\.wav.*image data"):  # another modality
        with_unlabelled(digits, sound.parent)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(DataError, match="wrong.npy"):
        with_unlabelled(digits, wrong)
    with pytest.raises(ConfigError, match="classification dataset"):
        load_dataset("diabetes", unlabelled=str(pool_folder))
    with pytest.raises(ConfigError, match="folder or a file"):
        with_unlabelled(digits, 3)


class _Trainer:
    step, precision, device, eval_batch_size = None, "fp32", torch.device("cpu"), 64


def test_the_monitor_measures_accuracy_only_where_a_label_was_held_back():
    inputs = torch.eye(4)
    model = torch.nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[9.0, 9, 0, 0], [0, 0, 9, 9]]))  # inputs 0, 1 -> class 0; 2, 3 -> class 1
    mixed = PseudoLabelMonitor(TensorDataset(inputs, torch.tensor([0, 1, UNKNOWN, UNKNOWN])))
    row = mixed.measure(_Trainer(), model, (0.9,))[0]
    assert row["coverage"] == 1.0 and row["pseudo_accuracy"] == 0.5 and row["accuracy"] == 0.5
    unknown = PseudoLabelMonitor(TensorDataset(inputs, torch.full((4,), UNKNOWN)))
    row = unknown.measure(_Trainer(), model, (0.9,))[0]
    assert row["coverage"] == 1.0 and row["pseudo_accuracy"] is None and row["accuracy"] is None
    logs = {"epoch": 1, "step": 1}
    unknown.on_epoch_end(_Trainer(), model, logs)
    assert logs["unlabelled/coverage"] == 1.0 and "unlabelled/accuracy" not in logs
    assert unknown.summary()["with_held_back_labels"] == 0


def test_contrastive_pretraining_uses_the_pool_but_only_labelled_images_vote(pool_folder):
    bundle = contrastive_bundle(load_dataset("digits", labels_per_class=5, unlabelled=str(pool_folder)), dim=16)
    images, labels = bundle.train.tensors
    assert len(images) == len(load_dataset("digits").train) + 17
    assert int((labels >= 0).sum()) == 50 and bundle.info["pretrained_on"] == {"labelled": 50, "unlabelled": 1224}


def test_a_run_learns_from_a_folder_and_reports_it(pool_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--model", "cnn", "model.channels=[8]", "model.hidden=16", "epochs=1"]
    args += [f"data.unlabelled={pool_folder}", "data.labels_per_class=3", "step.name=pseudo_label", "step.hflip=0"]
    code, _, err = run_cli(capsys, [*args, "baseline=false", "--out", out, "--quiet"])
    assert code == 0, err
    semi = json.loads((out / "results" / "train.json").read_text())["semi_supervised"]
    assert semi["unlabelled_source"] == str(pool_folder) and semi["uses_unlabelled"]
    assert semi["unlabelled"] == len(load_dataset("digits").train) - 30 + 17
    assert semi["with_held_back_labels"] <= semi["measured_on"]
    code, _, err = run_cli(capsys, ["report", out])
    assert code == 0, err
    assert str(pool_folder) in (out / "report.html").read_text()


def test_a_missing_pool_is_a_one_line_error_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--model", "cnn", "data.unlabelled=/no/such/folder", "--out", out]
    code, _, err = run_cli(capsys, args)
    assert code == 2 and err.startswith(PREFIX) and "/no/such/folder" in err and err.strip().count("\n") == 0
    assert not out.exists() or not any(out.iterdir())
