"""Compressing a GAN's generator: int8 and ONNX variants judged by the FID of the images they draw."""

from __future__ import annotations

import json

import pytest
import torch

import glassnet as gn
from glassnet.cli import main
from glassnet.compress.export import OnnxModel
from glassnet.compress.generator import Drawing


@pytest.fixture(scope="module")
def digits_cgan(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "cgan"
    gn.train(gn.RunConfig(data="digits", model="cgan", epochs=3, model_args={"width": 16}), out=out)
    return out


def test_every_variant_draws_from_the_same_noise_and_keeps_its_fid(digits_cgan, capsys):
    assert main(["compress", str(digits_cgan), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "FID change" in out and "int8-ort-static" in out
    result = json.loads((digits_cgan / "results" / "compress.json").read_text())
    assert result["kind"] == "generator" and result["samples"] == 270  # the whole digits test split
    variants = {v["name"]: v for v in result["variants"]}
    assert list(variants) == ["fp32", "int8-torch-dynamic", "onnx-fp32", "int8-ort-static"]
    onnx = variants["onnx-fp32"]
    # the same generator in ONNX Runtime: the same images, so the same FID and the same classes
    assert onnx["fid"] == pytest.approx(variants["fp32"]["fid"], rel=1e-3) and onnx["same_class"] >= 0.99
    assert onnx["pixel_mae"] < 1e-4
    for name in ("int8-torch-dynamic", "int8-ort-static"):
        v = variants[name]
        assert v["size_ratio"] > 1.5 and v["pixel_mae"] > 0  # smaller, and really quantised
        assert v["keeps_quality"] == (v["fid"] <= variants["fp32"]["fid"] * 1.05)
    assert result["warnings"] == [
        w for w in result["warnings"] if any(n in w for n, v in variants.items() if not v.get("keeps_quality", True))
    ]
    assert (digits_cgan / "compressed" / "generator.int8.onnx").is_file()
    assert main(["report", str(digits_cgan), "--quiet"]) == 0
    assert "Compressed generator" in (digits_cgan / "report.html").read_text()


def test_evaluate_measures_fid_in_the_run_s_own_feature_space(digits_cgan, capsys, monkeypatch):
    """``glassnet evaluate`` on a generative run gave only the pixel MMD; it now gives FID, KID and coverage
    with the run's saved feature classifier (never retrained), the same figures as results/generate.json."""
    import glassnet.generate.evaluation as evaluation

    monkeypatch.setattr(evaluation, "train_feature_classifier", lambda *a, **k: pytest.fail("retrained"))
    assert main(["evaluate", str(digits_cgan), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "in the features of the run's own classifier (not Inception's)" in out and "fid" in out
    result = json.loads((digits_cgan / "results" / "evaluate.json").read_text())
    generated = json.loads((digits_cgan / "results" / "generate.json").read_text())
    test, generation = result["test"], result["generation"]
    assert {"fid", "kid", "coverage", "agreement", "mmd"} <= set(test)
    assert generation["samples"] == 270 and generation["compared_with"] == "270 test images"
    assert test["fid"] == pytest.approx(generated["quality"]["fid"], rel=1e-4)  # same images, noise, features
    assert generation["features"]["test_accuracy"] == generated["features"]["test_accuracy"]
    assert main(["evaluate", str(digits_cgan), "--split", "val", "--quiet"]) == 0
    val = json.loads((digits_cgan / "results" / "evaluate.json").read_text())
    assert val["generation"]["compared_with"] == f"{val['size']} val images" and val["val"]["fid"] != test["fid"]


def test_the_onnx_generator_keeps_a_dynamic_batch(digits_cgan):
    """Bug: the generator reshaped with len(noise), which fixed the exported batch to the example's."""
    run = gn.Run.open(digits_cgan)
    model = run.model.eval()
    rows = torch.cat([model.noise(7), (torch.arange(7) % 10).float()[:, None]], dim=1)
    onnx = OnnxModel(digits_cgan / "compressed" / "generator.onnx")
    with torch.no_grad():
        expected = Drawing(model.generator_ema, True).eval()(rows)
    assert torch.allclose(onnx(rows), expected, atol=1e-5)


@pytest.mark.parametrize("option", [["--prune", "0.5"], ["--distill", "mlp"]])
def test_options_that_do_not_apply_to_a_generator_exit_2_writing_nothing(digits_cgan, capsys, option):
    before = sorted(p.relative_to(digits_cgan) for p in digits_cgan.rglob("*"))
    assert main(["compress", str(digits_cgan), *option]) == 2
    err = capsys.readouterr().err
    assert "judged by the FID of its images" in err and err.count("\n") == 1
    assert sorted(p.relative_to(digits_cgan) for p in digits_cgan.rglob("*")) == before


def test_the_run_scores_every_validation_s_samples_for_the_curves(digits_cgan):
    """Not compression, but this module's run is the cheapest real GAN run: its evaluation scores the samples
    of each epoch's validation (FID and coverage across training) and draws them."""
    curve = json.loads((digits_cgan / "results" / "generate.json").read_text())["across_training"]
    assert [p["epoch"] for p in curve["points"]] == [1, 2, 3]
    assert all(p["fid"] > 0 and 0 <= p["covered"] <= 10 and 0 <= p["agreement"] <= 1 for p in curve["points"])
    assert (digits_cgan / "figures" / "generate_curves.png").is_file()
