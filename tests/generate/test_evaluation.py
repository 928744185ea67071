"""The generator evaluation: FID/KID in classifier features, coverage, memorisation, warnings, the JSON."""

import dataclasses
import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from glassnet.data import DataBundle, DataSpec
from glassnet.generate.evaluation import (
    FeatureExtractor,
    _distances,
    class_coverage,
    evaluate_generator,
    instability_warnings,
    memorisation_check,
)
from glassnet.models import create_model
from glassnet.runs import RunDir

NAMES = ("dark", "mid", "bright")
SPEC = DataSpec(modality="image", input_shape=(1, 8, 8), task="generate", num_outputs=1, class_names=NAMES,
                name="levels")  # fmt: skip


def levels(n, seed):
    """Three classes of 8 x 8 images: noise around a dark, a middle and a bright grey."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = (0.15 + 0.35 * labels.view(-1, 1, 1, 1) + 0.05 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
    return images, labels


def bundle():
    return DataBundle(*(TensorDataset(*levels(n, s)) for n, s in ((300, 0), (60, 1), (120, 2))), SPEC, {})


class Fixed(nn.Module):
    """A 'classifier' that always answers class 0."""

    def forward(self, x):
        return torch.tensor([5.0, 0.0, 0.0]).expand(len(x), 3)


def test_coverage_finds_missing_classes_and_agreement():
    fake = torch.rand(30, 1, 8, 8)
    coverage = class_coverage(Fixed(), fake, torch.arange(30) % 3, torch.arange(30) % 3, list(NAMES))
    assert coverage["covered"] == 1 and coverage["missing"] == ["mid", "bright"]
    assert coverage["agreement"] == round(1 / 3, 4)
    assert [c["share"] for c in coverage["classes"]] == [1.0, 0.0, 0.0]
    warnings = instability_warnings([], coverage, {"near_copy_share": 0.0}, {"fid": 1.0}, list(NAMES))
    assert any("miss 2 of 3 classes (mid, bright)" in w for w in warnings)
    assert any("ignores its class input" in w for w in warnings)


class Brightness(nn.Module):
    """A 'classifier' that reads an image's class from its mean brightness, and never says 'mid'."""

    def forward(self, x):
        bright = x.mean(dim=(1, 2, 3)) > 0.5
        return torch.stack([(~bright).float(), torch.zeros(len(x)), bright.float()], dim=1)


def test_coverage_gives_the_classifiers_own_histogram_of_real_test_images():
    real = torch.cat([torch.zeros(6, 1, 8, 8), torch.ones(4, 1, 8, 8)])
    fake = torch.zeros(5, 1, 8, 8)
    coverage = class_coverage(Brightness(), fake, None, torch.tensor([0, 0, 1, 1, 1, 1, 2, 2, 2, 2]), list(NAMES), real)
    classes = coverage["classes"]
    assert [c["share"] for c in classes] == [1.0, 0.0, 0.0]
    assert [c["test_share"] for c in classes] == [0.2, 0.4, 0.4]  # the true labels
    assert [c["test_predicted_share"] for c in classes] == [0.6, 0.0, 0.4]  # what the classifier reads
    without = class_coverage(Brightness(), fake, None, torch.tensor([0, 1, 2]), list(NAMES))
    assert all("test_predicted_share" not in c for c in without["classes"])


def test_copies_of_training_images_are_flagged_and_fresh_images_are_not():
    train, _ = levels(300, 0)
    test, _ = levels(120, 2)
    copies = memorisation_check(train[:100].clone(), train, test)
    assert copies["near_copy_share"] == 1.0 and copies["sample_median"] == 0.0
    fresh = memorisation_check(levels(100, 5)[0], train, test)
    assert fresh["near_copy_share"] <= 0.05 and 0.7 < fresh["ratio"] < 1.3
    warnings = instability_warnings([], {"missing": [], "agreement": None}, copies, {"fid": 1.0}, list(NAMES))
    assert any("memorises" in w for w in warnings)


def test_fid_is_small_for_the_same_distribution_and_large_for_another():
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=3, name="levels")
    extractor = FeatureExtractor(create_model("cnn", spec, channels=[8], hidden=16).eval())
    assert extractor.num_features == 16
    real, _ = levels(200, 0)
    same = _distances(extractor, real, levels(200, 1)[0], seed=0)
    other = _distances(extractor, real, torch.rand(200, 1, 8, 8), seed=0)
    assert same["fid"] < other["fid"] / 5 and same["kid"] < other["kid"]


def test_the_discriminator_collapse_and_a_late_quality_drop_are_told_in_words():
    history = [
        {"epoch": e, "train/d_loss": d, "val/mmd": m} for e, d, m in ((1, 1.0, 0.2), (2, 0.5, 0.01), (3, 0.01, 0.3))
    ]
    warnings = instability_warnings(history, {"missing": [], "agreement": None}, {"near_copy_share": 0}, {"fid": 1}, [])
    assert any("discriminator's loss fell to 0.010" in w for w in warnings)
    assert any("got worse late in training" in w and "epoch 2" in w for w in warnings)


def test_the_evaluation_writes_its_json_figures_and_says_which_features(tmp_path):
    torch.manual_seed(0)
    model = create_model("cgan", SPEC, latent=8, width=8)
    run = RunDir(tmp_path)
    report = evaluate_generator(model, bundle(), run, seed=0, samples=90)
    written = json.loads((tmp_path / "results" / "generate.json").read_text())
    assert written["features"]["inception"] is False and "not in Inception-v3 features" in written["features"]["note"]
    assert written["features"]["weights"] == "feature_classifier/model.safetensors"
    assert (tmp_path / "feature_classifier" / "model.safetensors").is_file()
    assert written["quality"]["samples"] == 90
    assert 0 <= written["quality"]["precision"] <= 1 and 0 <= written["quality"]["recall"] <= 1
    reference = written["quality"]["reference"]
    assert reference["real_train_vs_test"]["fid"] < reference["untrained_generator"]["fid"]
    assert written["quality"]["fid"] == reference["untrained_generator"]["fid"]  # untrained: the same weights
    assert any("no better than an untrained one" in w for w in written["warnings"])
    assert set(report.headline()) == {"fid", "kid", "coverage", "agreement"}
    read = [c["test_predicted_share"] for c in written["coverage"]["classes"]]
    assert len(read) == 3 and abs(sum(read) - 1) < 1e-3
    from glassnet.report.generate import _coverage

    section = _coverage(written)
    assert "test images the classifier puts here" in section and "perfect generator" in section
    older = {"coverage": {**written["coverage"], "classes": [{"name": "dark", "share": 1.0, "test_share": 0.5}]}}
    assert "classifier puts here" not in _coverage(older)  # a run evaluated before the column still renders
    for name in ("generate_samples", "generate_neighbours", "generate_coverage", "generate_interpolation"):
        assert (tmp_path / "figures" / f"{name}.png").is_file()


def test_slerp_keeps_the_ends_and_the_norm_of_gaussian_noise():
    from glassnet.generate.figures import slerp

    a, b = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    middle = slerp(a, b, 0.5)
    assert 0.8 * min(a.norm(), b.norm()) < middle.norm() < 1.2 * max(a.norm(), b.norm())  # a straight line shrinks
    assert torch.allclose(slerp(a, a, 0.3), a)


def test_a_tiny_test_split_is_skipped_with_the_reason(tmp_path):
    small = DataBundle(*(TensorDataset(*levels(n, s)) for n, s in ((60, 0), (9, 1), (9, 2))), SPEC, {})
    report = evaluate_generator(create_model("dcgan", SPEC, latent=8, width=8), small, RunDir(tmp_path))
    assert "test split has 9 images" in report.result["skipped"] and report.headline() == {}
    assert json.loads((tmp_path / "results" / "generate.json").read_text())["skipped"] == report.result["skipped"]


def test_the_across_training_grid_shows_every_epoch_up_to_eight_rows_first_and_last_kept(tmp_path, monkeypatch):
    from glassnet.generate import figures

    shown = []
    monkeypatch.setattr(figures, "mosaic", lambda images, columns: shown.append(len(images) // columns) or
                        torch.zeros(4, 4, 1).numpy())  # fmt: skip
    for epochs, rows in ((4, 4), (8, 8), (30, 8), (2, 2)):
        snapshots = [torch.full((3, 1, 4, 4), e / epochs) for e in range(epochs)]
        figures.across_training(snapshots, tmp_path / f"p{epochs}.png")
        assert shown[-1] == rows and (tmp_path / f"p{epochs}.png").is_file()


def test_improved_precision_and_recall_tell_realism_from_variety():
    from glassnet.generate.evaluation import precision_recall

    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    same = precision_recall(real, torch.randn(300, 8, generator=g))
    assert same[0] > 0.7 and same[1] > 0.7
    far = precision_recall(real, torch.randn(300, 8, generator=g) + 50)
    assert far == (0.0, 0.0)
    collapsed = precision_recall(real, real[:1].repeat(300, 1) + 0.01 * torch.randn(300, 8, generator=g))
    assert collapsed[0] == 1.0 and collapsed[1] < 0.05  # realistic but no variety: mode collapse


def test_the_training_curve_scores_each_validation_s_samples_against_the_same_images():
    """Samples that are the validation images themselves score FID ~0 and cover every class; noise scores far
    worse; 8-bit samples (as training keeps them) are read back to [0, 1]."""
    from glassnet.generate.evaluation import FeatureExtractor, training_curve
    from glassnet.models import create_model

    torch.manual_seed(0)
    spec = DataSpec(
        modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=3, class_names=("a", "b", "c")
    )
    classifier = create_model("cnn", spec, channels=[4, 8], hidden=16).eval()
    real = torch.rand(60, 1, 8, 8)
    labels = torch.arange(60) % 3
    noise = torch.rand(60, 1, 8, 8) ** 4
    as_bytes = (real * 255).round().to(torch.uint8)
    curve = training_curve(FeatureExtractor(classifier), classifier, real, labels, [(1, noise), (2, as_bytes)], True,
                           ["a", "b", "c"])  # fmt: skip
    first, second = curve["points"]
    assert (first["epoch"], second["epoch"]) == (1, 2) and curve["classes"] == 3 and curve["images"] == 60
    assert second["fid"] < 0.05 * first["fid"] and second["fid"] < 1e-2
    predicted = classifier(real).argmax(1)
    assert second["agreement"] == pytest.approx(float((predicted == labels).float().mean()), abs=1e-4)


def test_validation_keeps_a_bounded_thinned_history_of_samples_with_their_epochs():
    from types import SimpleNamespace

    from glassnet.generate.task import CURVE_POINTS, SampleValidation

    spec = DataSpec(modality="image", input_shape=(1, 8, 8), task="generate", num_outputs=1, class_names=("a", "b"))
    model = create_model("cgan", spec, latent=8, width=8).eval()
    validation = SampleValidation(torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1]))
    for epoch in range(1, 2 * CURVE_POINTS + 2):
        validation(SimpleNamespace(epoch=epoch), model)
    epochs = [e for e, _ in validation.samples]
    assert len(epochs) <= CURVE_POINTS and epochs[0] == 1 and epochs[-1] == 2 * CURVE_POINTS + 1
    assert epochs == sorted(epochs) and all(
        s.dtype == torch.uint8 and s.shape == (6, 1, 8, 8) for _, s in validation.samples
    )


def test_split_quality_asks_for_the_classifier_only_when_the_split_can_be_scored():
    """Review bug: ``glassnet evaluate`` trained (or failed to train) a feature classifier before it
    knew whether the split had enough images to score."""
    from glassnet.errors import DataError
    from glassnet.generate.evaluation import split_quality

    torch.manual_seed(0)
    model = create_model("dcgan", SPEC, latent=8, width=8)
    tiny = DataBundle(*(TensorDataset(*levels(n, s)) for n, s in ((300, 0), (5, 1), (120, 2))), SPEC, {})
    asked = []
    skipped = split_quality(model, tiny, "val", lambda: asked.append(1) or (Fixed(), {}))
    assert skipped == {"skipped": "the val split has 5 images; evaluating a generator needs at least 10"}
    assert not asked

    def no_classifier():
        raise DataError("cannot evaluate on an empty dataset")

    assert (
        "no feature classifier for FID: cannot evaluate" in split_quality(model, tiny, "test", no_classifier)["skipped"]
    )
    classify = dataclasses.replace(SPEC, task="classify", num_outputs=3)
    net = create_model("cnn", classify, channels=[4], hidden=8).eval()
    scored = split_quality(model, tiny, "test", lambda: (net, {"network": "cnn"}), samples=60)
    assert scored["samples"] == 60 and scored["compared_with"] == "60 test images"
    assert scored["fid"] > 0 and 0 <= scored["coverage"] <= 1 and scored["features"] == {"network": "cnn"}
    assert scored["agreement"] is None  # an unconditional model is asked for no class
