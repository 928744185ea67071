"""What a classifier's run records on its test split: per-class scores, ROC and precision-recall curves
(binary tasks) and calibration, checked against scikit-learn and torchmetrics."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

import glassnet as gn
from glassnet.config import RunConfig
from glassnet.runs import RunDir
from glassnet.train import Classification
from glassnet.train.tasks import CURVE_POINTS, TaskContext, calibration, precision_recall_curve, roc_curve

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    config = RunConfig(data="breast-cancer", model="mlp", epochs=2, model_args={"width": 16})
    return gn.train(config, out=tmp_path_factory.mktemp("runs") / "bc")


def _test_results(run):
    return json.loads(run.result_file("train").read_text())["test"]


def test_per_class_scores_match_scikit_learn():
    torch.manual_seed(0)
    outputs = torch.randn(60, 4)
    outputs[:, 3] -= 10  # class 3 is never predicted: precision 0, as scikit-learn's zero_division=0
    targets = torch.randint(0, 4, (60,))
    scores = Classification().per_class(outputs, targets)
    expected = precision_recall_fscore_support(targets, outputs.argmax(1), labels=range(4), zero_division=0)
    for i, row in enumerate(scores):
        assert row["support"] == int(expected[3][i])
        for key, column in zip(("precision", "recall", "f1"), expected[:3]):
            assert row[key] == pytest.approx(column[i], abs=1e-6)
    assert scores[3]["precision"] == 0 and scores[3]["recall"] == 0


def test_calibration_bins_by_hand():
    score = torch.tensor([0.05, 0.15, 0.15, 0.95, 1.0])
    hit = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    result = calibration(score, hit, "probability of yes", "yes")
    assert result["bins"] == 10 and result["count"] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # 1.0 in the last bin
    assert result["mean_predicted"][:3] == [0.05, 0.15, None] and result["mean_predicted"][9] == 0.975
    assert result["observed"][:2] == [0.0, 0.5] and result["observed"][9] == 1.0
    assert result["ece"] == pytest.approx((0.05 + 2 * 0.35 + 2 * 0.025) / 5)
    assert result["score"] == "probability of yes" and result["event"] == "yes"


def test_ece_matches_torchmetrics():
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    generator = torch.Generator().manual_seed(1)
    probability = torch.rand(500, generator=generator) * 0.999
    targets = (torch.rand(500, generator=generator) < probability**2).long()
    ours = calibration(probability, targets.float(), "p", "positive")["ece"]
    assert ours == pytest.approx(float(binary_calibration_error(probability, targets, n_bins=10)), abs=1e-5)

    logits = torch.randn(400, 5, generator=generator) * 2
    labels = torch.randint(0, 5, (400,), generator=generator)
    confidence, predicted = logits.softmax(1).max(1)
    ours = calibration(confidence, (predicted == labels).float(), "confidence", "right")["ece"]
    expected = multiclass_calibration_error(logits.softmax(1), labels, num_classes=5, n_bins=10)
    assert ours == pytest.approx(float(expected), abs=1e-5)


def test_curves_match_scikit_learn_and_are_thinned():
    generator = torch.Generator().manual_seed(2)
    targets = (torch.rand(3000, generator=generator) < 0.3).long()
    score = (targets * 0.3 + torch.rand(3000, generator=generator) * 0.7).clamp(0, 1)
    roc = roc_curve(score, targets, "yes")
    pr = precision_recall_curve(score, targets, "yes")
    assert roc["auc"] == pytest.approx(roc_auc_score(targets, score), abs=1e-5)
    assert pr["average_precision"] == pytest.approx(average_precision_score(targets, score), abs=1e-5)
    assert pr["positive_rate"] == pytest.approx(float(targets.float().mean()))
    for curve, keys in ((roc, ("fpr", "tpr")), (pr, ("recall", "precision"))):
        assert all(2 < len(curve[k]) <= CURVE_POINTS for k in keys)
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert roc["fpr"] == sorted(roc["fpr"]) and roc["tpr"] == sorted(roc["tpr"])


def _context(tmp_path):
    return TaskContext(RunDir(tmp_path), None, None, None, {"test": {}})


def test_no_curves_without_both_classes_and_nothing_from_non_finite_outputs(tmp_path):
    task = Classification()
    context = _context(tmp_path)
    task.scores(context, torch.tensor([[0.0, 1.0], [0.5, 0.2], [1.0, 3.0]]), torch.tensor([1, 1, 1]), ["no", "yes"])
    test = context.results["test"]
    assert "roc" not in test and "precision_recall" not in test and sum(test["calibration"]["count"]) == 3
    assert not (tmp_path / "figures" / "roc_curve.png").exists()
    assert (tmp_path / "figures" / "reliability.png").read_bytes()[:8] == PNG

    context = _context(tmp_path)
    task.scores(context, torch.tensor([[math.nan, 1.0], [0.5, 0.2]]), torch.tensor([0, 1]), ["no", "yes"])
    assert context.results["test"] == {}


def test_a_binary_run_records_curves_and_calibration(binary_run):
    test = _test_results(binary_run)
    assert {"loss", "accuracy", "macro_f1", "confusion_matrix", "examples"} <= set(test)  # kept as they were
    size = sum(map(sum, test["confusion_matrix"]))
    assert list(test["per_class"]) == ["malignant", "benign"]
    assert sum(v["support"] for v in test["per_class"].values()) == size
    recall = test["per_class"]["benign"]["recall"]
    assert recall == pytest.approx(test["confusion_matrix"][1][1] / sum(test["confusion_matrix"][1]), abs=1e-5)

    # the stored AUC and AP are those of the positive class (class 1, benign) of the run's own predictions
    x, y = binary_run.split("test")
    probability = binary_run.predict(x).probabilities[:, 1]
    assert test["roc"]["positive_class"] == "benign" == test["precision_recall"]["positive_class"]
    assert test["roc"]["auc"] == pytest.approx(roc_auc_score(y, probability), abs=1e-4)
    assert test["precision_recall"]["average_precision"] == pytest.approx(average_precision_score(y, probability), 1e-4)
    assert test["precision_recall"]["positive_rate"] == pytest.approx(float(y.float().mean()), abs=1e-5)

    cal = test["calibration"]
    assert cal["score"] == "probability of benign" and cal["event"] == "benign" and cal["bins"] == 10
    assert sum(cal["count"]) == size and 0 <= cal["ece"] <= 1
    filled = [i for i, n in enumerate(cal["count"]) if n]
    assert all(i / 10 <= cal["mean_predicted"][i] <= (i + 1) / 10 for i in filled)
    assert all(cal["mean_predicted"][i] is None for i in range(10) if i not in filled)
    for name in ("roc_curve", "precision_recall_curve", "reliability"):
        assert binary_run.figure(name).read_bytes()[:8] == PNG


def test_a_multiclass_run_records_per_class_scores_and_confidence_calibration(tmp_path):
    config = RunConfig(data="digits", model="mlp", epochs=1, baseline=False, model_args={"width": 16})
    run = gn.train(config, out=tmp_path / "digits")
    test = _test_results(run)
    assert list(test["per_class"]) == [str(i) for i in range(10)]
    assert [v["support"] for v in test["per_class"].values()] == [sum(row) for row in test["confusion_matrix"]]
    assert "roc" not in test and "precision_recall" not in test
    cal = test["calibration"]
    assert cal["score"] == "confidence" and cal["event"] == "right"
    assert cal["count"][0] == 0  # ten classes: the top class has at least 0.1
    right = sum(row[i] for i, row in enumerate(test["confusion_matrix"]))
    observed = sum(o * n for o, n in zip(cal["observed"], cal["count"]) if n)
    # the bins' hits add up to the right predictions, to the rounding of each bin's share to 4 decimals
    assert observed == pytest.approx(right, abs=0.5e-4 * sum(cal["count"]) + 1e-9)
    assert not run.figure("roc_curve").exists() and not run.figure("reliability").exists()
    assert np.isfinite(cal["ece"])
