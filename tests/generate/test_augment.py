"""data.generated=RUN: a class-conditional generator's images join the training split."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from glassnet.cli import main
from glassnet.config import RunConfig
from glassnet.data import load_dataset
from glassnet.errors import ConfigError, DataError, RunError
from glassnet.generate import with_generated
from glassnet.generate.data import generation_bundle
from glassnet.models import create_model, save_model
from glassnet.train.run import load_training_data

PREFIX = "glassnet: error:"


def saved(tmp_path_factory, name, spec):
    """A run directory holding a generator (untrained: drawing needs no training)."""
    out = tmp_path_factory.mktemp("generator") / name
    torch.manual_seed(0)
    save_model(create_model(name, spec, latent=8, width=8), spec, out)
    return out


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def training_data(name, **options):
    """What a run trains on with ``data.X=...`` options (where ``data.generated`` is applied)."""
    return load_training_data(RunConfig(data=name, model="cnn", data_args=options))


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory, digits):
    return saved(tmp_path_factory, "cgan", generation_bundle(digits).spec)


def test_generated_images_join_the_training_split_with_their_classes(digits, cgan_run):
    bundle = training_data("digits", generated=str(cgan_run), generated_per_class=3)
    images, labels = bundle.train.tensors
    real_images, real_labels = digits.train.tensors
    assert len(images) == len(real_images) + 30 and torch.equal(images[: len(real_images)], real_images)
    assert torch.bincount(labels[len(real_images) :], minlength=10).tolist() == [3] * 10
    assert images.dtype == real_images.dtype and images.min() >= 0 and images.max() <= 1
    assert len(bundle.val) == len(digits.val) and len(bundle.test) == len(digits.test)  # evaluation stays real
    assert bundle.info["generated"] == {"run": str(cgan_run), "per_class": 3, "images": 30, "seed": 0}
    again = training_data("digits", generated=str(cgan_run), generated_per_class=3)
    other = training_data("digits", generated=str(cgan_run), generated_per_class=3, generated_seed=1)
    assert torch.equal(again.train.tensors[0], images) and not torch.equal(other.train.tensors[0], images)


def test_by_default_the_training_split_doubles(digits, cgan_run):
    bundle = with_generated(digits, cgan_run)
    per_class = round(len(digits.train) / 10)
    assert len(bundle.train) == len(digits.train) + 10 * per_class


def test_with_few_labels_only_the_labelled_split_grows(cgan_run):
    bundle = training_data("digits", labels_per_class=2, generated=str(cgan_run), generated_per_class=4)
    assert len(bundle.train) == 20 + 40 and len(bundle.unlabelled) > 1000


def test_generators_that_do_not_fit_are_refused(tmp_path_factory, digits, cgan_run):
    other_shape = dataclasses.replace(generation_bundle(digits).spec, input_shape=(1, 16, 16))
    with pytest.raises(DataError, match=r"makes \[1, 16, 16\] images"):
        with_generated(digits, saved(tmp_path_factory, "cgan", other_shape))
    other_classes = dataclasses.replace(generation_bundle(digits).spec, class_names=tuple("abcdefghij"))
    with pytest.raises(DataError, match="draws the classes"):
        with_generated(digits, saved(tmp_path_factory, "cgan", other_classes))
    with pytest.raises(ConfigError, match="unconditional"):
        with_generated(digits, saved(tmp_path_factory, "dcgan", generation_bundle(digits).spec))
    classifier = tmp_path_factory.mktemp("cls") / "run"
    save_model(create_model("mlp", digits.spec), digits.spec, classifier)
    with pytest.raises(RunError, match="not a generative one"):
        with_generated(digits, classifier)
    for per_class in (0, -1, 2.5, True, 10**6):
        with pytest.raises(ConfigError, match="generated_per_class"):
            with_generated(digits, cgan_run, per_class)
    with pytest.raises(ConfigError, match="needs the generator|need the generator"):
        training_data("digits", generated_per_class=3)
    with pytest.raises(ConfigError, match="image classification"):
        training_data("breast-cancer", generated=str(cgan_run))


def test_a_classifier_trains_on_generated_images_from_the_command_line(cgan_run, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--model", "cnn", "model.channels=[8]", "model.hidden=16", "epochs=1"]
    args += [f"data.generated={cgan_run}", "data.generated_per_class=2", "baseline=false", "--out", out, "--quiet"]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    data = json.loads((out / "results" / "train.json").read_text())["data"]
    assert (
        data["generated"]["images"] == 20 and data["splits"]["train"]["size"] == len(load_dataset("digits").train) + 20
    )


def test_a_missing_generator_is_a_one_line_error_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--model", "cnn", "data.generated=/no/such/run", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(PREFIX) and "/no/such/run" in err and err.strip().count("\n") == 0
    assert not out.exists() or not any(out.iterdir())


def test_loading_data_alone_points_generated_options_to_training_or_with_generated(cgan_run):
    with pytest.raises(ConfigError, match=r"generated is a training option: .*with_generated\(bundle, RUN\)"):
        load_dataset("digits", generated=str(cgan_run))
    with pytest.raises(ConfigError, match="generated, generated_per_class are training options"):
        load_dataset("digits", generated=str(cgan_run), generated_per_class=3)
