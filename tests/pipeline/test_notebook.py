"""Notebook views (``_repr_html_``) and saving in-memory explain/robustness results into a run's report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import glassnet as gn
from glassnet.compress.core import CompressResult
from glassnet.config import RunConfig
from glassnet.data.bundle import bundle_from_arrays
from glassnet.explain.attribute import explain
from glassnet.robustness.evaluate import robustness


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebook") / "run"
    return gn.train(RunConfig(data="breast-cancer", model="mlp", epochs=1, baseline=False), out=out)


def test_a_run_shows_model_data_metrics_and_stages(run, tmp_path):
    html = gn.load(run.path)._repr_html_()
    assert html.startswith("<div><b>Run ") and "<table" in html
    for fact in ("mlp", "breast-cancer", "classify", "malignant, benign", "accuracy", "stages done", "train"):
        assert fact in html
    odd = tmp_path / "<b>&run"
    shutil.copytree(run.path, odd)
    shown = gn.load(odd)._repr_html_()
    assert "&lt;b&gt;&amp;run" in shown and "<b>&run" not in shown


def test_a_bundle_shows_its_splits_and_escapes_class_names():
    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    bundle = bundle_from_arrays(x, y, name="odd", modality="tabular", task="classify", class_names=("<i>x", "y"))
    html = bundle._repr_html_()
    assert "DataBundle odd" in html and "train 42 · val 9 · test 9" in html
    assert "&lt;i&gt;x, y" in html and "<i>x" not in html


def test_a_compress_result_shows_its_variants():
    variant = {"name": "<int8>", "accuracy": 0.95, "size_bytes": 3584, "parameters": 100, "latency_ms_p50": 0.1}
    result = CompressResult(task="classify", metric="accuracy", variants=[variant], test_size=86, threads=1)
    html = result._repr_html_()
    assert "&lt;int8&gt;" in html and "0.95" in html and "3.5" in html


def test_in_memory_robustness_is_saved_into_the_run_and_its_report(run):
    x, y = run.split("test")
    result = robustness(run.model, (x[:40], y[:40]), eps=[0.05], attack="fgsm", worst_case=False, spec=run.spec,
                        reference=run.split("train")[0], checks=False)  # fmt: skip
    assert "fgsm" in result._repr_html_() and "eps=0.05" in result._repr_html_()
    path = result.save(run.path)
    saved = json.loads(path.read_text())
    assert path == run.path / "results" / "robustness.json"
    assert saved["split"] == "test" and saved["data"] == "breast-cancer" and saved["curves"]["fgsm"]
    assert (run.path / "figures" / "robustness_curves.png").is_file()
    # written as the stage writes it: table rows list their changed features (save used to leave them out)
    examples = saved["adversarial_examples"]
    assert examples and all("changed_features" in e and "changes" in e for e in examples)
    html = gn.report(run.path).read_text()
    assert "Robustness" in html and "robust accuracy" in html


def test_in_memory_attributions_are_saved_into_the_run_and_its_report(run):
    x = run.split("test")[0][:6]
    attributions = explain(run.model, x, method="saliency", modality="tabular")
    assert "Saliency" in attributions._repr_html_() or "saliency" in attributions._repr_html_()
    stale = run.path / "figures" / "explain_curves.png"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"not a figure of these attributions")
    path = attributions.save(run)
    saved = json.loads(path.read_text())
    assert saved["method"] == "saliency" and saved["examples"] == 6 and saved["target"] == "predicted class"
    assert saved["views"]["features"] and not stale.exists()
    html = gn.report(run.path).read_text()
    assert "<h2>Explanations</h2>" in html or "Explanations</h2>" in html
    # the report says where the examples came from, not "6 of the N test examples, taken class by class"
    assert "6 examples given to gn.explain" in html and "taken class by class" not in html


def test_saving_attributions_of_other_inputs_is_refused(run):
    import torch

    from glassnet.errors import DataError

    attributions = explain(run.model, torch.zeros(2, 30), method="saliency", modality="tabular")
    attributions.inputs = torch.zeros(2, 5)
    with pytest.raises(DataError, match=r"inputs of shape \[5\].*takes \[30\]"):
        attributions.save(run)
