"""A run's own files cannot crash or fool the stages: NaN weights, results files of the wrong shape,
links that lead out of the run (docs/reliability.md)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from reliability_checks import cli, refused
from safetensors.torch import load_file, save_file

from glassnet.report.validate import NUMBER, TEXT, Each, problem
from glassnet.train.finite import nonfinite_predictions, nonfinite_weights, require_finite_weights


def _poison(run, value=math.nan):
    """Set one weight of the run's model to ``value``; returns the parameter's name."""
    weights = load_file(run / "model.safetensors")
    name = next(k for k in sorted(weights) if k.endswith("weight"))
    weights[name].view(-1)[0] = value
    save_file(weights, run / "model.safetensors")
    return name


def _write(run, stage, data):
    (run / "results" / f"{stage}.json").write_text(json.dumps(data))


# --- NaN weights ----------------------------------------------------------------------------------


def test_finite_checks_count_per_parameter():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    assert nonfinite_weights(model) == {}
    with torch.no_grad():
        model[1].weight[0, :] = math.inf
        model[0].bias[1] = math.nan
    assert nonfinite_weights(model) == {"0.bias": 1, "1.weight": 2}
    with pytest.raises(Exception, match=r"RUN/model.safetensors holds 3 non-finite weights \(in 0.bias, 1.weight\)"):
        require_finite_weights(model, "RUN/model.safetensors")
    assert nonfinite_predictions(torch.tensor([[0.0, math.nan], [1.0, 2.0], [math.inf, 0.0]])) == 2


def test_evaluate_warns_about_nan_weights(run_copy, capsys):
    name = _poison(run_copy)
    with pytest.warns(RuntimeWarning, match="outputs are not finite"):
        code, out, _ = cli(capsys, ["evaluate", run_copy])
    assert code == 0 and "loss" in out
    warnings = json.loads((run_copy / "results" / "evaluate.json").read_text())["warnings"]
    assert len(warnings) == 1 and "test predictions are NaN or infinite" in warnings[0]
    assert f"holds 1 non-finite weight (in {name})" in warnings[0] and "lower lr" in warnings[0]
    assert cli(capsys, ["report", run_copy])[0] == 0
    assert "not finite" in (run_copy / "report.html").read_text()


@pytest.mark.parametrize("command", [["explain"], ["attack", "--eps", "0.1"], ["compress", "--quantize", "int8"]])
def test_stages_refuse_nan_weights(run_copy, capsys, command):
    name = _poison(run_copy, math.inf)
    refused(capsys, [command[0], run_copy, *command[1:]], "model.safetensors holds 1 non-finite weight", name, "lr")


def test_report_shows_missing_figures_as_na(run_copy, capsys):
    """NaN figures are stored as null: the report reads them as "n/a" instead of failing to format them."""
    faith = dict.fromkeys(["deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc"])
    faith.update(deletion_beats_random=False, insertion_beats_random=False)
    explain = {
        "method_label": "Saliency", "method_description": "", "examples": 2, "target": "predicted class",
        "modality": "tabular", "warnings": [], "summary": {"time_s": None, "budget": {"memory_mb": None,
        "rows_per_pass": None}, "options": {}}, "trust": {"faithfulness": faith, "infidelity": {"infidelity": None},
        "completeness": {"holds": False, "max_relative_error": None}},
        "highest_loss": [{"index": 0, "loss": None, "top_features": [{"feature": "a", "attribution": None}]}],
    }  # fmt: skip
    _write(run_copy, "explain", explain)
    train = json.loads((run_copy / "results" / "train.json").read_text())
    train["baseline"]["comparison"]["network"] = None
    train["training"]["train_time_s"] = None
    _write(run_copy, "train", train)
    assert cli(capsys, ["report", run_copy])[0] == 0
    assert "area n/a vs random n/a" in (run_copy / "report.html").read_text()


# --- results files of the wrong structure ---------------------------------------------------------


def test_schema_problems_are_named():
    schema = {"checks": Each({"passed": NUMBER}), "name?": TEXT}
    assert problem({"checks": {}}, schema) is None
    assert problem([], schema) == "the file should be a mapping, found a list"
    assert problem({"checks": []}, schema) == "'checks' should be a mapping, found a list"
    assert problem({}, schema) == "the file has no 'checks'"
    assert (
        problem({"checks": {"a": {"passed": "x"}}}, schema)
        == "'checks.a.passed' should be a number, found the string 'x'"
    )
    assert problem({"checks": {}, "name": 5}, schema) == "'name' should be a string, found the number 5"


@pytest.mark.parametrize(
    ("stage", "data", "fragments"),
    [
        ("train", [], ["train.json: the file should be a mapping, found a list", "--overwrite"]),
        ("train", {"test": 5, "data": {}}, ["'test' should be a mapping, found the number 5"]),
        ("evaluate", {"accuracy": "x"}, ["evaluate.json: the file has no 'split'", "glassnet evaluate"]),
        ("explain", {"method_label": "x", "checks": []}, ["explain.json: the file has no", "glassnet explain"]),
        ("robustness", {"curves": 5}, ["robustness.json", "glassnet attack"]),
        ("compress", {"variants": [{"name": "fp32"}], "metric": ["a"]}, ["'metric' should be a string", "compress"]),
        ("lr_finder", {"suggestion": "big"}, ["lr_finder.json: 'suggestion' should be a number"]),
    ],
)
def test_report_refuses_results_of_the_wrong_structure(run_copy, capsys, stage, data, fragments):
    _write(run_copy, stage, data)
    before = (run_copy / "report.html").read_bytes()
    refused(capsys, ["report", run_copy], f"results/{stage}.json", *fragments)
    assert (run_copy / "report.html").read_bytes() == before


def test_report_refuses_a_result_that_is_a_number(run_copy, capsys):
    _write(run_copy, "evaluate", 7)
    refused(capsys, ["report", run_copy], "evaluate.json: the file should be a mapping, found the number 7")


def test_report_survives_every_damaged_field(run_copy, capsys):
    """Each field of train.json replaced by a value of another type: the report is written or refused in one line."""
    original = json.loads((run_copy / "results" / "train.json").read_text())
    for key in original:
        for value in ("x", [], None, 3):
            _write(run_copy, "train", {**original, key: value})
            code, _, err = cli(capsys, ["report", run_copy])
            assert code in (0, 2) and "Traceback" not in err and err.count("glassnet: error:") == (code == 2), err


# --- links out of the run -------------------------------------------------------------------------


def test_report_refuses_a_figure_linked_outside_the_run(run_copy, capsys, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the password")
    figure = run_copy / "figures" / "confusion_matrix.png"
    figure.unlink()
    figure.symlink_to(secret)
    before = (run_copy / "report.html").read_bytes()
    refused(capsys, ["report", run_copy], "confusion_matrix.png", str(secret), "outside the run")
    assert (run_copy / "report.html").read_bytes() == before


@pytest.mark.parametrize("name", ["results/train.json", "config.yaml", "model.json", "figures"])
def test_report_refuses_other_files_linked_outside_the_run(run_copy, capsys, tmp_path, name):
    inside = run_copy / name
    outside = tmp_path / "elsewhere" / inside.name
    outside.parent.mkdir()
    inside.rename(outside)
    inside.symlink_to(outside)
    refused(capsys, ["report", run_copy], "outside the run")


def test_report_follows_links_inside_the_run(run_copy, capsys):
    figure = run_copy / "figures" / "confusion_matrix.png"
    figure.rename(run_copy / "figures" / "matrix.png")
    figure.symlink_to("matrix.png")
    assert cli(capsys, ["report", run_copy])[0] == 0
    assert (run_copy / "report.html").read_text().count(
        "data:image/png"
    ) == 5  # curves, confusion matrix, ROC, PR, reliability


def test_report_refuses_a_results_file_nested_too_deeply(run_copy, capsys):
    (run_copy / "results" / "explain.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(capsys, ["report", run_copy], "explain.json", "nests too deeply")
