"""``Trainer`` takes its task from the data when given none, and its predictions carry class names."""

from __future__ import annotations

import pytest
import torch

from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import Trainer
from glassnet.train.tasks import Classification


def test_the_task_comes_from_the_bundle(regression_bundle):
    model = create_model("mlp", regression_bundle.spec)
    trainer = Trainer(max_epochs=1, device="cpu")
    trainer.fit(model, regression_bundle)
    assert trainer.task.name == "regress"
    assert "rmse" in trainer.evaluate(model, regression_bundle.val)  # the bundle's task goes on being used
    assert "rmse" in trainer.evaluate(model, regression_bundle)  # a bundle is scored on its test split


def test_an_explicit_task_wins(tabular_bundle):
    task = Classification(label_smoothing=0.1)
    trainer = Trainer(task=task, max_epochs=1, device="cpu")
    trainer.fit(create_model("mlp", tabular_bundle.spec), tabular_bundle)
    assert trainer.task is task


def test_data_without_a_spec_and_with_float_targets_is_a_clear_error(regression_bundle):
    with pytest.raises(ConfigError, match=r"cannot tell the task .*float32.*Trainer\(task='regress'\)"):
        Trainer(max_epochs=1, device="cpu").fit(create_model("mlp", regression_bundle.spec), regression_bundle.train)


def test_class_index_targets_without_a_spec_are_classified_as_before(tabular_bundle):
    trainer = Trainer(max_epochs=1, device="cpu")
    trainer.fit(create_model("mlp", tabular_bundle.spec), tabular_bundle.train)
    assert trainer.task.name == "classify"


def test_predictions_carry_the_class_names(tabular_bundle):
    model = create_model("mlp", tabular_bundle.spec)
    trainer = Trainer(max_epochs=2, device="cpu")
    trainer.fit(model, tabular_bundle)
    predictions = trainer.predict(model, tabular_bundle.test.tensors[0])
    assert predictions.class_names == ("a", "b", "c")
    assert predictions.labels == [("a", "b", "c")[int(i)] for i in predictions.prediction]
    from_bundle = Trainer(device="cpu").predict(model, tabular_bundle)  # the test split, with the bundle's names
    assert from_bundle.labels == predictions.labels


def test_predictions_without_a_spec_give_the_raw_predictions(tabular_bundle):
    model = create_model("mlp", tabular_bundle.spec)
    predictions = Trainer(device="cpu").predict(model, torch.zeros(3, 6))
    assert predictions.class_names == () and predictions.labels == predictions.prediction.tolist()


def test_regression_labels_are_numbers(regression_bundle):
    model = create_model("mlp", regression_bundle.spec)
    x, spec = regression_bundle.test.tensors[0][:4], regression_bundle.spec
    predictions = Trainer(task="regress", device="cpu").predict(model, x, spec=spec)
    assert predictions.labels == pytest.approx([float(v) for v in predictions.prediction.flatten()], abs=1e-3)
