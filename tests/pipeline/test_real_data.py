"""Slow tests: train on real (bundled) data to a stated accuracy, end to end."""

import json

import pytest

import glassnet as gn
from glassnet.config import RunConfig

pytestmark = pytest.mark.slow


def test_demo_reaches_097_on_digits_and_writes_the_report(tmp_path):
    run = gn.demo(tmp_path / "demo")
    result = json.loads(run.result_file("train").read_text())
    assert result["test"]["accuracy"] >= 0.97
    assert result["data"]["splits"]["test"]["size"] == 270
    html = run.report.read_text()
    assert "<h2>Test predictions</h2>" in html
    # the main job audits the model too: each stage's results and its report section
    explained = json.loads(run.result_file("explain").read_text())
    assert explained["method"] == "integrated_gradients" and not explained["warnings"]
    robust = json.loads(run.result_file("robustness").read_text())
    assert robust["clean_accuracy"] >= 0.97 and robust["robust_accuracy"]["0.1"] < robust["clean_accuracy"]
    compressed = json.loads(run.result_file("compress").read_text())
    assert compressed["onnx"]["passed"] and len(compressed["variants"]) >= 3
    for title in ("Explanations", "Robustness", "Compression"):
        assert f"<h2>{title}</h2>" in html


def test_demo_without_the_audit_trains_and_reports_only(tmp_path):
    run = gn.demo(tmp_path / "demo", config=gn.pipeline.DEMO_CONFIG.with_overrides({"epochs": 3}), audit=False)
    assert not run.result_file("explain").exists() and not run.result_file("robustness").exists()
    assert run.report.read_text().count("data:image/png;base64,") == 3


def test_mlp_on_breast_cancer(tmp_path):
    # logistic regression on standardised features scores 0.965 on this test split (86 rows)
    run = gn.train(RunConfig(data="breast-cancer", model="mlp", epochs=30), out=tmp_path / "bc")
    assert json.loads(run.result_file("train").read_text())["test"]["accuracy"] >= 0.93


def test_mlp_regression_on_diabetes_beats_the_mean_by_a_wide_margin(tmp_path):
    # predicting the training mean gives MAE 63.3 on this test split; linear regression 41.5
    run = gn.train(RunConfig(data="diabetes", model="mlp", epochs=100, lr=0.01), out=tmp_path / "db")
    test = json.loads(run.result_file("train").read_text())["test"]
    assert test["mae"] <= 47.0 and test["rmse"] >= test["mae"]
