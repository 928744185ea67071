"""Figures that do not mislead (issue 19): resolution, training curves, the compression plot's labels,
attributions drawn as pixels with a colour bar, tabular adversarial examples as numbers."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from glassnet import figures
from glassnet.figures import pyplot


@pytest.fixture
def drawn(monkeypatch):
    """The figures a drawing function saves, kept open for inspection instead of written."""
    kept = []

    def keep(fig, path):
        kept.append(fig)

    for module in ("glassnet.figures.training", "glassnet.compress.figures", "glassnet.explain.pictures"):
        monkeypatch.setattr(f"{module}.save_figure", keep)
    yield kept
    for fig in kept:
        pyplot().close(fig)


def _png_size_and_dpi(path):
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    per_metre = struct.unpack(">I", data[at + 4 : at + 8])[0]
    return width, height, per_metre * 0.0254


def test_figures_are_saved_at_twice_the_resolution_they_are_shown_at(tmp_path):
    assert figures.PIXEL_RATIO == 2 and figures.DPI == 2 * figures.SHOWN_DPI
    fig = pyplot().figure(figsize=(3, 2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(np.linspace(0, 1, 60).reshape(6, 10), aspect="auto")
    ax.axis("off")
    figures.save_figure(fig, tmp_path / "f.png")
    width, height, dpi = _png_size_and_dpi(tmp_path / "f.png")
    pad = 2 * 0.1  # bbox_inches="tight" pads each side by 0.1 inch
    assert (width, height) == (round((3 + pad) * figures.DPI), round((2 + pad) * figures.DPI))
    assert dpi == pytest.approx(figures.DPI, abs=0.5)  # the report reads the pixel ratio from it


def test_charts_get_a_palette_and_stay_small(tmp_path):
    from PIL import Image

    fig, ax = pyplot().subplots(figsize=(6, 4))
    ax.plot(np.sin(np.linspace(0, 20, 400)), label="a")
    ax.legend()
    figures.save_figure(fig, tmp_path / "chart.png")
    assert Image.open(tmp_path / "chart.png").mode == "P"
    assert (tmp_path / "chart.png").stat().st_size < 60_000


# --- training curves ---------------------------------------------------------------------------------


def _history(epochs=3, decades=True):
    losses = [2.0, 0.05, 0.002] if decades else [0.9, 0.7, 0.6]
    return [
        {"epoch": e + 1, "train/loss": losses[e], "val/loss": losses[e] * 1.5, "val/accuracy": 0.8 + 0.05 * e,
         "val/macro_f1": 0.8 + 0.05 * e}
        for e in range(epochs)
    ]  # fmt: skip


def test_training_curves_have_whole_epochs_and_mark_the_kept_one(drawn, tmp_path):
    from glassnet.figures.training import training_curves

    training_curves(_history(), tmp_path / "c.png", kept_epoch=2, monitor="val/loss")
    for ax in drawn[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        kept = [line for line in ax.get_lines() if "kept" in line.get_label()]
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [2, 2]
        assert "epoch 2" in kept[0].get_label() and "validation loss" in kept[0].get_label()


def test_training_loss_goes_on_a_log_axis_only_when_it_spans_decades(drawn, tmp_path):
    from glassnet.figures.training import training_curves

    training_curves(_history(decades=True), tmp_path / "a.png")
    training_curves(_history(decades=False), tmp_path / "b.png")
    assert drawn[0].axes[0].get_yscale() == "log" and drawn[1].axes[0].get_yscale() == "linear"


def test_accuracy_and_macro_f1_differ_in_more_than_colour(drawn, tmp_path):
    from glassnet.figures.training import training_curves

    training_curves(_history(), tmp_path / "c.png")
    metrics = drawn[0].axes[1]
    lines = {line.get_label(): line for line in metrics.get_lines()}
    accuracy, f1 = lines["accuracy"], lines["macro-F1"]
    assert accuracy.get_linestyle() != f1.get_linestyle() and accuracy.get_marker() != f1.get_marker()
    assert {t.get_text() for t in metrics.get_legend().get_texts()} >= {"accuracy", "macro-F1"}


# --- the compression plot ------------------------------------------------------------------------------


def _boxes(ax):
    """The boxes of the labels' texts (an annotation's own extent would include its leader line)."""
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text()]


def test_compression_labels_never_overlap(drawn, tmp_path):
    from glassnet.compress.figures import size_tradeoff

    # eight variants of nearly one size and exactly one accuracy: every label wants the same spot
    variants = [
        {"name": n, "size_bytes": 100_000 + 900 * k, "accuracy": 0.99, "latency_speedup": 1.0 + k / 10,
         "slower": [] if k % 2 else ["batch-1 latency"]}
        for k, n in enumerate(["fp32", "onnx-fp32", "int8-torch-dynamic", "int8-torch-static", "int8-ort-static",
                               "pruned-structured", "distilled", "pruned-int8"])
    ]  # fmt: skip
    size_tradeoff(variants, "accuracy", tmp_path / "t.png")
    ax = drawn[0].axes[0]
    drawn[0].canvas.draw()
    boxes = _boxes(ax)
    assert len(boxes) == len(variants)
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not overlapping, overlapping
    assert ax.get_ylim()[1] <= 1.0  # accuracy is never drawn on a scale that goes past 1


# --- attributions ----------------------------------------------------------------------------------


def test_attribution_maps_are_pixels_with_a_colour_bar(drawn, tmp_path):
    from glassnet.explain.pictures import heat_grid, image_overlays

    rng = np.random.default_rng(0)
    image_overlays(rng.random((3, 1, 8, 8)), rng.normal(size=(3, 8, 8)), ["a", "b", "c"], tmp_path / "o.png")
    heat_grid(rng.normal(size=(2, 8, 8)), ["x", "y"], tmp_path / "g.png")
    for fig in drawn:
        images = [im for ax in fig.axes for im in ax.get_images()]
        assert images and all(im.get_interpolation() == "nearest" for im in images)
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 1
        assert "attribution" in bars[0].get_ylabel()
        assert [t.get_text() for t in bars[0].get_yticklabels()] == ["-1 against", "0", "+1 for"]


# --- tabular adversarial examples ---------------------------------------------------------------------


def test_tabular_adversarial_examples_are_feature_changes_not_a_picture(tmp_path):
    from glassnet.robustness.figures import adversarial_examples, feature_changes

    clean = np.array([[10.0, 200.0, 0.5], [12.0, 180.0, 0.4]])
    attacked = clean + np.array([[0.5, -20.0, 0.0], [0.0, 4.0, 0.1]])
    rows = feature_changes(clean, attacked, ["radius", "area", "smoothness"], spread=[1.0, 100.0, 0.05])
    assert rows[0]["changed_features"] == 2 and rows[1]["changed_features"] == 2
    # ranked by the change in training standard deviations: 0.5 SD of radius before 0.2 SD of area
    assert [c["feature"] for c in rows[0]["changes"]] == ["radius", "area"]
    assert rows[0]["changes"][1] == {"feature": "area", "original": 200.0, "adversarial": 180.0, "change": -20.0,
                                     "change_sd": -0.2}  # fmt: skip
    assert [c["feature"] for c in rows[1]["changes"]] == ["smoothness", "area"]
    (tmp_path / "adversarial_examples.png").write_bytes(b"an earlier attack's figure")
    records = [{"clean_prediction": 0, "clean_confidence": 0.9, "adversarial_prediction": 1,
                "adversarial_confidence": 0.8}] * 2  # fmt: skip
    assert adversarial_examples(clean, attacked, records, ["a", "b"], tmp_path / "adversarial_examples.png") is False
    assert not (tmp_path / "adversarial_examples.png").exists()
