"""Exact resume: a run killed mid-epoch and resumed ends bitwise equal to an uninterrupted one."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassnet.errors import CheckpointError
from glassnet.models import create_model
from glassnet.train import (
    EMA,
    BestModel,
    Callback,
    EarlyStopping,
    GradientClipping,
    SampleSource,
    Step,
    Task,
    Trainer,
    seed_everything,
)
from glassnet.train.checkpoint import load_checkpoint, save_checkpoint

WORKER = Path(__file__).with_name("train_worker.py")


class Interrupt(Callback):
    """Raise after optimiser step ``at``: the in-process stand-in for a crash."""

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.at:
            raise KeyboardInterrupt


def fit(bundle, checkpoint_dir, extra=(), resume_from=None, name="mlp", **kwargs):
    seed_everything(0)
    model = create_model(name, bundle.spec)
    callbacks = [EMA(0.9), BestModel("val/accuracy"), EarlyStopping(patience=20), GradientClipping(max_norm=1.0)]
    options = {"max_epochs": 3, "batch_size": 16, "checkpoint_every": 3} | kwargs
    trainer = Trainer(callbacks=[*callbacks, *extra], checkpoint_dir=checkpoint_dir, **options)
    result = trainer.fit(model, bundle, resume_from=resume_from)
    return model, result


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "name,options",
    [
        ("mlp", {}),
        ("mlp", {"accumulate": 2, "schedule": "cosine", "warmup": 3}),
        ("cnn", {"precision": "bf16", "channels_last": True, "schedule": "plateau"}),
    ],
)
def test_interrupted_and_resumed_fit_equals_uninterrupted(image_bundle, tabular_bundle, tmp_path, name, options):
    bundle = image_bundle if name == "cnn" else tabular_bundle
    reference, full = fit(bundle, tmp_path / "a", **options)
    # interrupt in epoch 2, one step after the first checkpoint written within that epoch (every 3 steps)
    per_epoch = full.steps // 3
    checkpointed = 3 * (per_epoch // 3 + 1)
    with pytest.raises(KeyboardInterrupt):
        fit(bundle, tmp_path / "b", extra=[Interrupt(checkpointed + 1)], **options)
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert saved["global_step"] == checkpointed and saved["progress"]["epoch"] == 2
    assert saved["progress"]["position"] == (checkpointed - per_epoch) * options.get("accumulate", 1)
    resumed, result = fit(bundle, tmp_path / "b", resume_from=tmp_path / "b" / "last.pt", **options)
    assert_same_weights(reference.state_dict(), resumed.state_dict())
    assert [h["val/loss"] for h in result.history] == [h["val/loss"] for h in full.history]
    assert result.steps == full.steps and result.resumed_from.endswith("last.pt")


def test_missing_and_corrupt_checkpoints_are_checkpoint_errors(tabular_bundle, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        fit(tabular_bundle, tmp_path, resume_from=tmp_path / "last.pt")
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot be read.*corrupt"):
        fit(tabular_bundle, tmp_path, resume_from=tmp_path / "last.pt")
    fit(tabular_bundle, tmp_path / "ok", max_epochs=1)
    data = (tmp_path / "ok" / "last.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        fit(tabular_bundle, tmp_path, resume_from=tmp_path / "truncated.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a glassnet training checkpoint"):
        fit(tabular_bundle, tmp_path, resume_from=tmp_path / "foreign.pt")


def test_checkpoint_of_another_model_is_refused(tabular_bundle, tmp_path):
    fit(tabular_bundle, tmp_path, max_epochs=1)
    seed_everything(0)
    wider = create_model("mlp", tabular_bundle.spec, width=16)
    with pytest.raises(CheckpointError, match="does not match this model"):
        Trainer(max_epochs=2).fit(wider, tabular_bundle, resume_from=tmp_path / "last.pt")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path / "last.pt", {"value": torch.ones(3)})

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path / "last.pt", {"value": Unsaveable()})
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["value"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_resuming_a_finished_fit_trains_no_further(tabular_bundle, tmp_path):
    model, full = fit(tabular_bundle, tmp_path, max_epochs=2)
    again, result = fit(tabular_bundle, tmp_path, max_epochs=2, resume_from=tmp_path / "last.pt")
    assert result.steps == full.steps and len(result.history) == 2 and result.epochs_run == 2


def test_a_run_stopped_by_its_time_limit_resumes_to_the_uninterrupted_weights(tabular_bundle, tmp_path):
    import time

    from glassnet.train import TimeLimit

    class SlowSteps(Callback):
        def on_batch_end(self, trainer, model, batch_size):
            time.sleep(0.02)

    def run(extra=(), resume_from=None, directory=tmp_path / "b"):
        seed_everything(0)
        model = create_model("mlp", tabular_bundle.spec)
        callbacks = [EMA(0.9), BestModel(), *extra]
        trainer = Trainer(max_epochs=4, batch_size=16, callbacks=callbacks, checkpoint_dir=directory)
        return model, trainer.fit(model, tabular_bundle, resume_from=resume_from)

    reference, full = run(directory=tmp_path / "a")
    limit = TimeLimit(seconds=0.3)
    _, stopped = run([SlowSteps(), limit])
    assert limit.stopped and 0 < stopped.steps < full.steps
    resumed, result = run(resume_from=tmp_path / "b" / "last.pt")
    assert result.steps == full.steps
    assert_same_weights(reference.state_dict(), resumed.state_dict())


def _worker(out, *args, check=True):
    command = [sys.executable, str(WORKER), str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=300)


@pytest.mark.slow
def test_sigkilled_run_resumes_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    # digits, MLP: 1,257 training images, batch 32 -> 40 steps per epoch; checkpoints every 25 steps
    settings = ["data=digits", "model=mlp", "epochs=2", "batch_size=32", "checkpoint_every=25", "ema=0.99"]
    _worker(tmp_path / "full", *settings)
    killed = _worker(tmp_path / "killed", "--kill-at", "60", *settings, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert (state["global_step"], state["progress"]["epoch"], state["progress"]["position"]) == (50, 2, 10)
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    _worker(tmp_path / "killed", "--resume")
    full = load_file(tmp_path / "full" / "model.safetensors")
    resumed = load_file(tmp_path / "killed" / "model.safetensors")
    assert_same_weights(full, resumed)
    results = [json.loads((tmp_path / run / "results" / "train.json").read_text()) for run in ("full", "killed")]
    assert results[0]["test"] == results[1]["test"] and results[1]["training"]["resumed"] is True
    logged = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("full", "killed")]
    assert [json.loads(line)["val/loss"] for line in logged[0]] == [json.loads(line)["val/loss"] for line in logged[1]]


class Centre(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.centre = torch.nn.Parameter(torch.zeros(2))


class MeanMatching(Step):
    def training_step(self, model, batch, task):
        (points,) = batch
        return (points - model.centre).pow(2).sum(dim=1).mean()


class Points(Task):
    name = "points-resume"
    monitor_modes = {"loss": "min"}


def sample_points(n, generator):
    return (torch.randn(n, 2, generator=generator) + torch.tensor([3.0, -2.0]),)


def test_a_resumed_sample_stream_continues_the_same_samples(tmp_path):
    def fit(directory, extra=(), resume=False):
        torch.manual_seed(0)
        model = Centre()
        trainer = Trainer(
            task=Points(),
            step=MeanMatching(),
            max_steps=30,
            eval_every=10,
            lr=0.05,
            checkpoint_dir=directory,
            checkpoint_every=4,
            callbacks=list(extra),
        )
        result = trainer.fit(model, SampleSource(sample_points), resume_from=directory / "last.pt" if resume else None)
        return model, result

    whole, full = fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", [Interrupt(15)])  # mid-period 2; the checkpoint of step 12 is on disk
    assert load_checkpoint(tmp_path / "b" / "last.pt")["global_step"] == 12
    resumed, result = fit(tmp_path / "b", resume=True)
    assert torch.equal(whole.centre, resumed.centre)
    assert [h["train/loss"] for h in result.history] == [h["train/loss"] for h in full.history]
