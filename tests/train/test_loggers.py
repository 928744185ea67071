"""CSV and TensorBoard loggers: what they write, wider headers, resume, rank 0 only, the missing-package error."""

import csv
import json
import math
import sys
from types import SimpleNamespace

import pytest

from glassnet.cli import main
from glassnet.config import RunConfig
from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import Callback, CSVLogger, TensorBoardLogger, Trainer, seed_everything


def fit(bundle, *callbacks, epochs=3):
    seed_everything(0)
    model = create_model("mlp", bundle.spec, width=16)
    trainer = Trainer(max_epochs=epochs, batch_size=32, callbacks=list(callbacks))
    return trainer.fit(model, bundle)


def read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_csv_logger_writes_one_row_per_epoch_with_every_logged_key(tabular_bundle, tmp_path):
    path = tmp_path / "logs" / "metrics.csv"
    result = fit(tabular_bundle, CSVLogger(path))
    header, rows = read_csv(path)
    assert len(rows) == 3
    assert header[:4] == ["epoch", "step", "lr", "train/loss"] and "val/accuracy" in header
    for row, logged in zip(rows, result.history):
        assert int(row["epoch"]) == logged["epoch"]
        assert float(row["val/loss"]) == logged["val/loss"]  # full precision


class LateKey(Callback):
    """Adds a key from the second epoch on, and a NaN in the third."""

    def on_epoch_end(self, trainer, model, logs):
        if logs["epoch"] >= 2:
            logs["extra"] = 1.5 if logs["epoch"] == 2 else math.nan


def test_a_key_that_appears_later_widens_the_header(tabular_bundle, tmp_path):
    path = tmp_path / "metrics.csv"
    fit(tabular_bundle, LateKey(), CSVLogger(path))
    header, rows = read_csv(path)
    assert header[-1] == "extra"
    assert [r["extra"] for r in rows] == ["", "1.5", "nan"]


def test_csv_logger_after_resume_drops_the_epochs_trained_again(tabular_bundle, tmp_path):
    path = tmp_path / "metrics.csv"
    logger = CSVLogger(path)
    fit(tabular_bundle, logger, epochs=3)
    state = {"rows": 2}  # as saved with a checkpoint taken after epoch 2
    resumed = CSVLogger(path)
    resumed.load_state_dict(state)
    header, rows = read_csv(path)
    assert len(rows) == 2 and "val/loss" in header
    resumed.on_epoch_end(SimpleNamespace(), None, {"epoch": 3, "step": 18, "val/loss": 0.5})
    assert [r["epoch"] for r in read_csv(path)[1]] == ["1", "2", "3"]
    assert logger.state_dict() == {"rows": 3}


def test_loggers_write_nothing_off_rank_zero(tmp_path):
    rank1 = SimpleNamespace(is_global_zero=False, resuming=False)
    csv_logger, tb_logger = CSVLogger(tmp_path / "m.csv"), TensorBoardLogger(tmp_path / "tb")
    for logger in (csv_logger, tb_logger):
        logger.on_fit_start(rank1, None)
        logger.on_epoch_end(rank1, None, {"epoch": 1, "step": 5, "train/loss": 0.3})
        logger.on_fit_end(rank1, None)
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "tb").exists()


def scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_logger_writes_every_numeric_value_against_the_step(tabular_bundle, tmp_path):
    result = fit(tabular_bundle, TensorBoardLogger(tmp_path / "tb"))
    logged = scalars(tmp_path / "tb")
    assert {"train/loss", "val/loss", "val/accuracy", "lr", "epoch"} <= set(logged)
    steps = [h["step"] for h in result.history]
    assert [s for s, _ in logged["val/loss"]] == steps
    assert [v for _, v in logged["val/loss"]] == pytest.approx([h["val/loss"] for h in result.history], rel=1e-6)


def test_tensorboard_logger_after_resume_replaces_the_later_points(tmp_path):
    trainer = SimpleNamespace()
    first = TensorBoardLogger(tmp_path / "tb")
    first.on_fit_start(trainer, None)
    for epoch in (1, 2, 3):
        first.on_epoch_end(trainer, None, {"epoch": epoch, "step": 10 * epoch, "train/loss": 1.0 / epoch})
    first.on_fit_end(trainer, None)
    resumed = TensorBoardLogger(tmp_path / "tb")
    resumed.on_fit_start(trainer, None)
    resumed.load_state_dict({"last_step": 20})  # checkpoint after epoch 2
    resumed.on_epoch_end(trainer, None, {"epoch": 3, "step": 30, "train/loss": 0.25})
    resumed.on_fit_end(trainer, None)
    assert scalars(tmp_path / "tb")["train/loss"] == [(10, 1.0), (20, 0.5), (30, 0.25)]


def test_missing_tensorboard_is_a_config_error_saying_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"pip install 'glassnet\[tensorboard\]'"):
        TensorBoardLogger(tmp_path / "tb")


def test_config_key_loggers_is_validated():
    assert RunConfig().with_overrides(["loggers=[csv,tensorboard]"]).loggers == ["csv", "tensorboard"]
    assert RunConfig().with_overrides(["loggers=csv"]).loggers == ["csv"]
    for bad in ("loggers=[neptune]", "loggers=[csv,csv]", "loggers=3"):
        with pytest.raises(
            ConfigError, match="loggers must be a list of distinct names from csv, tensorboard, mlflow, wandb"
        ):
            RunConfig().with_overrides([bad])


def test_glassnet_train_writes_the_configured_loggers(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", "breast-cancer", "--model", "mlp", "--epochs", "2", "--out", str(out), "--quiet"]
    assert main([*args, "loggers=[csv,tensorboard]", "model.width=16"]) == 0
    _, rows = read_csv(out / "metrics.csv")
    jsonl = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [float(r["val/loss"]) for r in rows] == [r["val/loss"] for r in jsonl]
    assert len(scalars(out / "tensorboard")["val/loss"]) == 2
