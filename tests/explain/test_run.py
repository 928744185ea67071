"""explain_run and `glassnet explain`: explain.json, figures, report section, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from glassnet.cli import main
from glassnet.errors import ConfigError, RunError
from glassnet.explain import explain_run
from glassnet.report import report


@pytest.mark.slow  # trains the digits CNN
def test_explain_run_writes_results_figures_and_report(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    result = explain_run(run, "integrated_gradients", n=20)
    written = json.loads((run / "results" / "explain.json").read_text())
    assert written["method"] == "integrated_gradients" and written["examples"] == 20
    trust = written["trust"]
    assert {"faithfulness", "infidelity", "sensitivity", "randomisation", "completeness"} <= set(trust)
    assert trust["completeness"]["holds"]
    assert len(written["global"]["per_class"]) == 10  # examples are taken class by class
    assert (
        len(written["highest_loss"]) == 6 and written["highest_loss"][0]["loss"] >= written["highest_loss"][-1]["loss"]
    )
    for name in ("explain_examples", "explain_classes", "explain_curves", "explain_highest_loss"):
        assert (run / "figures" / f"{name}.png").is_file(), name
    assert result["figures"] == written["figures"]
    page = report(run).read_text()
    assert "<h2>Explanations</h2>" in page and "Can this explanation be trusted?" in page
    assert 'src="http' not in page and 'href="http' not in page


def test_explain_run_on_a_table_writes_feature_table(cancer_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cancer_run, run)
    result = explain_run(run, "feature_ablation", n=16)
    features = result["views"]["features"]
    assert len(features) == 30 and features[0]["mean_abs"] >= features[-1]["mean_abs"]
    assert "top_features" in result["highest_loss"][0]
    assert "explain_features" in result["figures"]
    assert result["trust"]["randomisation"] == {"skipped": "the test applies to gradient methods"}
    assert "mean |attribution|" in report(run).read_text()


def test_without_checks_nothing_is_checked(cancer_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cancer_run, run)
    result = explain_run(run, "saliency", n=8, checks=False)
    assert "trust" not in result and result["warnings"] == []


def test_refusals_and_bad_runs(cancer_run, tmp_path):
    with pytest.raises(ConfigError, match="Grad-CAM cannot explain this model"):
        explain_run(cancer_run, "grad_cam", n=4)
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        explain_run(cancer_run, "saliency", n=0)
    with pytest.raises(RunError, match="does not exist"):
        explain_run(tmp_path / "nothing", "saliency")


def test_cli_explain(cancer_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cancer_run, run)
    assert main(["explain", str(run), "--method", "ig", "--n", "8", "--report"]) == 0
    out = capsys.readouterr().out
    assert "Integrated gradients on 8 test examples" in out and "deletion: area" in out and "report:" in out
    assert json.loads((run / "results" / "explain.json").read_text())["examples"] == 8


def test_cli_errors_exit_2(cancer_run, tmp_path, capsys):
    assert main(["explain", str(cancer_run), "--method", "gradcm"]) == 2
    assert "Did you mean 'grad_cam'" in capsys.readouterr().err
    assert main(["explain", str(cancer_run), "--method", "grad_cam"]) == 2
    assert "Methods that fit it" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "missing")]) == 2


def test_time_series_run_attributes_time_steps(tmp_path):
    run = tmp_path / "sun"
    args = ["--data", "sunspots", "--model", "cnn1d", "--epochs", "2", "--out", str(run), "--quiet"]
    assert main(["train", *args]) == 0
    result = explain_run(run, "grad_cam", n=8)
    steps = result["views"]["per_time_step"]
    assert len(steps) == 24 and result["views"]["per_channel"][0]["channel"] == "SUNACTIVITY"
    assert result["target"] == "output 0" and "explain_examples" in result["figures"]
    assert result["summary"]["layer"]  # Grad-CAM found the last Conv1d block by itself


TEXT_CHECKS = {
    "faithfulness": {
        "deletion_beats_random": True,
        "insertion_beats_random": True,
        "deletion_auc": 0.2,
        "random_deletion_auc": 0.4,
        "insertion_auc": 0.7,
        "random_insertion_auc": 0.4,
    },
    "randomisation": {
        "rank_correlation": 0.07,
        "raw_rank_correlation": 0.78,
        "abs_rank_correlation": 0.78,
        "example_share": 0.148,
        "min_example_share": 0.05,
        "threshold": 0.5,
        "passed": True,
    },
}


def test_report_and_warnings_explain_the_text_randomisation_test():
    from glassnet.explain.run import _warnings
    from glassnet.report.explain import _trust_table

    page = _trust_table(TEXT_CHECKS)
    assert "after removing the position profile (before: 0.78)" in page and "15% of the explanation" in page
    assert _warnings(TEXT_CHECKS, "saliency") == []
    flat = {**TEXT_CHECKS, "randomisation": {**TEXT_CHECKS["randomisation"], "example_share": 0.01, "passed": False}}
    (warning,) = _warnings(flat, "saliency")
    assert "only 1% of the explanation varies between texts" in warning and "position" in warning
