"""The multi-label task end to end: the digit-pairs dataset, glassnet train / predict, and a bar on real data."""

import json

import numpy as np
import pytest
import torch

from glassnet.cli import main
from glassnet.data import load_dataset
from glassnet.errors import ConfigError
from glassnet.models import create_model, list_models
from glassnet.train import Trainer, seed_everything


@pytest.fixture(scope="module")
def pairs():
    return load_dataset("digit-pairs")


def test_digit_pairs_are_images_of_two_digits_with_one_or_two_labels(pairs):
    assert pairs.spec.task == "multilabel" and pairs.spec.modality == "image"
    assert pairs.spec.input_shape == (1, 8, 16) and pairs.spec.num_outputs == 10
    assert pairs.spec.class_names == tuple("0123456789")
    for split in (pairs.train, pairs.val, pairs.test):
        x, y = split.tensors
        assert x.min() >= 0 and x.max() <= 1
        assert set(y.sum(dim=1).unique().tolist()) <= {1.0, 2.0}
    assert len(pairs.train) > 2000 and len(pairs.test) > 400
    assert pairs.info["label_counts"]["test"] == pairs.test.tensors[1].sum(dim=0).int().tolist()


def test_digit_pairs_never_reuse_a_test_digit_in_training(pairs):
    # each half of a training image is one of the training digits, never a test digit
    from sklearn.datasets import load_digits

    from glassnet.data.splits import stratified_split

    raw = load_digits()
    train_index, _, test_index = stratified_split(raw.target, 0.15, 0.15, 0, True)
    images = torch.as_tensor(raw.images / 16.0, dtype=torch.float32)
    train_halves = {images[i].numpy().tobytes() for i in train_index}
    test_halves = {images[i].numpy().tobytes() for i in test_index} - train_halves  # duplicates drawn alike
    x = pairs.train.tensors[0]
    halves = {x[n, 0, :, :8].numpy().tobytes() for n in range(len(x))} | {
        x[n, 0, :, 8:].numpy().tobytes() for n in range(len(x))
    }
    assert halves <= train_halves and not halves & test_halves


def test_digit_pairs_options_are_checked_and_seeded():
    a, b = load_dataset("digit-pairs", split_seed=1), load_dataset("digit-pairs", split_seed=1)
    assert torch.equal(a.train.tensors[1], b.train.tensors[1])
    small = load_dataset("digit-pairs", pairs_per_digit=0.5)
    assert len(small.train) == round(0.5 * len(load_dataset("digits").train))
    with pytest.raises(ConfigError, match="pairs_per_digit"):
        load_dataset("digit-pairs", pairs_per_digit=0)


def test_every_classifier_that_takes_images_fits_multilabel_images(pairs):
    names = list_models(spec=pairs.spec)
    assert "cnn" in names and "mlp" in names
    model = create_model("cnn", pairs.spec, channels=[8])
    assert model(pairs.test.tensors[0][:3]).shape == (3, 10)


def test_glassnet_train_and_predict_a_multilabel_run(tmp_path, capsys):
    out = tmp_path / "pairs"
    args = ["train", "--data", "digit-pairs", "--model", "cnn", "--epochs", "2", "--out", str(out), "--quiet"]
    assert main([*args, "model.channels=[8]", "class_weights=balanced", "label_smoothing=0.05"]) == 0
    printed = capsys.readouterr().out
    assert "subset_accuracy" in printed and "macro_f1" in printed
    result = json.loads((out / "results" / "train.json").read_text())
    assert result["task"] == "multilabel"
    test = result["test"]
    assert {"loss", "subset_accuracy", "label_accuracy", "micro_f1", "macro_f1", "map", "auroc"} <= set(test)
    assert set(test["per_label"]) == set("0123456789")
    assert test["per_label"]["3"]["support"] == load_dataset("digit-pairs").test.tensors[1][:, 3].sum().item()
    assert main(["predict", str(out), "--data", "digit-pairs", "--limit", "3"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert len(rows) == 3
    for row in rows:  # "digit-pairs:test[i]  <predicted digits>  <true digits>"
        true = row.split("  ")[-1].split()
        assert 1 <= len(true) <= 2 and all(d in "0123456789" for d in true)
    weights = (out / "model.safetensors").read_bytes()
    assert main(["train", "--data", "digit-pairs", "--model", "cnn", "--find-lr", "--out", str(out)]) == 0
    assert (out / "model.safetensors").read_bytes() == weights  # the range test leaves a run's model alone
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Per-label results" in page and "Learning-rate range test" in page and "suggested learning rate" in page


def test_class_weights_of_the_wrong_length_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "bad"
    code = main(["train", "--data", "digits", "--model", "mlp", "--out", str(out), "class_weights=[1,2]"])
    assert code == 2
    assert "class_weights has 2 values for 10 classes" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_cnn_learns_which_digits_a_pair_shows(pairs):
    """Bar: subset accuracy >= 0.88 and macro F1 >= 0.95 on 540 unseen pairs (majority rule: 0.0 and 0.0)."""
    seed_everything(0)
    model = create_model("cnn", pairs.spec)
    trainer = Trainer(task="multilabel", max_epochs=15, batch_size=64, lr=3e-3, seed=0)
    trainer.fit(model, pairs)
    metrics = trainer.evaluate(model, pairs.test)
    assert metrics["subset_accuracy"] >= 0.88, metrics
    assert metrics["macro_f1"] >= 0.95 and metrics["map"] >= 0.98, metrics
    # the per-label majority rule predicts no label at all (every digit is absent from most pairs)
    prevalence = pairs.train.tensors[1].mean(dim=0)
    assert bool((prevalence < 0.5).all())
    assert np.isclose((pairs.test.tensors[1] == (prevalence >= 0.5).float()).all(dim=1).float().mean().item(), 0.0)
