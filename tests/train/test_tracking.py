"""Experiment trackers: MLflow (SQLite and file stores, read back through MLflow's client) and Weights &
Biases offline (read back from its run file); parameters, per-epoch metrics, artifacts, exact resume,
rank 0 only, and the one-line error when the package is missing."""

import json
import struct
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from glassnet.cli import main
from glassnet.config import RunConfig
from glassnet.errors import ConfigError
from glassnet.train.loggers import MLflowLogger, WandbLogger, config_params, mlflow_tracking_uri

TRAIN = ["train", "--data", "breast-cancer", "--model", "mlp", "--epochs", "2", "--quiet"]
SMALL = ["model.width=8", "threads=1", "baseline=false"]


def history(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def mlflow_client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(client, experiment):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1
    return runs[0]


def artifacts(client, run_id, path=None):
    listed = []
    for item in client.list_artifacts(run_id, path):
        listed += artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return listed


def steps(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_glassnet_train_logs_params_metrics_and_files_to_mlflow(store, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the MLflow logger needs mlflow (pip install 'glassnet[track]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}" if store == "sqlite" else "store/mlruns"
    (tmp_path / "store").mkdir()
    out = tmp_path / "run"
    command = [*TRAIN, "--out", str(out), "loggers=[mlflow]", f"mlflow.tracking_uri={uri}", *SMALL]
    assert main(command) == 0

    client = mlflow_client(uri if store == "sqlite" else (tmp_path / uri).as_uri())
    run = only_run(client, "breast-cancer")
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.tags["glassnet.run_dir"] == str(out)
    params = run.data.params
    assert params["model"] == "mlp" and params["model.width"] == "8" and params["lr"] == "0.003"
    assert params["data"] == "breast-cancer" and params["loggers"] == '["mlflow"]'
    assert not any(key.startswith("mlflow") for key in params)  # where to log is not a parameter
    logged = history(out)
    for key in ("val/loss", "val/accuracy", "train/loss", "lr"):
        assert steps(client, run.info.run_id, key) == [(r["epoch"], pytest.approx(r[key])) for r in logged]
    test = json.loads((out / "results" / "train.json").read_text())["test"]
    assert steps(client, run.info.run_id, "test/accuracy") == [(2, pytest.approx(test["accuracy"]))]
    files = artifacts(client, run.info.run_id)
    assert {"config.yaml", "model.json", "results/train.json", "figures/training_curves.png"} <= set(files)
    if store == "sqlite":  # the artifacts beside the database, not in the working directory's ./mlruns
        assert (tmp_path / "store" / "mlartifacts" / "breast-cancer").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "store"]


def test_mlflow_logger_resumes_exactly(tmp_path, monkeypatch):
    """After a resume the MLflow history is the uninterrupted run's: the same run continues when nothing
    was logged past the checkpoint; otherwise a new run holds the kept epochs and the old one is deleted."""
    pytest.importorskip("mlflow", reason="the MLflow logger needs mlflow (pip install 'glassnet[track]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert mlflow_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"  # the default store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlruns")  # a file store (quicker to create than SQLite's tables)
    fresh, resuming = SimpleNamespace(resuming=False), SimpleNamespace(resuming=True)

    def epoch(logger, n):
        logger.on_epoch_end(fresh, None, {"epoch": n, "step": 10 * n, "train/loss": 1.0 / n})

    first = MLflowLogger(experiment="resume", params={"lr": 0.01})
    first.on_fit_start(fresh, None)
    for n in (1, 2, 3):
        epoch(first, n)
    saved_after_2 = {**first.state_dict(), "records": first.state_dict()["records"][:2]}
    saved_after_3 = first.state_dict()
    assert first.tracking_uri == (tmp_path / "mlruns").as_uri()
    client = mlflow_client(first.tracking_uri)

    # checkpoint after epoch 2, but epoch 3 was logged before the crash: a new run replaces the old one
    second = MLflowLogger(experiment="resume", params={"lr": 0.01})
    second.on_fit_start(resuming, None)
    second.load_state_dict(saved_after_2)
    epoch(second, 3)
    second.on_fit_end(resuming, None)
    run = only_run(client, "resume")
    assert run.info.run_id == second.run_id != first.run_id
    assert steps(client, run.info.run_id, "train/loss") == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert run.data.params == {"lr": "0.01"}
    assert client.get_run(first.run_id).info.lifecycle_stage == "deleted"

    # checkpoint after the last logged epoch: the same run goes on
    third = MLflowLogger(experiment="resume", params={"lr": 0.01})
    third.on_fit_start(resuming, None)
    third.load_state_dict({**saved_after_3, "run_id": second.run_id})
    epoch(third, 4)
    third.on_fit_end(resuming, None)
    assert third.run_id == second.run_id
    assert [s for s, _ in steps(client, second.run_id, "train/loss")] == [1, 2, 3, 4]


def test_trackers_write_nothing_off_rank_zero(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the MLflow logger needs mlflow (pip install 'glassnet[track]')")
    monkeypatch.setenv("RANK", "1")  # as torchrun sets it
    rank1 = SimpleNamespace(is_global_zero=False, resuming=False)
    loggers = [MLflowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")]
    if _has("wandb"):
        loggers.append(WandbLogger(dir=tmp_path / "run"))
    for logger in loggers:
        logger.on_fit_start(rank1, None)
        logger.on_epoch_end(rank1, None, {"epoch": 1, "step": 5, "train/loss": 0.3})
        logger.on_fit_end(rank1, None)
        assert logger.records == [{"epoch": 1, "step": 5.0, "train/loss": 0.3}]  # kept for the checkpoint
    assert list(tmp_path.iterdir()) == []


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize(("logger", "product"), [("mlflow", "MLflow"), ("wandb", r"Weights & Biases \(wandb\)")])
def test_a_missing_tracker_package_is_one_line_saying_how_to_install_it(logger, product, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, logger, None)  # makes the import fail
    with pytest.raises(ConfigError, match=rf"^loggers=\[{logger}\] needs {product}: pip install 'glassnet\[track\]'$"):
        (MLflowLogger if logger == "mlflow" else WandbLogger)()
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out), f"loggers=[{logger}]", *SMALL]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"glassnet: error: loggers=[{logger}] needs ")
    assert not out.exists()  # refused before anything was written


def test_a_tracking_store_that_cannot_be_opened_is_one_line_before_anything_is_written(tmp_path, capsys):
    pytest.importorskip("mlflow", reason="the MLflow logger needs mlflow (pip install 'glassnet[track]')")
    out = tmp_path / "run"
    uri = "postgresql+nodriver://bob:secret@db/mlflow"
    assert main([*TRAIN, "--out", str(out), "loggers=[mlflow]", f"mlflow.tracking_uri={uri}", *SMALL]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert (
        len(error) == 1
        and "cannot open the MLflow tracking store 'postgresql+nodriver://bob:***@db/mlflow'" in error[0]
    )
    assert "secret" not in error[0] and not out.exists()


def test_tracker_parameters_are_the_config_spelled_as_overrides():
    config = RunConfig(model="mlp", model_args={"width": 8}, data_args={"val_fraction": 0.2})
    config = config.with_overrides(["loggers=[mlflow]", "mlflow.tracking_uri=postgresql://bob:secret@db/ml"])
    params = config_params(config.to_dict())
    assert params["model"] == "mlp" and params["model.width"] == 8 and params["data.val_fraction"] == 0.2
    assert params["data"] == "digits" and "step" not in params and params["loggers"] == ["mlflow"]
    assert "secret" not in json.dumps(params)


def test_tracker_options_are_validated():
    config = RunConfig().with_overrides(["loggers=[mlflow,wandb]", "mlflow.experiment=2024", "wandb.mode=online"])
    assert config.loggers == ["mlflow", "wandb"] and config.mlflow == {"experiment": "2024"}
    with pytest.raises(ConfigError, match=r"unknown option mlflow.tracking_url: .* Did you mean mlflow.tracking_uri\?"):
        RunConfig().with_overrides(["mlflow.tracking_url=sqlite:///x.db"])
    with pytest.raises(ConfigError, match="wandb.mode must be offline, online or disabled"):
        RunConfig().with_overrides(["wandb.mode=fast"])
    with pytest.raises(ConfigError, match="mlflow must be of type dict"):
        RunConfig.from_dict({"mlflow": "sqlite:///x.db"})


# --- Weights & Biases, offline ---------------------------------------------------------------------------


def wandb_records(run_file):
    """The records of a W&B run file (a LevelDB-style log of protobuf records), by kind."""
    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending, records = 32768, 7, b"", {}
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if length == 0 and kind == 0:
            position += 7
            continue
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.setdefault(record.WhichOneof("record_type"), []).append(record)
            pending = b""
    return records


def wandb_history(run_dir, steps):
    """``{step: {key: value}}`` and the config of the one offline run in ``run_dir/wandb``, once its file
    holds ``steps`` steps (W&B's writer may still be flushing it when ``finish`` returns)."""
    runs = list((Path(run_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    files = list(runs[0].glob("run-*.wandb"))
    assert len(files) == 1
    deadline = time.monotonic() + 30
    records = wandb_records(files[0])
    while len(records.get("history", [])) < steps and time.monotonic() < deadline:
        time.sleep(0.1)
        records = wandb_records(files[0])
    rows = {}
    for record in records.get("history", []):
        items = {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
        rows[record.history.step.num] = {k: v for k, v in items.items() if not k.startswith("_")}
    config = {}
    for record in records.get("run", []):
        config.update({u.key: json.loads(u.value_json) for u in record.run.config.update})
    return rows, config


def test_glassnet_train_logs_to_weights_and_biases_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the W&B logger needs wandb (pip install 'glassnet[track]')")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out), "loggers=[wandb]", *SMALL]) == 0
    rows, config = wandb_history(out, steps=2)
    logged = history(out)
    assert sorted(rows) == [1, 2]
    for record in logged:
        assert rows[record["epoch"]]["val/loss"] == pytest.approx(record["val/loss"])
        assert rows[record["epoch"]]["val/accuracy"] == pytest.approx(record["val/accuracy"])
    assert config["model.width"] == 8 and config["lr"] == 0.003 and config["data"] == "breast-cancer"


def test_wandb_logger_resumes_exactly_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the W&B logger needs wandb (pip install 'glassnet[track]')")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    fresh, resuming = SimpleNamespace(resuming=False), SimpleNamespace(resuming=True)
    first = WandbLogger(project="resume", params={"lr": 0.01}, dir=tmp_path)
    first.on_fit_start(fresh, None)
    for n in (1, 2, 3):
        first.on_epoch_end(fresh, None, {"epoch": n, "train/loss": 1.0 / n})
    first.on_fit_end(fresh, None)
    state = first.state_dict()
    second = WandbLogger(project="resume", params={"lr": 0.01}, dir=tmp_path)
    second.on_fit_start(resuming, None)
    second.load_state_dict({**state, "records": state["records"][:2]})  # checkpoint after epoch 2
    second.on_epoch_end(resuming, None, {"epoch": 3, "train/loss": 0.25})
    second.on_fit_end(resuming, None)
    rows, config = wandb_history(tmp_path, steps=3)  # the replaced run's files are gone
    assert second.run_id != first.run_id
    assert {step: row["train/loss"] for step, row in rows.items()} == {1: 1.0, 2: 0.5, 3: 0.25}
    assert config["lr"] == 0.01
