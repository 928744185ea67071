"""A diffusion run end to end on real data: ``glassnet train --model ddpm``, its evaluation, sampling and report."""

import json

import pytest

from glassnet.cli import main


@pytest.mark.slow
def test_ddpm_learns_the_digits_and_draws_the_classes_asked_for(tmp_path, capsys):
    """scikit-learn digits, width 16, 10 epochs (200 updates, about a minute on 2 busy cores): class-conditional
    samples that the feature classifier agrees with on >= 85%, every class present, FID far below the untrained
    model's, no near-copies of training images beyond the test split's own rate."""
    out = tmp_path / "ddpm"
    args = ["train", "--data", "digits", "--model", "ddpm", "model.width=16", "--epochs", "10", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0, capsys.readouterr().err
    train = json.loads((out / "results" / "train.json").read_text())
    assert train["training"]["step"]["name"] == "diffusion"  # the family's own step, with no step named
    result = json.loads((out / "results" / "generate.json").read_text())
    quality, coverage = result["quality"], result["coverage"]
    assert coverage["agreement"] >= 0.85 and coverage["missing"] == []
    assert quality["fid"] < 0.15 * quality["reference"]["untrained_generator"]["fid"]
    assert result["memorisation"]["near_copy_share"] <= 0.05
    assert main(["generate", str(out), "--n", "20", "--class", "7", "--steps", "20", "--out", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").glob("sample-*-7.png"))) == 20
    assert main(["report", str(out), "--quiet"]) == 0
    html = next(out.glob("report*.html")).read_text()
    assert "ddpm" in html and "FID" in html
