"""The train stage with the engine's options: resume, divergence, precision, checkpoints, the --resume flag."""

import json

import pytest
import torch
from safetensors.torch import load_file

import glassnet as gn
from glassnet.cli.main import main
from glassnet.config import RunConfig
from glassnet.errors import CheckpointError, ConfigError, RunError
from glassnet.pipeline.training import prepare_run_dir
from glassnet.train import Callback

# breast-cancer: 398 training rows, batch 32 -> 13 steps per epoch
FAST = RunConfig(
    data="breast-cancer", model="mlp", epochs=3, batch_size=32, model_args={"width": 32}, checkpoint_every=5
)


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.at:
            raise KeyboardInterrupt


class PoisonAt(Callback):
    """Turns a weight matrix into NaNs after optimiser step ``at``, so that the next loss is NaN."""

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.at:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return gn.train(FAST, out=tmp_path_factory.mktemp("runs") / "full").path


def results(run):
    return json.loads((run / "results" / "train.json").read_text())


def test_an_interrupted_run_resumes_to_the_same_weights(uninterrupted, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        gn.train(FAST, out=out, callbacks=[Interrupt(22)])
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / "model.safetensors").exists()
    with pytest.raises(RunError, match="interrupted training.*--resume"):
        prepare_run_dir(out, overwrite=False)
    gn.train(out=out, resume=True)
    for key, value in load_file(uninterrupted / "model.safetensors").items():
        assert torch.equal(load_file(out / "model.safetensors")[key], value), key
    assert results(out)["test"] == results(uninterrupted)["test"] and results(out)["training"]["resumed"]
    assert (out / "metrics.jsonl").read_text().count("\n") == 3


def test_resume_refuses_a_different_configuration_and_missing_checkpoints(uninterrupted, tmp_path):
    with pytest.raises(ConfigError, match="differs in: epochs"):
        gn.train(FAST.with_overrides({"epochs": 5}), out=uninterrupted, resume=True)
    with pytest.raises(RunError, match="no such run directory"):
        gn.train(out=tmp_path / "nowhere", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        gn.train(out=tmp_path / "empty", resume=True)
    with pytest.raises(ConfigError, match="needs the run directory"):
        gn.train(resume=True)


def test_overwrite_starts_afresh_without_the_old_checkpoints(uninterrupted, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        gn.train(FAST, out=out, callbacks=[Interrupt(7)])
    gn.train(FAST.with_overrides({"epochs": 1}), out=out, overwrite=True)
    assert results(out)["training"]["steps"] == 13 and not results(out)["training"]["resumed"]


def test_divergence_is_recorded_and_the_best_epoch_is_kept(tmp_path):
    run = gn.train(FAST, out=tmp_path / "run", callbacks=[PoisonAt(20)]).path
    training = results(run)["training"]
    assert training["diverged"] == {"step": 21, "epoch": 2} and training["stopped_by"] == "terminate_on_nan"
    assert training["best_epoch"] == 1 and results(run)["test"]["accuracy"] > 0.8
    assert all(torch.isfinite(v).all() for v in load_file(run / "model.safetensors").values())


def test_divergence_in_the_first_epoch_falls_back_to_the_last_good_checkpoint(tmp_path):
    run = gn.train(FAST, out=tmp_path / "run", callbacks=[PoisonAt(7)]).path
    assert results(run)["training"]["diverged"] == {"step": 8, "epoch": 1}
    assert all(torch.isfinite(v).all() for v in load_file(run / "model.safetensors").values())
    with pytest.raises(RunError, match="diverged.*step 3 of epoch 1.*Lower the learning rate"):
        gn.train(FAST.with_overrides({"checkpoint_every": 0}), out=tmp_path / "early", callbacks=[PoisonAt(2)])


def test_engine_options_reach_the_trainer(tmp_path):
    config = FAST.with_overrides(
        {"precision": "bf16", "ema": 0.9, "save_top_k": 2, "clip_grad_norm": 1.0, "accumulate": 2, "epochs": 2}
    )
    run = gn.train(config, out=tmp_path / "run").path
    training = results(run)["training"]
    assert training["precision"] == "bf16" and training["steps"] == 2 * 7  # 13 micro-batches -> 7 steps
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept[:2] == ["best.safetensors", "epoch=1-val_loss=" + kept[1].split("=")[-1]] and "last.pt" in kept
    assert results(run)["test"]["accuracy"] > 0.8


def test_fp16_on_cpu_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        gn.train(FAST.with_overrides({"precision": "fp16", "device": "cpu"}), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_resume(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        gn.train(FAST.with_overrides({"epochs": 2}), out=out, callbacks=[Interrupt(16)])
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert "test:     accuracy" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "epochs=4"]) == 2
    assert "takes no other settings. Received: epochs=4" in capsys.readouterr().err
    assert main(["train", "--data", "breast-cancer", "--model", "mlp", "--out", str(tmp_path / "x"), "warmup=2.5"]) == 2
    assert "warmup must be" in capsys.readouterr().err
