"""The report card's classifier sections: per-class scores for every classifier, and for binary tasks the
ROC, precision-recall and reliability figures with their figures said in words."""

import json
import re
import shutil

import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.config import RunConfig

CURVES = ("roc_curve", "precision_recall_curve", "reliability")


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    config = RunConfig(data="breast-cancer", model="mlp", epochs=2, model_args={"width": 16})
    return gn.train(config, out=tmp_path_factory.mktemp("runs") / "bc").path


def _section(html, title):
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _edit(run, change):
    path = run / "results" / "train.json"
    result = json.loads(path.read_text())
    change(result)
    path.write_text(json.dumps(result))
    return result


def test_binary_report_shows_per_class_scores_curves_and_calibration_in_words(binary_run):
    html = gn.report(binary_run).read_text()
    test = json.loads((binary_run / "results" / "train.json").read_text())["test"]
    per_class = _section(html, "Per-class results")
    assert '<td class="">malignant</td>' in per_class and '<td class="">benign</td>' in per_class
    assert f"{test['per_class']['benign']['recall']:.4f}" in per_class and "The weakest class is" in per_class

    ranking = _section(html, "Ranking and calibration")
    assert f"ROC AUC {test['roc']['auc']:.3f}" in ranking
    assert f"Average precision {test['precision_recall']['average_precision']:.3f}" in ranking
    assert f"{test['precision_recall']['positive_rate']:.3f} (the dashed line)" in ranking
    assert f"(ECE) {test['calibration']['ece']:.3f}</b>, over 10 equal-width bins" in ranking
    cal = test["calibration"]
    fullest = max(range(10), key=lambda i: cal["count"][i])
    assert (
        f"Of the {cal['count'][fullest]} test examples given a probability of benign between {fullest / 10:.1f} and "
        f"{(fullest + 1) / 10:.1f} (on average {cal['mean_predicted'][fullest]:.2f}), "
        f"{cal['observed'][fullest]:.2f} were benign." in ranking
    )
    assert ranking.count('src="data:image/png;base64,') == 3
    assert html.index("<h2>Test predictions</h2>") < html.index("<h2>Per-class results</h2>")


def test_multiclass_report_has_the_table_and_calibration_without_curves(tmp_path):
    config = RunConfig(data="digits", model="mlp", epochs=1, baseline=False, model_args={"width": 16})
    html = gn.report(gn.train(config, out=tmp_path / "digits").path).read_text()
    per_class = _section(html, "Per-class results")
    assert per_class.count("<tr>") == 11  # header and ten classes
    ranking = _section(html, "Ranking and calibration")
    assert "ROC AUC" not in ranking and "data:image/png" not in ranking
    assert "equal-width bins of the confidence" in ranking and "were right." in ranking
    assert "<summary>Reliability per bin</summary>" in ranking


def test_a_run_trained_before_these_records_has_no_such_sections(binary_run, tmp_path):
    old = shutil.copytree(binary_run, tmp_path / "old")
    _edit(old, lambda r: [r["test"].pop(k) for k in ("per_class", "roc", "precision_recall", "calibration")])
    for name in CURVES:
        (old / "figures" / f"{name}.png").unlink()
    html = gn.report(old).read_text()
    assert "<h2>Test metrics</h2>" in html
    assert "Per-class results" not in html and "Ranking and calibration" not in html


def test_missing_figures_leave_the_words(binary_run, tmp_path):
    copy = shutil.copytree(binary_run, tmp_path / "copy")
    for name in CURVES:
        (copy / "figures" / f"{name}.png").unlink()
    ranking = _section(gn.report(copy).read_text(), "Ranking and calibration")
    assert "ROC AUC" in ranking and "data:image" not in ranking
    assert "<summary>Reliability per bin</summary>" in ranking  # the diagram's numbers instead


def test_null_figures_read_n_a(binary_run, tmp_path):
    copy = shutil.copytree(binary_run, tmp_path / "copy")

    def blank(result):
        result["test"]["roc"]["auc"] = None
        result["test"]["calibration"]["observed"] = [None] * 10

    _edit(copy, blank)
    ranking = _section(gn.report(copy).read_text(), "Ranking and calibration")
    assert "ROC AUC n/a" in ranking and "Of the" not in ranking


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r["test"]["roc"].update(auc="high"), "'test.roc.auc' should be a number"),
        (lambda r: r["test"]["calibration"].update(count=5), "'test.calibration.count' should be a list"),
        (lambda r: r["test"]["per_class"]["benign"].update(recall=[1]), "'test.per_class.benign.recall'"),
        (lambda r: r["test"].update(precision_recall="x"), "'test.precision_recall' should be"),
    ],
)
def test_damaged_records_are_refused_in_one_line(binary_run, tmp_path, capsys, change, where):
    copy = shutil.copytree(binary_run, tmp_path / "copy")
    _edit(copy, change)
    assert main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results/train.json" in err and where in err, err
    assert "Traceback" not in err and re.match("glassnet: error: ", err)
