import re

import pytest

import glassnet as gn
from glassnet.config import RunConfig
from glassnet.errors import RunError
from glassnet.report import ReportContext, section


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    config = RunConfig(data="digits", model="cnn", epochs=1, model_args={"channels": [8]})
    return gn.train(config, out=tmp_path_factory.mktemp("runs") / "digits").path


def test_report_is_self_contained(image_run):
    html = gn.report(image_run).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html), "external asset referenced"
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count("<script") == 1 and "<script>" in html  # one inline script (sorting, printing), no src
    assert html.count('src="data:image/png;base64,') == 3  # curves, confusion matrix, prediction grid


def test_report_has_every_train_section(image_run):
    html = gn.report(image_run).read_text()
    for title in ("Test metrics", "Data", "Model", "Training", "Test predictions"):
        assert f"<h2>{title}</h2>" in html
    assert "Conv2d" in html and "Examples per class and split" in html


def test_report_shows_evaluate_results_when_present(image_run):
    gn.evaluate(image_run, split="val")
    assert "glassnet evaluate</code> (digits, val)" in gn.report(image_run).read_text()


def test_new_sections_register_without_changing_the_report(image_run):
    @section("Extra stage", order=99)
    def extra(ctx: ReportContext):
        return "<p>extra-stage-marker</p>" if ctx.result("train") else None

    try:
        html = gn.report(image_run).read_text()
        assert html.index("extra-stage-marker") > html.index("<h2>Test predictions</h2>")
    finally:
        from glassnet.report import card

        card._SECTIONS[:] = [s for s in card._SECTIONS if s[2] is not extra]


def test_text_is_escaped(tmp_path, image_run):
    import shutil

    copy = tmp_path / "<i>run"
    shutil.copytree(image_run, copy)
    html = gn.report(copy).read_text()
    assert "&lt;i&gt;run" in html and "<i>run" not in html


def test_report_needs_a_trained_run(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        gn.report(tmp_path / "missing")
