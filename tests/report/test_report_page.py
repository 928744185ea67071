"""The report page itself: contents, sortable tables, figures at their intended size, dark mode, print, provenance.

What a browser does with the page (sorting, printing, dark mode) is checked in test_report_browser.py;
these tests read the HTML that ``glassnet report`` writes.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

import glassnet as gn
from glassnet.config import RunConfig
from glassnet.errors import RunError
from glassnet.report.card import CSS_PX_PER_INCH, ReportContext, image_size, pixel_ratio, table
from glassnet.runs import RunDir


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-epoch mlp on breast-cancer (a few seconds), trained as a user would, with provenance."""
    config = RunConfig(data="breast-cancer", model="mlp", epochs=1, baseline=False, model_args={"width": 8})
    return gn.train(config, out=tmp_path_factory.mktemp("page") / "bc").path


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run for a test to change."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _train_json(run: Path) -> dict:
    return json.loads((run / "results" / "train.json").read_text())


def _write_train_json(run: Path, data: dict) -> None:
    (run / "results" / "train.json").write_text(json.dumps(data))


def _png(path: Path, size: tuple[int, int], dpi: float | None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path, format="PNG", **({"dpi": (dpi, dpi)} if dpi else {}))


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"><h2>', html)


def test_contents_link_every_section_in_order(trained):
    html = gn.report(trained).read_text()
    nav = re.search(r'<nav class="toc" aria-label="Contents">(.*?)</nav>', html, re.S)
    assert nav, "no table of contents"
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav.group(1))
    ids = _section_ids(html)
    assert [anchor for anchor, _ in links] == ids and len(set(ids)) == len(ids)
    titles = re.findall(r'<section id="[^"]+"><h2>([^<]+)</h2>', html)
    assert [title for _, title in links] == titles
    assert {"test-metrics", "model", "training", "provenance"} <= set(ids)


def test_sections_with_one_title_get_distinct_anchors(trained):
    from glassnet.report import card, section

    @section("Model", order=31)
    def second(ctx: ReportContext) -> str:
        return "<p>another model section</p>"

    try:
        ids = _section_ids(gn.report(trained).read_text())
        assert ids.count("model") == 1 and "model-2" in ids
    finally:
        card._SECTIONS[:] = [s for s in card._SECTIONS if s[2] is not second]


def test_table_offers_sorting_and_keeps_its_foot_apart():
    sortable = table(["class", "count"], [["a", 3], ["b", 10]], foot=[["total", 13]])
    assert sortable.startswith('<table class="sortable"><thead><tr><th scope="col">class</th>')
    assert "<tfoot><tr><td" in sortable and sortable.index("total") > sortable.index("</tbody>")
    assert 'class="sortable"' not in table(["x"], [[1]])  # one row: nothing to sort
    assert 'class="sortable"' not in table(["x"], [[1], [2]], sortable=False)


def test_the_page_sorts_prints_and_follows_the_dark_setting(trained):
    html = gn.report(trained).read_text()
    style = html[html.index("<style>") : html.index("</style>")]
    assert "@media (prefers-color-scheme:dark)" in style and '<meta name="color-scheme" content="light dark">' in html
    printed = style[style.index("@media print{") :]
    assert "nav.toc{display:none}" in printed and "break-after:avoid" in printed
    script = html[html.index("<script>") : html.index("</script>")]
    assert 'querySelectorAll("table.sortable")' in script and "aria-sort" in script
    assert 'addEventListener("beforeprint"' in script and "details.open = true" in script
    assert "default-src 'none'" in html  # the browser itself refuses any request the page would make


def test_a_2x_png_is_shown_at_half_its_pixels(run):
    """Figures carry their CSS size; the pixel ratio comes from the PNG's resolution (or ``scale``)."""
    figures = RunDir(run).figures_dir
    _png(figures / "at1x.png", (440, 220), CSS_PX_PER_INCH)
    _png(figures / "at2x.png", (880, 440), 2 * CSS_PX_PER_INCH)
    _png(figures / "unsaid.png", (300, 100), None)
    _png(figures / "at72dpi.png", (300, 100), 72)
    ctx = ReportContext(run=RunDir(run))
    assert 'width="440" height="220"' in ctx.figure("at1x", "one")
    assert 'width="440" height="220"' in ctx.figure("at2x", "two")
    assert 'width="300" height="100"' in ctx.figure("unsaid", "no resolution recorded: one pixel each")
    assert 'width="300" height="100"' in ctx.figure("at72dpi", "never shown larger than its pixels")
    assert 'width="150" height="50"' in ctx.figure("unsaid", "declared 2x", scale=2)
    assert ctx.figure("absent", "missing") == ""
    tag = ctx.figure("at2x", "a <b> figure")
    assert tag.startswith('<img src="data:image/png;base64,') and 'alt="a &lt;b&gt; figure"' in tag


def test_figures_that_matplotlib_saves_keep_their_size_at_any_dpi(run):
    from glassnet.figures import pyplot

    plt = pyplot()
    sizes = {}
    for dpi in (CSS_PX_PER_INCH, 2 * CSS_PX_PER_INCH):
        fig = plt.figure(figsize=(4, 2))
        fig.savefig(run / "figures" / f"m{dpi:.0f}.png", dpi=dpi)
        plt.close(fig)
        sizes[dpi] = ReportContext(run=RunDir(run)).figure(f"m{dpi:.0f}", "matplotlib")
    assert 'width="440" height="220"' in sizes[CSS_PX_PER_INCH] and 'width="440" height="220"' in sizes[220]


def test_an_svg_figure_is_embedded_as_svg(run):
    figures = RunDir(run).figures_dir
    (figures / "vector.svg").write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="144pt" height="72pt" '
        'viewBox="0 0 144 72"><rect width="144" height="72" fill="#fff"/></svg>'
    )
    tag = ReportContext(run=RunDir(run)).figure("vector", "a vector figure")
    assert tag.startswith('<img src="data:image/svg+xml;base64,')
    assert 'width="220" height="110"' in tag  # 2 x 1 inches at 110 CSS px per inch
    data = base64.b64decode(re.search(r"base64,([^\"]+)", tag).group(1))
    assert data.startswith(b"<?xml") and b"<svg" in data


def test_the_newer_of_a_png_and_an_svg_is_shown(run):
    import os

    figures = RunDir(run).figures_dir
    _png(figures / "both.png", (10, 10), None)
    (figures / "both.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    os.utime(figures / "both.png", (1, 1))
    ctx = ReportContext(run=RunDir(run))
    assert "image/svg+xml" in ctx.figure("both", "svg is newer")
    os.utime(figures / "both.svg", (0, 0))
    assert "image/png" in ctx.figure("both", "png is newer")


def test_image_sizes_of_every_kind():
    gif = b"GIF89a" + (120).to_bytes(2, "little") + (80).to_bytes(2, "little") + b"\x00" * 8
    assert image_size(gif, "image/gif") == (120, 80)
    assert image_size(b"<svg width='50%' height='10'>", "image/svg+xml") is None  # relative: the page decides
    assert image_size(b"<svg height='10' width='20px'>", "image/svg+xml") == (20, 10)
    assert image_size(b"not a png", "image/png") is None and image_size(b"\xff\xd8", "image/jpeg") is None
    assert pixel_ratio(None) == 1.0 and pixel_ratio(220.0) == 2.0 and pixel_ratio(50.0) == 1.0


def test_the_provenance_section_says_how_the_run_was_made(trained):
    record = _train_json(trained)["provenance"]
    assert {"date", "command", "versions", "git", "machine", "seed"} <= set(record)
    html = gn.report(trained).read_text()
    ids = _section_ids(html)
    assert ids[-1] == "provenance", "provenance closes the report"
    body = html[html.index('<section id="provenance">') :]
    assert record["date"][:10] in body and "UTC" in body and "report written" in body
    assert f"PyTorch {record['versions']['torch']}" in body and f"Python {record['versions']['python']}" in body
    assert f"{record['machine']['cpus']} logical CPUs" in body and "seed" in body
    if record["git"]:
        assert record["git"]["commit"][:12] in body
    else:
        assert "not a git checkout" in body


def test_a_run_without_provenance_still_reports(run):
    data = _train_json(run)
    del data["provenance"]
    _write_train_json(run, data)
    body = gn.report(run).read_text().split('<section id="provenance">')[1]
    assert "not recorded" in body and "report written" in body


def test_later_stages_that_record_provenance_are_listed(run):
    stamp = {"date": "2026-01-02T03:04:05+00:00", "command": "glassnet evaluate runs/x --split val"}
    gn.evaluate(run, split="val")
    evaluate = json.loads((run / "results" / "evaluate.json").read_text())
    (run / "results" / "evaluate.json").write_text(json.dumps({**evaluate, "provenance": stamp}))
    body = gn.report(run).read_text().split('<section id="provenance">')[1]
    assert "Later stages" in body and "2026-01-02 03:04:05 UTC" in body and "--split val" in body


def test_a_damaged_provenance_is_refused_in_one_line(run):
    data = _train_json(run)
    data["provenance"]["machine"] = "a laptop"
    _write_train_json(run, data)
    with pytest.raises(RunError, match=r"train\.json: 'provenance\.machine' should be a mapping"):
        gn.report(run)
