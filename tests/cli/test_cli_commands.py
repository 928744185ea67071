"""Happy paths of the ``glassnet`` command, run in-process on small, fast runs."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits

from glassnet.cli import main

TABULAR = ["--data", "breast-cancer", "--model", "mlp"]  # as in conftest.py
BREAST_CANCER_CLASSES = {"malignant", "benign"}


# ---------------------------------------------------------------- helpers


def run_ok(capsys, *args):
    """Run ``glassnet ARGS`` in-process, assert it succeeds and return its stdout."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "error" not in captured.err, captured.err
    return captured.out


def read_json(path):
    return json.loads(Path(path).read_text())


def read_yaml(path):
    return yaml.safe_load(Path(path).read_text())


def table_names(stdout):
    """First column of a printed table, header and rule removed (the continuation lines of wrapped cells too)."""
    return [line.split()[0] for line in stdout.splitlines()[2:] if line.strip() and not line.startswith(" ")]


def predict_records(capsys, run, *inputs, suffix=".json"):
    """``glassnet predict RUN INPUTS --output FILE`` and the records it wrote."""
    output = Path(inputs[0]).parent / f"predictions{suffix}"
    out = run_ok(capsys, "predict", run, *inputs, "--output", output)
    assert f"written:  {output}" in out
    return read_json(output)


def breast_cancer_rows(n):
    return load_breast_cancer().data[:n].astype(np.float32)


def write_csv(path, rows, header=None):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows.tolist())
    return path


# ---------------------------------------------------------------- listings


def test_datasets_lists_the_builtin_datasets(capsys):
    names = table_names(run_ok(capsys, "datasets"))
    assert {"digits", "breast-cancer", "diabetes"} <= set(names)


def test_models_lists_cnn_and_mlp(capsys):
    assert {"cnn", "mlp"} <= set(table_names(run_ok(capsys, "models")))


def test_models_for_a_tabular_dataset_excludes_cnn(capsys):
    names = table_names(run_ok(capsys, "models", "--data", "breast-cancer"))
    assert "mlp" in names and "cnn" not in names


# ---------------------------------------------------------------- train


def test_train_writes_a_complete_run(tabular_run):
    for name in ("config.yaml", "model.json", "model.safetensors", "metrics.jsonl", "results/train.json"):
        assert (tabular_run / name).is_file(), name
    assert len((tabular_run / "metrics.jsonl").read_text().splitlines()) == 2
    config = read_yaml(tabular_run / "config.yaml")
    assert (config["data"], config["model"], config["epochs"]) == ("breast-cancer", "mlp", 2)
    assert config["model_args"] == {"width": 16}
    result = read_json(tabular_run / "results" / "train.json")
    assert 0.5 < result["test"]["accuracy"] <= 1
    assert result["training"]["epochs_run"] == 2


def test_train_prints_the_run_and_its_test_metrics(capsys, tmp_path):
    out = run_ok(capsys, "train", *TABULAR, "--epochs", "1", "--out", tmp_path / "run", "--quiet", "model.width=8")
    assert f"run:      {tmp_path / 'run'}" in out
    accuracy = read_json(tmp_path / "run" / "results" / "train.json")["test"]["accuracy"]
    assert f"accuracy {accuracy:.4f}" in out


def test_train_overwrite_replaces_the_run_and_its_stale_results(capsys, tmp_path):
    out = tmp_path / "run"
    run_ok(capsys, "train", *TABULAR, "--epochs", "1", "--out", out, "--quiet", "model.width=8")
    run_ok(capsys, "evaluate", out)
    assert (out / "results" / "evaluate.json").is_file()
    run_ok(capsys, "train", *TABULAR, "--epochs", "2", "--out", out, "--quiet", "--overwrite", "model.width=8")
    assert read_yaml(out / "config.yaml")["epochs"] == 2
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert not (out / "results" / "evaluate.json").exists()


def test_train_from_a_config_file_with_an_override_that_wins(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "data: breast-cancer\nmodel: mlp\nepochs: 1\nlr: 0.01\nbatch_size: 32\nmodel_args:\n  width: 12\n"
    )
    out = tmp_path / "run"
    run_ok(capsys, "train", "--config", config, "--out", out, "--quiet", "lr=0.02", "model.depth=1")
    saved = read_yaml(out / "config.yaml")
    assert saved["lr"] == 0.02 and saved["batch_size"] == 32 and saved["epochs"] == 1
    assert saved["model_args"] == {"width": 12, "depth": 1}
    hparams = read_json(out / "model.json")["hparams"]
    assert hparams["width"] == 12 and hparams["depth"] == 1


def test_train_accepts_overrides_on_both_sides_of_an_option(capsys, tmp_path):
    out = tmp_path / "run"
    run_ok(capsys, "train", *TABULAR, "epochs=1", "--out", out, "--quiet", "model.width=8")
    saved = read_yaml(out / "config.yaml")
    assert saved["epochs"] == 1 and saved["model_args"] == {"width": 8}


def test_train_cnn_on_digits(image_run):
    assert read_json(image_run / "model.json")["hparams"]["channels"] == [8]
    assert len((image_run / "metrics.jsonl").read_text().splitlines()) == 1
    assert 0 <= read_json(image_run / "results" / "train.json")["test"]["accuracy"] <= 1


# ---------------------------------------------------------------- evaluate and report


def test_evaluate_writes_evaluate_json(capsys, tabular_run):
    out = run_ok(capsys, "evaluate", tabular_run)
    result = read_json(tabular_run / "results" / "evaluate.json")
    assert (result["data"], result["split"], result["size"]) == ("breast-cancer", "test", 86)
    trained = read_json(tabular_run / "results" / "train.json")["test"]["accuracy"]
    assert result["test"]["accuracy"] == pytest.approx(trained, abs=1e-6)
    assert "breast-cancer test split (86 examples)" in out and "accuracy" in out


def test_evaluate_another_split(capsys, tabular_run):
    run_ok(capsys, "evaluate", tabular_run, "--split", "val")
    result = read_json(tabular_run / "results" / "evaluate.json")
    assert result["split"] == "val" and "accuracy" in result["val"]


def test_report_writes_report_html(capsys, tabular_run):
    out = run_ok(capsys, "report", tabular_run)
    html = (tabular_run / "report.html").read_text()
    assert str(tabular_run / "report.html") in out
    assert html.startswith("<!DOCTYPE html>") and "mlp on breast-cancer" in html


# ---------------------------------------------------------------- predict


def test_predict_a_split_prints_a_table(capsys, tabular_run):
    out = run_ok(capsys, "predict", tabular_run, "--data", "breast-cancer", "--limit", "5")
    lines = out.splitlines()
    assert lines[0].split() == ["input", "prediction", "confidence", "true"]
    assert len(lines) == 2 + 5 and lines[2].startswith("breast-cancer:test[0]")


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_predict_a_split_to_a_file(capsys, tabular_run, tmp_path, suffix):
    output = tmp_path / f"preds{suffix}"
    run_ok(capsys, "predict", tabular_run, "--data", "breast-cancer", "--limit", "5", "--output", output)
    if suffix == ".csv":
        with open(output, newline="") as f:
            records = list(csv.DictReader(f))
    else:
        records = read_json(output)
    assert [r["input"] for r in records] == [f"breast-cancer:test[{i}]" for i in range(5)]
    for record in records:
        assert record["prediction"] in BREAST_CANCER_CLASSES and record["true"] in BREAST_CANCER_CLASSES
        assert 0.5 <= float(record["confidence"]) <= 1


def test_predict_csv_rows_with_and_without_header_match_npy(capsys, tabular_run, tmp_path):
    rows = breast_cancer_rows(3)
    feature_names = read_json(tabular_run / "model.json")["spec"]["feature_names"]
    np.save(tmp_path / "rows.npy", rows)
    plain = write_csv(tmp_path / "plain.csv", rows)
    named = write_csv(tmp_path / "named.csv", rows, header=feature_names)

    expected = predict_records(capsys, tabular_run, tmp_path / "rows.npy")
    assert [r["input"] for r in expected] == [f"{tmp_path / 'rows.npy'}[{i}]" for i in range(3)]
    for path in (plain, named):
        records = predict_records(capsys, tabular_run, path)
        assert [r["input"] for r in records] == [f"{path}:{n}" for n in (1, 2, 3)]
        assert [(r["prediction"], r["confidence"]) for r in records] == [
            (r["prediction"], r["confidence"]) for r in expected
        ]


def test_predict_several_files_at_once(capsys, tabular_run, tmp_path):
    rows = breast_cancer_rows(3)
    np.save(tmp_path / "one.npy", rows[0])
    csv_file = write_csv(tmp_path / "two.csv", rows[1:])
    records = predict_records(capsys, tabular_run, tmp_path / "one.npy", csv_file)
    assert [r["input"] for r in records] == [str(tmp_path / "one.npy"), f"{csv_file}:1", f"{csv_file}:2"]


@pytest.mark.parametrize(("mode", "size"), [("L", (8, 8)), ("L", (28, 28)), ("RGB", (32, 24))])
def test_predict_an_image(capsys, image_run, tmp_path, mode, size):
    digit = (load_digits().images[0] / 16.0 * 255).astype(np.uint8)
    image = Image.fromarray(digit, mode="L").resize(size, Image.NEAREST).convert(mode)
    image.save(tmp_path / "digit.png")
    (record,) = predict_records(capsys, image_run, tmp_path / "digit.png")
    assert record["input"] == str(tmp_path / "digit.png")
    assert record["prediction"] in [str(d) for d in range(10)]
    assert 0 < record["confidence"] <= 1


def test_predict_an_npy_batch_of_images(capsys, image_run, tmp_path):
    batch = (load_digits().images[:4] / 16.0).astype(np.float32)[:, None]
    np.save(tmp_path / "batch.npy", batch)
    np.save(tmp_path / "single.npy", batch[0])
    records = predict_records(capsys, image_run, tmp_path / "batch.npy", tmp_path / "single.npy")
    assert [r["input"] for r in records] == [f"{tmp_path / 'batch.npy'}[{i}]" for i in range(4)] + [
        str(tmp_path / "single.npy")
    ]
    assert records[0]["prediction"] == records[4]["prediction"]
    assert all(r["prediction"] in [str(d) for d in range(10)] for r in records)
