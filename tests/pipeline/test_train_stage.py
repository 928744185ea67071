import json

import pytest
import torch

import glassnet as gn
from glassnet.config import RunConfig
from glassnet.errors import DataError, RunError
from glassnet.pipeline.training import default_run_dir

FAST = RunConfig(data="breast-cancer", model="mlp", epochs=3, model_args={"width": 32})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return gn.train(FAST, out=tmp_path_factory.mktemp("runs") / "bc").path


def test_run_directory_layout(run_dir):
    for name in ("config.yaml", "model.json", "model.safetensors", "metrics.jsonl", "results/train.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "figures" / "training_curves.png").is_file()
    assert (run_dir / "figures" / "confusion_matrix.png").is_file()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3


def test_train_results_have_stable_keys(run_dir):
    result = json.loads((run_dir / "results" / "train.json").read_text())
    assert result["task"] == "classify"
    assert 0 <= result["test"]["accuracy"] <= 1 and "macro_f1" in result["test"]
    assert sum(map(sum, result["test"]["confusion_matrix"])) == result["data"]["splits"]["test"]["size"]
    assert result["training"]["epochs_run"] == 3 and result["training"]["best_epoch"] in (1, 2, 3)
    assert result["model"]["parameters"] > 0 and result["model"]["layers"]


def test_load_rebuilds_the_model_and_reproduces_the_test_metrics(run_dir):
    run = gn.load(run_dir)
    assert run.config == FAST and run.spec.name == "breast-cancer" and not run.model.training
    bundle = gn.load_dataset("breast-cancer")
    accuracy = gn.Trainer(task="classify").evaluate(run.model, bundle.test)["accuracy"]
    assert accuracy == pytest.approx(run.result("train")["test"]["accuracy"], abs=1e-6)
    assert run.result("explain") is None


def test_evaluate_writes_evaluate_json(run_dir):
    result = gn.evaluate(run_dir)
    assert result["split"] == "test" and result["data"] == "breast-cancer"
    saved = json.loads((run_dir / "results" / "evaluate.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(
        json.loads((run_dir / "results" / "train.json").read_text())["test"]["accuracy"], abs=1e-6
    )


def test_evaluate_on_incompatible_data_is_refused(run_dir):
    with pytest.raises(DataError, match="does not match the model"):
        gn.evaluate(run_dir, data="digits")


def test_predict_a_split_returns_names_and_truth(run_dir):
    records = gn.predict(run_dir, data="breast-cancer", limit=4)
    assert len(records) == 4 and {"input", "prediction", "confidence", "true"} <= set(records[0])
    assert records[0]["prediction"] in ("malignant", "benign")


def test_same_config_and_seed_give_identical_runs(tmp_path):
    a = gn.train(FAST, out=tmp_path / "a").path
    b = gn.train(FAST, out=tmp_path / "b").path
    results = [json.loads((p / "results" / "train.json").read_text()) for p in (a, b)]
    assert results[0]["test"] == results[1]["test"] and results[0]["val"] == results[1]["val"]
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_existing_run_is_not_replaced_without_overwrite(run_dir):
    before = (run_dir / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="--overwrite"):
        gn.train(FAST, out=run_dir)
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_overwrite_clears_results_of_the_previous_model(tmp_path):
    out = tmp_path / "run"
    gn.train(FAST, out=out)
    (out / "results" / "explain.json").write_text("{}")
    gn.train(FAST.with_overrides(["epochs=1"]), out=out, overwrite=True)
    assert not (out / "results" / "explain.json").exists()
    assert json.loads((out / "results" / "train.json").read_text())["training"]["epochs_run"] == 1


def test_default_run_dir_never_reuses_a_directory(tmp_path):
    first = default_run_dir(FAST, tmp_path)
    assert first.name == "mlp-breast-cancer"
    first.mkdir()
    assert default_run_dir(FAST, tmp_path).name == "mlp-breast-cancer-2"


def test_regression_run_reports_mae_and_rmse(tmp_path):
    run = gn.train(RunConfig(data="diabetes", model="mlp", epochs=2), out=tmp_path / "reg")
    result = json.loads(run.result_file("train").read_text())
    assert {"mae", "rmse"} <= set(result["test"]) and "confusion_matrix" not in result["test"]
    assert (run.figures_dir / "predicted_vs_true.png").is_file()
    prediction = gn.load(run.path).predict(torch.zeros(2, 10)).prediction
    assert prediction.shape == (2, 1)


def test_failed_overwrite_keeps_the_previous_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    gn.train(FAST, out=out)
    before = {p: p.read_bytes() for p in (out / "model.safetensors", out / "config.yaml", out / "results/train.json")}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gn.Trainer, "fit", crash)
    with pytest.raises(KeyboardInterrupt):
        gn.train(FAST.with_overrides(["epochs=1"]), out=out, overwrite=True)
    assert {p: p.read_bytes() for p in before} == before


def _with_spec(bundle, **changes):
    import dataclasses

    return dataclasses.replace(bundle, spec=dataclasses.replace(bundle.spec, **changes))


def test_a_text_run_refuses_data_encoded_with_another_vocabulary():
    from glassnet.train.run import check_compatible

    bundle = gn.load_dataset("digits")
    spec = dataclasses_replace_extra(bundle.spec, {"vocab": ["<pad>", "<unk>", "good", "bad"]})
    check_compatible(spec, _with_spec(bundle, extra={"vocab": ["<pad>", "<unk>", "good", "bad"]}))  # same: fine
    with pytest.raises(DataError, match="different vocabulary"):
        check_compatible(spec, _with_spec(bundle, extra={"vocab": ["<pad>", "<unk>", "bad", "good"]}))


def test_data_whose_classes_differ_is_refused():
    from glassnet.train.run import check_compatible

    bundle = gn.load_dataset("digits")
    reordered = list(reversed(bundle.spec.class_names))
    with pytest.raises(DataError, match="classes"):
        check_compatible(bundle.spec, _with_spec(bundle, class_names=reordered))


def dataclasses_replace_extra(spec, extra):
    import dataclasses

    return dataclasses.replace(spec, extra=extra)


def test_a_failed_attempt_with_loggers_does_not_block_the_corrected_command(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    # what an attempt that failed mid-training with loggers=[csv,tensorboard] leaves behind
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (out / "metrics.csv").write_text("epoch,train/loss\n1,2.3\n2,2.2\n")
    (out / "tensorboard").mkdir()
    run = gn.train(RunConfig(data="digits", model="mlp", epochs=1, loggers=["csv"]), out=out)
    assert run.read_result("train")["test"]["accuracy"] > 0.5
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 2  # header + the one new epoch
