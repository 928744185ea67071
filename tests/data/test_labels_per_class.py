"""``data.labels_per_class=N``: a seeded, stratified labelled subset and the rest of the training split as a pool."""

import subprocess
import sys

import pytest
import torch

import glassnet as gn
from glassnet.data.semi import SemiSupervisedBundle, choose_labelled, with_labels_per_class
from glassnet.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return gn.load_dataset("digits")


def test_the_labelled_subset_has_n_examples_of_every_class_and_the_pool_has_the_rest(digits):
    semi = gn.load_dataset("digits", labels_per_class=7)
    assert isinstance(semi, SemiSupervisedBundle)
    x, y = digits.train.tensors
    lx, ly = semi.train.tensors
    ux, uy = semi.unlabelled.tensors
    assert torch.bincount(ly, minlength=10).tolist() == [7] * 10
    assert len(ly) + len(uy) == len(y)

    # together they are exactly the training split: same inputs with the same labels, none twice
    def rows(inputs, labels):
        return sorted(map(tuple, torch.cat([inputs.flatten(1), labels[:, None].float()], 1).tolist()))

    assert rows(torch.cat([lx, ux]), torch.cat([ly, uy])) == rows(x, y)
    assert torch.equal(semi.val.tensors[0], digits.val.tensors[0]) and torch.equal(
        semi.test.tensors[1], digits.test.tensors[1]
    )
    assert semi.spec == digits.spec
    assert semi.info["labelled"] == 70 and semi.info["unlabelled"] == len(uy) and semi.info["labels_per_class"] == 7
    summary = semi.summary()
    assert summary["splits"]["train"]["class_counts"] == [7] * 10 and summary["unlabelled"] == len(uy)


def test_the_subset_is_seeded(digits):
    targets = digits.train.tensors[1]
    first, _ = choose_labelled(targets, 5, seed=3)
    again, _ = choose_labelled(targets, 5, seed=3)
    other, _ = choose_labelled(targets, 5, seed=4)
    assert torch.equal(first, again) and not torch.equal(first, other)
    a = gn.load_dataset("digits", labels_per_class=5, labels_seed=1)
    b = gn.load_dataset("digits", labels_per_class=5, labels_seed=1)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0]) and torch.equal(
        a.unlabelled.tensors[1], b.unlabelled.tensors[1]
    )


@pytest.mark.parametrize("value", [0, -3, 2.5, "40", True, None])
def test_bad_labels_per_class_values_are_config_errors(digits, value):
    with pytest.raises(ConfigError, match="labels_per_class must be a whole number >= 1"):
        with_labels_per_class(digits, value)


def test_more_labels_than_the_smallest_class_holds_names_the_class(digits):
    smallest = int(torch.bincount(digits.train.tensors[1]).min())
    with pytest.raises(ConfigError, match=rf"more than the training split holds of class .*\({smallest} examples"):
        gn.load_dataset("digits", labels_per_class=smallest + 1)
    assert len(gn.load_dataset("digits", labels_per_class=smallest).train) == 10 * smallest


def test_regression_data_and_a_lone_seed_are_refused():
    with pytest.raises(ConfigError, match="needs a classification dataset"):
        gn.load_dataset("diabetes", labels_per_class=5)
    with pytest.raises(ConfigError, match="labels_seed .* needs labels_per_class"):
        gn.load_dataset("digits", labels_seed=2)


def test_the_command_line_refuses_a_bad_value_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "glassnet", "train", "--data", "diabetes", "--model", "mlp",
         "--out", str(tmp_path / "r"), "data.labels_per_class=5", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "labels_per_class needs a classification dataset" in done.stderr and "Traceback" not in done.stderr
