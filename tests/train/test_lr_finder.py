"""The learning-rate range test: the curve, the suggestion, what it leaves unchanged, and --find-lr."""

import json
import math
import random

import numpy as np
import pytest
import torch

from glassnet.cli import main
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model
from glassnet.train import Trainer, find_lr, seed_everything
from glassnet.train.lr_finder import suggest_lr


def fresh_model(bundle, name="mlp"):
    seed_everything(0)
    return create_model(name, bundle.spec)


def test_range_test_sweeps_geometrically_and_suggests_a_rate_before_the_minimum(tabular_bundle):
    model = fresh_model(tabular_bundle)
    result = find_lr(Trainer(batch_size=16), model, tabular_bundle, min_lr=1e-5, max_lr=10.0, num_steps=60)
    assert result.lrs[0] == pytest.approx(1e-5)
    ratios = np.diff(np.log(result.lrs))
    assert np.allclose(ratios, math.log(1e6) / 59)
    assert len(result.losses) == len(result.smoothed) == len(result.lrs) <= 60
    assert result.suggestion is not None and 1e-5 < result.suggestion <= result.min_loss_lr
    record = result.to_dict()
    assert record["suggestion"] == result.suggestion and record["steps"] == len(result.lrs)
    assert record["settings"]["batch_size"] == 16 and record["settings"]["optimizer"] == "adamw"


def test_the_suggested_rate_trains_the_model(tabular_bundle):
    result = find_lr(Trainer(batch_size=16), fresh_model(tabular_bundle), tabular_bundle, num_steps=60)
    model = fresh_model(tabular_bundle)
    trainer = Trainer(max_epochs=5, batch_size=16, lr=result.suggestion)
    trainer.fit(model, tabular_bundle)
    assert trainer.evaluate(model, tabular_bundle.test)["accuracy"] >= 0.9


def test_model_optimiser_and_random_state_are_left_as_they_were(tabular_bundle):
    model = fresh_model(tabular_bundle)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = tabular_bundle.train.tensors
    torch.nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
    optimizer.step()  # momentum buffers exist now
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = {id(p): optimizer.state[p]["momentum_buffer"].clone() for p in model.parameters()}
    model.eval()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)

    find_lr(Trainer(batch_size=16), model, tabular_bundle, num_steps=20, optimizer=optimizer)

    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(momentum[id(p)], optimizer.state[p]["momentum_buffer"]) for p in model.parameters())
    assert [g["lr"] for g in optimizer.param_groups] == [0.05]
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_batch_norm_statistics_are_restored(image_bundle):
    model = fresh_model(image_bundle, "cnn")
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    assert stats
    find_lr(Trainer(batch_size=16), model, image_bundle, num_steps=10)
    assert all(torch.equal(stats[k], model.state_dict()[k]) for k in stats)


def test_the_test_stops_when_the_loss_diverges(tabular_bundle):
    trainer = Trainer(batch_size=16, optimizer="sgd", momentum=0.9)
    result = find_lr(trainer, fresh_model(tabular_bundle), tabular_bundle, min_lr=1e-3, max_lr=1e6, num_steps=100)
    assert result.stopped in ("diverged", "non-finite loss")
    assert len(result.lrs) < 100
    assert result.suggestion is None or result.suggestion < result.lrs[-1]


def test_small_datasets_are_cycled(tabular_bundle):
    # 168 training examples in batches of 64: 3 batches per pass, 30 steps need 10 passes
    result = find_lr(Trainer(batch_size=64), fresh_model(tabular_bundle), tabular_bundle, num_steps=30, max_lr=0.1)
    assert len(result.lrs) == 30 and result.stopped == "completed"


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.logspace(-6, 0, 61))
    # a loss falling fastest at 1e-3 and rising after 1e-1
    log_lr = np.log10(lrs)
    losses = list(2 - np.tanh(2 * (log_lr + 3)) + np.where(log_lr > -1, 5 * (log_lr + 1) ** 2, 0))
    suggestion, lowest = suggest_lr(lrs, losses, skip_start=0)
    assert suggestion == pytest.approx(1e-3, rel=0.3)
    assert lowest < 1
    assert suggest_lr(lrs, list(np.linspace(1, 2, 61)))[0] is None  # the loss never falls
    assert suggest_lr([], []) == (None, None)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr < max_lr"),
        ({"min_lr": 0.0}, "min_lr < max_lr"),
        ({"num_steps": 2}, "num_steps"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
        ({"skip_start": -1}, "skip_start"),
    ],
)
def test_bad_arguments_are_config_errors(tabular_bundle, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        find_lr(Trainer(), fresh_model(tabular_bundle), tabular_bundle, **kwargs)


def test_an_empty_training_split_is_a_data_error(tabular_bundle):
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        find_lr(Trainer(), fresh_model(tabular_bundle), empty)


def test_find_lr_flag_writes_the_curve_and_does_not_train(tmp_path, capsys):
    out = tmp_path / "lr"
    args = ["train", "--data", "breast-cancer", "--model", "mlp", "--find-lr", "--out", str(out), "batch_size=32"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "results" / "lr_finder.json").read_text())
    assert f"suggested lr: {record['suggestion']:.3g}" in printed
    assert f"lr={record['suggestion']:.3g}" in printed  # the command to train with it
    assert record["settings"]["batch_size"] == 32 and record["model"] == "mlp"
    assert (out / "figures" / "lr_finder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "model.safetensors").exists() and not (out / "results" / "train.json").exists()


def test_find_lr_flag_reports_configuration_mistakes(tmp_path, capsys):
    code = main(
        ["train", "--data", "breast-cancer", "--model", "mlp", "--find-lr", "--out", str(tmp_path / "x"), "lr=-1"]
    )
    assert code == 2 and "lr must be" in capsys.readouterr().err


def test_range_test_runs_under_the_trainers_bf16_autocast(image_bundle):
    trainer = Trainer(batch_size=16, precision="bf16", channels_last=True)
    result = find_lr(trainer, fresh_model(image_bundle, "cnn"), image_bundle, num_steps=12, max_lr=0.1)
    assert len(result.lrs) == 12 and all(math.isfinite(v) for v in result.losses)


def test_a_trainer_without_a_task_tests_a_regression_bundle_with_its_own_task():
    """Trainer() takes its task from the bundle; the range test fits the bare training split, so it
    must be handed the bundle's task (it used to refuse: targets are not class indices)."""
    from glassnet.data import load_dataset

    bundle = load_dataset("diabetes")
    seed_everything(0)
    model = create_model("mlp", bundle.spec)
    result = find_lr(Trainer(batch_size=32), model, bundle, num_steps=20)
    assert len(result.lrs) > 5 and all(math.isfinite(loss) for loss in result.losses)
