"""The report's words about its figures and numbers (issue 19): only mistakes under "most wrong", options
in plain words, a note when a stage used a subset, tabular adversarial examples as a table."""

from __future__ import annotations

import json

import pytest

from glassnet.report import ReportContext
from glassnet.runs import RunDir

TRAIN = {
    "task": "classify",
    "test": {"accuracy": 0.9926, "loss": 0.03},
    "val": {"accuracy": 0.98},
    "data": {"splits": {"train": {"size": 1257}, "val": {"size": 270}, "test": {"size": 270}}},
}
SPEC = {"class_names": ["benign", "malignant"], "feature_names": ["radius", "area"]}


@pytest.fixture
def context(tmp_path):
    """``context(explain=..., robustness=...)``: a report context over a run directory holding those results."""

    def make(**results):
        (tmp_path / "results").mkdir(exist_ok=True)
        for stage, data in {"train": TRAIN, **results}.items():
            (tmp_path / "results" / f"{stage}.json").write_text(json.dumps(data))
        return ReportContext(run=RunDir(tmp_path), model={"name": "mlp", "spec": SPEC})

    return make


def _explain(highest_loss, confused=None, options=None):
    return {
        "method_label": "Integrated gradients",
        "method_description": "How much each input adds.",
        "examples": 32,
        "target": "predicted class",
        "modality": "image",
        "summary": {
            "time_s": 1.2,
            "budget": {"memory_mb": 512.0, "rows_per_pass": 8306},
            "options": options
            if options is not None
            else {"n_steps": 50, "examples_per_chunk": 32, "internal_batch_size": 8306, "method": "gausslegendre"},
        },
        "global": {"confused_pairs": confused if confused is not None else []},
        "highest_loss": highest_loss,
    }


def _worst(index, true, predicted, loss):
    return {"index": index, "true": true, "predicted": predicted, "confidence": 0.9, "loss": loss}


def test_most_wrong_lists_only_mistakes(context):
    from glassnet.report.explain import explanations

    listed = [_worst(9, "2", "1", 6.5), _worst(100, "9", "1", 0.86), _worst(3, "9", "9", 0.62)]
    html = explanations(context(explain=_explain(listed, [{"true": "2", "predicted": "1", "count": 1}])))
    assert ">9</td>" in html and ">100</td>" in html
    assert ">3</td>" not in html  # predicted correctly: never among the mistakes


def test_no_mistakes_is_said(context):
    from glassnet.report.explain import explanations

    html = explanations(context(explain=_explain([_worst(3, "9", "9", 0.62), _worst(4, "1", "1", 0.3)])))
    assert "No mistakes on the test split" in html and ">3</td>" not in html
    nothing_listed = {**_explain([]), "task": "classify"}  # explain lists mistakes only: none to list
    assert "No mistakes on the test split" in explanations(context(explain=nothing_listed))


def test_explain_options_are_in_plain_words(context):
    from glassnet.report.explain import explanations

    html = explanations(context(explain=_explain([])))
    assert "internal_batch_size" not in html and "gausslegendre" not in html and "8306" not in html
    assert "50-point Gauss-Legendre quadrature" in html and "8,306 model inputs per forward and backward pass" in html


def test_unknown_options_are_still_words(context):
    from glassnet.report.explain import computation

    said = computation({"time_s": 2.0, "budget": {}, "options": {"nt_samples": 10, "stdevs": 0.1, "window": [1, 4, 4],
                                                                   "perturbations_per_eval": 64}})  # fmt: skip
    assert "10 random samples per example" in said and "1 x 4 x 4" in said and "perturbations_per_eval" not in said


def test_explain_says_it_covered_a_subset(context):
    from glassnet.report.explain import explanations

    html = explanations(context(explain=_explain([])))
    assert "32 of the 270 test examples" in html


ROBUSTNESS = {
    "space": "input",
    "bounds": "pixels in [0, 1]",
    "clean_accuracy": 0.99,
    "examples": 200,
    "split": "test",
    "norm": "linf",
    "eps": [0.05],
    "curves": {"pgd": [0.9]},
    "robust_accuracy": {"0.05": 0.9},
}


def test_robustness_sets_the_attacked_subset_beside_the_whole_split(context):
    from glassnet.report.robustness import robustness

    html = robustness(context(robustness=ROBUSTNESS))
    assert "200 of the 270 test examples" in html and "whole test split: 0.9926" in html
    assert "clean accuracy on the 200 attacked" in html and "L-infinity" in html


def test_robustness_on_the_whole_split_says_so(context):
    from glassnet.report.robustness import robustness

    html = robustness(context(robustness={**ROBUSTNESS, "examples": 270}))
    assert "all 270 test examples" in html and "whole test split" not in html


def test_tabular_adversarial_examples_are_a_table_of_feature_changes(context, tmp_path):
    from glassnet.report.robustness import robustness

    record = {
        "index": 7, "eps": 0.05, "attack": "worst-case", "true": 1, "clean_prediction": 1, "clean_confidence": 0.93,
        "adversarial_prediction": 0, "adversarial_confidence": 0.71, "changed_features": 2,
        "changes": [{"feature": "area", "original": 654.9, "adversarial": 612.3, "change": -42.6, "change_sd": -0.12},
                    {"feature": "radius", "original": 14.1, "adversarial": 14.3, "change": 0.2, "change_sd": 0.06}],
    }  # fmt: skip
    ctx = context(robustness={**ROBUSTNESS, "adversarial_examples": [record]})
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "adversarial_examples.png").write_bytes(b"\x89PNG an old picture")
    html = robustness(ctx)
    assert "<img" not in html.split("Adversarial examples")[1]
    for cell in ("area", "654.9", "612.3", "-42.6", "-0.12", "malignant (93%) -&gt; benign (71%)"):
        assert f">{cell}<" in html, cell


def test_compression_note_counts_its_examples(context):
    from glassnet.report.compress import compression

    variant = {"name": "fp32", "method": "the trained model", "size_bytes": 1000, "parameters": 10, "accuracy": 0.9,
               "latency_ms_p50": 0.1, "latency_ms_p95": 0.2, "throughput": 100.0, "size_ratio": 1.0,
               "latency_speedup": 1.0, "throughput_speedup": 1.0, "slower": []}  # fmt: skip
    html = compression(context(compress={"metric": "accuracy", "test_size": 270, "threads": 1, "variants": [variant]}))
    assert "all 270 test examples" in html and "1 CPU thread)" not in html and "1 CPU thread" in html
    assert "b64" not in html and "batches of 64 (examples/s)" in html
