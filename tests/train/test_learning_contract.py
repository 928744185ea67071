"""The learning contract: steps that log, own optimisers or optimise manually; stream sources and step budgets."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from glassnet.config import RunConfig
from glassnet.errors import ConfigError, UnknownNameError
from glassnet.models import create_model
from glassnet.train import (
    EnvironmentSource,
    GradientClipping,
    SampleSource,
    Step,
    SupervisedStep,
    Task,
    Trainer,
    list_steps,
    make_step,
    seed_everything,
)
from glassnet.train.checkpoint import load_checkpoint
from glassnet.train.steps import step_from_options


class Points(Task):
    name = "points-test"
    monitor_modes = {"loss": "min", "distance": "min"}


def sample_points(n, generator):
    return (torch.randn(n, 2, generator=generator) + torch.tensor([3.0, -2.0]),)


class MeanMatching(Step):
    """Learns a point: the loss is the squared distance of a parameter to each batch; logs two values."""

    def training_step(self, model, batch, task):
        (points,) = batch
        distance = (points - model.centre).pow(2).sum(dim=1).mean()
        return {"loss": distance, "spread": points.std()}


class Centre(nn.Module):
    def __init__(self):
        super().__init__()
        self.centre = nn.Parameter(torch.zeros(2))


def test_the_registry_lists_the_built_in_steps_and_explains_mistakes(tabular_bundle):
    assert {"supervised", "teacher_forcing", "adversarial", "distillation"} <= set(list_steps())
    assert isinstance(make_step("supervised"), SupervisedStep)
    with pytest.raises(UnknownNameError, match="Did you mean 'supervised'"):
        make_step("supervized")
    with pytest.raises(ConfigError, match="step 'supervised' has no option 'eps'"):
        make_step("supervised", tabular_bundle.spec, eps=0.1)
    with pytest.raises(ConfigError, match=r"need the step's name: step.name=NAME"):
        step_from_options({"eps": 0.1}, tabular_bundle.spec, None, "supervised")
    step = step_from_options({"name": "adversarial", "method": "fgsm"}, tabular_bundle.spec, None, "supervised")
    assert step.name == "adversarial" and step.describe()["method"] == "fgsm"


def test_the_config_names_the_step_and_reads_the_older_adversarial_spelling():
    config = RunConfig().with_overrides(["step.name=adversarial", "step.eps=0.05"])
    assert config.step == {"name": "adversarial", "eps": 0.05}
    legacy = RunConfig.from_dict({"adversarial": {"method": "pgd", "eps": 0.1}})
    assert legacy.step == {"name": "adversarial", "method": "pgd", "eps": 0.1}
    assert "adversarial" not in legacy.to_dict()
    assert RunConfig().with_overrides(["adversarial.method=trades"]).step == {"method": "trades", "name": "adversarial"}
    assert RunConfig(adversarial={"method": "fgsm"}).step == {"name": "adversarial", "method": "fgsm"}
    with pytest.raises(ConfigError, match="a run has one step"):
        RunConfig.from_dict({"adversarial": {"method": "pgd"}, "step": {"name": "distillation"}})


def test_a_step_that_returns_logs_has_each_averaged_per_epoch(tabular_bundle):
    class Logging(SupervisedStep):
        def training_step(self, model, batch, task):
            loss = super().training_step(model, batch, task)
            return {"loss": loss, "double": 2 * loss.detach()}

    seed_everything(0)
    model = create_model("mlp", tabular_bundle.spec)
    result = Trainer(max_epochs=2, batch_size=16, step=Logging()).fit(model, tabular_bundle)
    for record in result.history:
        assert record["train/double"] == pytest.approx(2 * record["train/loss"], rel=1e-5)
    assert list(result.history[0])[:4] == ["epoch", "step", "lr", "train/loss"]


def test_a_sample_source_trains_under_a_step_budget_and_validates_every_eval_every_steps():
    model = Centre()

    def distance(trainer, m):
        return {"distance": float((m.centre.detach() - torch.tensor([3.0, -2.0])).norm())}

    trainer = Trainer(
        task=Points(), step=MeanMatching(), max_steps=50, eval_every=20, lr=0.3, schedule="none", batch_size=32
    )
    result = trainer.fit(model, SampleSource(sample_points), val=distance)
    assert result.steps == 50 and result.epochs_run == 3
    assert [h["step"] for h in result.history] == [20, 40, 50]
    assert result.history[-1]["val/distance"] < 0.3 < result.history[0]["val/distance"] + 1
    assert all(h["train/spread"] > 0.5 for h in result.history)
    assert result.samples_per_s > 0 and trainer.total_steps == 50


def test_a_validation_callable_runs_in_the_runs_precision():
    seen = []

    def validation(trainer, m):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return {"distance": float((m.centre.detach() - torch.tensor([3.0, -2.0])).norm())}

    for precision in ("bf16", "fp32"):
        trainer = Trainer(task=Points(), step=MeanMatching(), max_steps=4, eval_every=2, precision=precision,
                          lr=0.3, schedule="none", batch_size=8)  # fmt: skip
        trainer.fit(Centre(), SampleSource(sample_points), val=validation)
    assert seen[:2] == [(True, torch.bfloat16)] * 2 and [enabled for enabled, _ in seen[2:]] == [False, False]


def test_stream_sources_need_a_step_budget_and_datasets_take_no_eval_every(tabular_bundle):
    with pytest.raises(ConfigError, match="has no epochs: give the trainer a step budget"):
        Trainer(task=Points(), step=MeanMatching()).fit(Centre(), SampleSource(sample_points))
    model = create_model("mlp", tabular_bundle.spec)
    with pytest.raises(ConfigError, match="eval_every applies to stream sources"):
        Trainer(eval_every=5).fit(model, tabular_bundle)
    with pytest.raises(ConfigError, match="max_steps must be an integer >= 1"):
        Trainer(max_steps=0)


def test_max_steps_ends_training_on_a_dataset_mid_epoch(tabular_bundle):
    model = create_model("mlp", tabular_bundle.spec)
    trainer = Trainer(max_epochs=10, batch_size=16, max_steps=7)
    result = trainer.fit(model, tabular_bundle)
    assert result.steps == 7 and trainer.total_steps == 7 and result.epochs_run == 1
    assert result.history[-1]["step"] == 7 and "val/loss" in result.history[-1]


class TwoOptimisers(Step):
    """Manual optimisation: two parameters, each with its own optimiser and schedule."""

    automatic_optimization = False

    def configure_optimizers(self, model):
        from glassnet.train import Optimization

        first = torch.optim.SGD([model.a], lr=0.1)
        second = torch.optim.SGD([model.b], lr=0.1)
        halve = torch.optim.lr_scheduler.StepLR(second, step_size=5, gamma=0.5)
        return Optimization({"first": first, "second": second}, {"second": halve})

    def training_step(self, model, batch, task):
        (x,) = batch
        loss_a = (model.a - x.mean()).pow(2)
        self.backward(loss_a)
        self.optimizer_step("first")
        loss_b = (model.b + x.mean()).pow(2)
        self.backward(loss_b)
        self.optimizer_step("second")
        return {"loss_a": loss_a, "loss_b": loss_b}


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))


def test_a_manual_step_owns_two_optimisers_their_schedules_and_the_hooks(tmp_path):
    data = TensorDataset(torch.full((64,), 2.0))
    clipping = GradientClipping(max_norm=10.0)
    trainer = Trainer(
        task=Points(), step=TwoOptimisers(), max_epochs=2, batch_size=8, callbacks=[clipping], checkpoint_dir=tmp_path
    )
    model = Pair()
    result = trainer.fit(model, data)
    assert result.steps == 16 and model.a.item() == pytest.approx(2.0, abs=0.1) and model.b.item() < -1.0
    assert trainer.optimizers["second"].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert result.history[-1]["lr"] == 0.1 and "lr/second" in result.history[-1]
    assert {"train/loss_a", "train/loss_b"} <= set(result.history[-1]) and "train/loss" not in result.history[-1]
    assert clipping.last_norm is not None  # on_before_optimizer_step ran for the manual optimiser steps
    state = load_checkpoint(tmp_path / "last.pt")
    assert sorted(state["optimizers"]) == ["first", "second"] and sorted(state["schedulers"]) == ["second"]


def test_steps_and_settings_that_do_not_go_together_are_refused():
    data = TensorDataset(torch.ones(16))
    with pytest.raises(ConfigError, match="gradient accumulation does not apply"):
        Trainer(task=Points(), step=TwoOptimisers(), accumulate=2).fit(Pair(), data)

    class TwoButAutomatic(TwoOptimisers):
        automatic_optimization = True

    with pytest.raises(ConfigError, match="steps them itself"):
        Trainer(task=Points(), step=TwoButAutomatic()).fit(Pair(), data)

    class NoLoss(Step):
        def training_step(self, model, batch, task):
            return {"other": torch.ones(())}

    with pytest.raises(ConfigError, match="mapping with a 'loss'"):
        Trainer(task=Points(), step=NoLoss()).fit(Pair(), data)


class Bandit:
    """Two arms; arm 1 pays 1 with probability 0.8, arm 0 with probability 0.2. One step per episode."""

    def __init__(self):
        self.rng = torch.Generator().manual_seed(0)

    def reset(self, *, seed=None):
        if seed is not None:
            self.rng.manual_seed(seed)
        return torch.ones(1), {}

    def step(self, action):
        paid = float(torch.rand((), generator=self.rng) < (0.8 if action == 1 else 0.2))
        return torch.ones(1), paid, True, False, {}


class Reinforce(Step):
    def act(self, model, observation, generator):
        return torch.multinomial(model(observation).softmax(-1).cpu(), 1, generator=generator).squeeze(-1), {}

    def training_step(self, model, batch, task):
        advantage = batch["rewards"] - batch["rewards"].mean()
        chosen = model(batch["observations"]).log_softmax(-1).gather(1, batch["actions"][:, None]).squeeze(1)
        return {"loss": -(chosen * advantage).mean(), "reward": batch["rewards"].mean()}


def test_an_environment_source_yields_rollouts_that_a_policy_learns_from():
    seed_everything(0)
    model = nn.Linear(1, 2)
    source = EnvironmentSource(Bandit(), steps=32)
    trainer = Trainer(task=Points(), step=Reinforce(), max_steps=40, eval_every=20, lr=0.05)
    result = trainer.fit(model, source)
    assert model(torch.ones(1)).softmax(-1)[1] > 0.9
    assert result.history[-1]["train/reward"] > result.history[0]["train/reward"]
    assert source.episodes == 40 * 32 and result.samples_per_s > 0
    batch = source._rollout(model)
    assert batch["observations"].shape == (32, 1) and batch["actions"].shape == (32,)
    assert batch["terminated"].all() and len(batch["episode_returns"]) == 32


def test_an_environment_source_needs_a_policy():
    with pytest.raises(ConfigError, match="needs a policy"):
        Trainer(task=Points(), step=MeanMatching(), max_steps=2).fit(nn.Linear(1, 2), EnvironmentSource(Bandit(), 4))
    with pytest.raises(ConfigError, match="integer >= 1"):
        EnvironmentSource(Bandit(), steps=0)


def test_the_lr_finder_is_a_callback_on_the_real_loop(tabular_bundle):
    from glassnet.train import LRFinder, find_lr

    model = create_model("mlp", tabular_bundle.spec)
    trainer = Trainer(batch_size=16, precision="bf16")
    result = find_lr(trainer, model, tabular_bundle, num_steps=30)
    assert len(result.lrs) == 30 and math.isclose(result.lrs[0], 1e-7)
    assert LRFinder(1e-5, 1.0, 10).num_steps == 10
