"""Adversarial training steps: option checking, the eps schedule, and one step of each method."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import glassnet as gn
from glassnet.errors import ConfigError, UnknownNameError
from glassnet.train.steps.adversarial import AdversarialStep, adversarial_step
from glassnet.train.tasks import get_task


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, ConfigError, "needs a method"),
        ({"method": "madry"}, UnknownNameError, "unknown adversarial training method 'madry'"),
        ({"method": "pgd", "epsilon": 0.1}, ConfigError, "unknown adversarial option 'epsilon'"),
        ({"method": "pgd", "eps": 0}, ConfigError, "eps must be a finite number > 0"),
        ({"method": "pgd", "eps": 0.8}, ConfigError, "out of range for linf"),
        ({"method": "pgd", "eps": "big"}, ConfigError, "eps must be a finite number"),
        ({"method": "pgd", "norm": "l1"}, ConfigError, "norm must be one of linf, l2"),
        ({"method": "pgd", "steps": 0}, ConfigError, "steps must be an integer >= 1"),
        ({"method": "trades", "beta": -1}, ConfigError, "beta must be a number >= 0"),
        ({"method": "fgsm", "schedule": "cosine"}, ConfigError, "schedule must be one of constant, linear"),
        ({"method": "fgsm", "warmup": 1.5}, ConfigError, "warmup must be in"),
        ({"method": "pgd", "step_size": -0.1}, ConfigError, "step_size must be a number > 0"),
    ],
)
def test_bad_options_get_clear_errors(quadrants, options, error, message):
    with pytest.raises(error, match=message):
        adversarial_step(options, quadrants.spec)


def test_text_and_regression_data_are_refused(quadrants, regression_bundle):
    text = gn.DataSpec(modality="text", input_shape=(8,), task="classify", num_outputs=2, extra={"vocab": ["a"]})
    with pytest.raises(ConfigError, match="image and tabular inputs"):
        adversarial_step({"method": "pgd"}, text)
    with pytest.raises(ConfigError, match="classification task"):
        adversarial_step({"method": "pgd"}, regression_bundle.spec)


def test_defaults_are_filled_in_and_described(quadrants):
    step = adversarial_step({"method": "trades", "eps": 0.2}, quadrants.spec)
    assert isinstance(step, AdversarialStep)
    described = step.describe()
    assert described["method"] == "trades" and described["eps"] == 0.2 and described["beta"] == 6.0
    assert described["schedule"] == "linear" and described["steps"] == 7


def test_eps_ramps_up_linearly_over_the_warmup(quadrants):
    step = adversarial_step({"method": "pgd", "eps": 0.2, "warmup": 0.5}, quadrants.spec)
    trainer = SimpleNamespace(total_steps=40, global_step=0, epoch=1)
    step.bind(trainer)
    assert math.isclose(step.current_eps(), 0.2 / 20)
    trainer.global_step = 9
    assert math.isclose(step.current_eps(), 0.1)
    trainer.global_step = 30
    assert step.current_eps() == 0.2
    constant = adversarial_step({"method": "pgd", "eps": 0.2, "schedule": "constant"}, quadrants.spec)
    constant.bind(trainer)
    trainer.global_step = 0
    assert constant.current_eps() == 0.2


@pytest.mark.parametrize("method", ["pgd", "trades", "fgsm"])
def test_one_step_of_each_method_gives_a_finite_loss_with_gradients(quadrants, method):
    torch.manual_seed(0)
    model = gn.create_model("cnn", quadrants.spec, channels=[4], hidden=8)
    model.train()
    x, y = quadrants.train.tensors
    step = adversarial_step({"method": method, "eps": 0.1, "steps": 2, "schedule": "constant"}, quadrants.spec)
    loss = step.training_step(model, (x[:16], y[:16]), get_task("classify"))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.training, "the attack's eval mode is undone"


def test_the_adversarial_loss_is_higher_than_the_clean_loss(image_model, quadrants):
    x, y = quadrants.test.tensors
    task = get_task("classify")
    with torch.no_grad():
        clean = task.loss(image_model(x), y)
    step = adversarial_step({"method": "pgd", "eps": 0.3, "steps": 5, "schedule": "constant"}, quadrants.spec)
    adversarial = step.training_step(image_model, (x, y), task)
    assert adversarial.item() > clean.item() + 0.5


def test_tabular_steps_attack_inside_the_ranges_seen_in_training(blobs_bundle):
    torch.manual_seed(0)
    model = gn.create_model("mlp", blobs_bundle.spec, width=8)
    step = adversarial_step({"method": "pgd", "eps": 0.1, "steps": 2}, blobs_bundle.spec)
    x, y = blobs_bundle.train.tensors
    step.training_step(model, (x[:32], y[:32]), get_task("classify"))
    assert torch.equal(step.lower, x[:32].amin(0)) and torch.equal(step.upper, x[:32].amax(0))
    step.training_step(model, (x[32:64], y[32:64]), get_task("classify"))
    assert torch.equal(step.lower, x[:64].amin(0))


def test_soft_targets_from_mixup_are_refused(quadrants):
    model = gn.create_model("cnn", quadrants.spec, channels=[4], hidden=8)
    step = adversarial_step({"method": "fgsm"}, quadrants.spec)
    x, _ = quadrants.train.tensors
    with pytest.raises(ConfigError, match="mixup"):
        step.training_step(model, (x[:4], torch.full((4, 4), 0.25)), get_task("classify"))


def test_train_with_adversarial_options_then_attack_and_report(tmp_path):
    from glassnet.config import RunConfig
    from glassnet.pipeline import train
    from glassnet.report import report
    from glassnet.robustness.stage import attack_run

    config = RunConfig(
        data="digits",
        model="cnn",
        epochs=1,
        model_args={"channels": [4], "hidden": 8},
        adversarial={"method": "fgsm", "eps": 0.1},
    )
    run = train(config, out=tmp_path / "run")
    result = attack_run(run.path, attack="fgsm", eps=[0.1], limit=30, apgd_steps=3, square_queries=10)
    assert result["adversarial_training"]["method"] == "fgsm"
    assert result["adversarial_training"]["eps"] == 0.1
    assert (run.path / "results" / "robustness.json").is_file()
    assert run.figure("robustness_curves").is_file()
    page = report(run.path).read_text()
    assert "Robustness" in page and "Adversarial training: method=fgsm" in page


def test_the_run_records_its_adversarial_training_settings(tmp_path):
    import glassnet as gn

    config = gn.RunConfig(data="digits", model="mlp", epochs=1, adversarial={"method": "fgsm", "eps": 0.05})
    run = gn.train(config, out=tmp_path / "run")
    recorded = run.read_result("train")["training"]["adversarial"]
    assert recorded["method"] == "fgsm" and recorded["eps"] == 0.05
