import io
import json

import pytest
import torch

from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model
from glassnet.train import BestModel, EarlyStopping, MetricsLogger, ProgressBar, Trainer, seed_everything


def fitted(bundle, name="mlp", seed=0, callbacks=(), **kwargs):
    seed_everything(seed)
    model = create_model(name, bundle.spec)
    options = {"max_epochs": 5, "batch_size": 32, "seed": seed} | kwargs
    trainer = Trainer(task=bundle.spec.task, callbacks=callbacks, **options)
    return model, trainer, trainer.fit(model, bundle)


def test_classifier_learns_generated_clusters(tabular_bundle):
    model, trainer, result = fitted(tabular_bundle)
    metrics = trainer.evaluate(model, tabular_bundle.test)
    assert metrics["accuracy"] >= 0.95
    assert result.history[-1]["train/loss"] < result.history[0]["train/loss"]
    assert result.epochs_run == 5 and result.steps == 5 * 6  # 168 examples / 32 = 6 batches (last one 8)


def test_cnn_learns_quadrant_images(image_bundle):
    model, trainer, _ = fitted(image_bundle, name="cnn", max_epochs=8, batch_size=16)
    assert trainer.evaluate(model, image_bundle.test)["accuracy"] >= 0.9


def test_regression_beats_predicting_the_mean(regression_bundle):
    model, trainer, _ = fitted(regression_bundle, max_epochs=30, lr=1e-2)
    metrics = trainer.evaluate(model, regression_bundle.test)
    targets = regression_bundle.test.tensors[1]
    baseline_mae = (targets - regression_bundle.train.tensors[1].mean()).abs().mean().item()
    assert metrics["mae"] < 0.3 * baseline_mae
    assert metrics["rmse"] >= metrics["mae"] and metrics["r2"] > 0.9


def test_same_seed_gives_identical_metrics_and_weights(tabular_bundle):
    runs = [fitted(tabular_bundle, seed=3, max_epochs=3) for _ in range(2)]
    (m1, t1, r1), (m2, t2, r2) = runs
    assert [{k: v for k, v in h.items() if k != "time_s"} for h in r1.history] == [
        {k: v for k, v in h.items() if k != "time_s"} for h in r2.history
    ]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    other, _, _ = fitted(tabular_bundle, seed=4, max_epochs=3)
    assert not torch.equal(next(other.parameters()), next(m1.parameters()))


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "cosine"), ("adamw", "none"), ("sgd", "onecycle")])
def test_optimizers_and_schedules_train(tabular_bundle, optimizer, schedule):
    lr = 0.05 if optimizer == "sgd" else 3e-3
    model, trainer, _ = fitted(tabular_bundle, optimizer=optimizer, schedule=schedule, lr=lr, max_epochs=6)
    assert trainer.evaluate(model, tabular_bundle.test)["accuracy"] >= 0.9


def test_onecycle_warms_up_then_decays(tabular_bundle):
    # the learning rate is logged at the end of each epoch: it must rise, then fall far below its peak
    _, _, result = fitted(tabular_bundle, max_epochs=10, lr=1e-2)
    logged = [h["lr"] for h in result.history]
    peak = logged.index(max(logged))
    assert 0 <= peak < 3 and logged[-1] < logged[peak] / 100


def test_early_stopping_stops_and_best_model_restores_best_epoch(tabular_bundle):
    early = EarlyStopping(monitor="val/loss", patience=2)
    best = BestModel(monitor="val/loss")
    # a constant, too-high learning rate makes validation loss stall quickly
    model, trainer, result = fitted(
        tabular_bundle, callbacks=[best, early], max_epochs=50, schedule="none", lr=0.5, optimizer="sgd"
    )
    assert result.epochs_run < 50 and early.stopped_epoch == result.epochs_run
    losses = [h["val/loss"] for h in result.history]
    assert best.best_epoch == losses.index(min(losses)) + 1
    assert trainer.evaluate(model, tabular_bundle.val)["loss"] == pytest.approx(min(losses), rel=1e-5)


def test_best_model_maximises_accuracy(tabular_bundle):
    best = BestModel(monitor="val/accuracy")
    _, _, result = fitted(tabular_bundle, callbacks=[best], max_epochs=4)
    accuracies = [h["val/accuracy"] for h in result.history]
    assert best.best_score == max(accuracies)


def test_monitoring_an_unlogged_metric_is_a_config_error(tabular_bundle):
    with pytest.raises(ConfigError, match="val/acc"):
        fitted(tabular_bundle, callbacks=[BestModel(monitor="val/acc")], max_epochs=1)


def test_metrics_logger_writes_one_json_line_per_epoch(tabular_bundle, tmp_path):
    path = tmp_path / "metrics.jsonl"
    fitted(tabular_bundle, callbacks=[MetricsLogger(path)], max_epochs=3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert {"train/loss", "val/loss", "val/accuracy", "lr", "step"} <= set(lines[0])


def test_progress_bar_prints_one_line_per_epoch_off_terminal(tabular_bundle):
    stream = io.StringIO()
    fitted(tabular_bundle, callbacks=[ProgressBar(stream)], max_epochs=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "ex/s" in lines[0]
    assert "\r" not in stream.getvalue()


def test_predict_decodes_classes_and_probabilities(tabular_bundle):
    model, trainer, _ = fitted(tabular_bundle, max_epochs=3)
    predictions = trainer.predict(model, tabular_bundle.test.tensors[0])
    assert predictions.prediction.shape == (len(tabular_bundle.test),)
    torch.testing.assert_close(predictions.probabilities.sum(1), torch.ones(len(tabular_bundle.test)))
    assert predictions.prediction.tolist() == predictions.outputs.argmax(1).tolist()


def test_evaluate_leaves_training_mode_unchanged(tabular_bundle):
    model, trainer, _ = fitted(tabular_bundle, max_epochs=1)
    model.train()
    trainer.evaluate(model, tabular_bundle.val)
    assert model.training


def test_empty_training_split_is_a_data_error(tabular_bundle):
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        Trainer().fit(create_model("mlp", tabular_bundle.spec), empty)


def test_generic_datasets_go_through_a_dataloader(tabular_bundle):
    class Plain(torch.utils.data.Dataset):
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def __len__(self):
            return len(self.wrapped)

        def __getitem__(self, i):
            return self.wrapped[i]

    seed_everything(0)
    model = create_model("mlp", tabular_bundle.spec)
    trainer = Trainer(max_epochs=4, batch_size=32)
    trainer.fit(model, Plain(tabular_bundle.train), val=Plain(tabular_bundle.val))
    assert trainer.evaluate(model, Plain(tabular_bundle.test))["accuracy"] >= 0.9


@pytest.mark.parametrize("kwargs", [{"max_epochs": 0}, {"batch_size": 0}, {"device": "tpu"}])
def test_bad_trainer_arguments(kwargs):
    with pytest.raises(ConfigError):
        Trainer(**kwargs)


def test_progress_bar_redraws_in_place_on_a_terminal(tabular_bundle):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    fitted(tabular_bundle, callbacks=[ProgressBar(stream, refresh_s=0.0)], max_epochs=1)
    text = stream.getvalue()
    assert "\repoch 1/1 [" in text and "#" in text and text.endswith("\x1b[K\n")
