"""explain_run on a text run: token attributions, highlighted words in the report (trains a GRU: slow)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from glassnet.cli import main
from glassnet.explain import explain_run
from glassnet.report import report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A GRU on texts whose label says whether the word 'excellent' occurs (learnt in seconds)."""
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(40)]
    with open(folder / "reviews.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        for i in range(400):
            tokens = list(rng.choice(words, size=int(rng.integers(4, 10))))
            if i % 2:
                tokens.insert(int(rng.integers(0, len(tokens))), "excellent")
            writer.writerow(["good" if i % 2 else "plain", " ".join(tokens)])
    out = folder / "run"
    args = ["--data", str(folder / "reviews.csv"), "--model", "gru", "--epochs", "12", "lr=0.01"]
    assert main(["train", *args, "model.hidden=16", "model.embedding_dim=16", "--out", str(out), "--quiet"]) == 0
    return out


def test_text_run_attributes_tokens_and_highlights_them(text_run):
    result = explain_run(text_run, "integrated_gradients", n=16)
    assert result["trust"]["completeness"]["holds"]
    assert result["trust"]["infidelity"] == {"skipped": "token ids cannot be perturbed by small amounts"}
    example = result["views"]["examples"][0]
    assert len(example["tokens"]) == len(example["scores"]) and "<pad>" not in example["tokens"]
    top = result["views"]["top_tokens"][0]
    assert top["token"] == "excellent" and top["mean_attribution"] > 0
    page = report(text_run).read_text()
    assert "Words that drove the predictions" in page and ">excellent</span>" in page


def test_text_masking_method(text_run):
    result = explain_run(text_run, "occlusion", n=8, checks=False)
    assert result["views"]["top_tokens"][0]["token"] == "excellent"


def test_text_saliency_passes_the_randomisation_test_once_positions_are_factored_out(text_run):
    result = explain_run(text_run, "saliency", n=32)
    rand = result["trust"]["randomisation"]
    # the raw correlation is kept for the record; the verdict compares what varies between texts
    assert {"raw_rank_correlation", "example_share", "min_example_share"} <= set(rand)
    assert rand["passed"] and rand["rank_correlation"] < rand["threshold"], rand
    assert rand["example_share"] >= rand["min_example_share"]
    assert not [w for w in result["warnings"] if "random weights" in w or "position" in w]
