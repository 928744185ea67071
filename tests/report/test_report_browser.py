"""The report card in a real headless browser: it renders, asks for nothing, navigates, sorts, goes dark, prints.

Debian's chromium, driven by Playwright pointed at the system browser (Playwright's own browser
download is never used), opens ``report.html`` of a one-epoch run from its file. Skipped, with the
reason, where chromium or Playwright is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)

# slow: a one-epoch training (a few seconds) and a browser start
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium binary on PATH for the browser test of the report (apt-get install chromium)",
    ),
]
pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright drives the browser in the report's browser test: pip install -e '.[dev]'",
)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

import glassnet as gn  # noqa: E402
from glassnet.config import RunConfig  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``report.html`` of a one-epoch mlp on breast-cancer (its layers table has a numeric column to sort)."""
    config = RunConfig(data="breast-cancer", model="mlp", epochs=1, baseline=False, model_args={"width": 8})
    run = gn.train(config, out=tmp_path_factory.mktemp("browser") / "bc")
    return gn.report(run.path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # root (CI containers) needs --no-sandbox; the system chromium, never a downloaded one
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        yield chromium
        chromium.close()


class Watched:
    """A page with everything it said on the console, threw, or asked the network for."""

    def __init__(self, browser: Browser, report: Path, **options) -> None:
        self.context = browser.new_context(**options)
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}")
        )
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on("requestfailed", lambda request: self.problems.append(f"request failed: {request.url}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        answer = self.page.goto(report.as_uri())
        assert answer is not None and answer.ok

    def check_quiet(self) -> None:
        """No console errors or warnings, no uncaught errors, and no request but the page's own file."""
        assert not self.problems, "\n".join(self.problems)
        assert all(url.startswith(("file://", "data:")) for url in self.requests), self.requests

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def light(browser: Browser, report: Path) -> Iterator[Watched]:
    watched = Watched(browser, report, viewport={"width": 1400, "height": 900}, color_scheme="light")
    yield watched
    watched.close()


def test_the_report_renders_without_errors_or_requests(light: Watched, tmp_path: Path):
    from PIL import Image

    shot = tmp_path / "report.png"
    light.page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.width == 1400 and image.height > 900
        darkest, lightest = image.convert("L").getextrema()
        assert lightest - darkest > 100, "the screenshot is blank"
    widths = light.page.eval_on_selector_all(
        "main img", "imgs => imgs.map(i => [i.complete && i.naturalWidth > 0, i.getAttribute('width')])"
    )
    assert widths and all(loaded and width for loaded, width in widths), widths
    light.check_quiet()


def test_the_contents_lead_to_every_section(light: Watched):
    page = light.page
    targets = page.eval_on_selector_all(
        "nav.toc a",
        "links => links.map(a => { const t = document.getElementById(a.hash.slice(1)); "
        "return [a.hash, t && t.tagName, t && t.querySelector('h2').textContent, a.textContent]; })",
    )
    assert len(targets) >= 5
    for anchor, tag, heading, text in targets:
        assert tag == "SECTION" and heading == text, (anchor, tag, heading, text)
    page.click("nav.toc a[href='#training']")
    page.wait_for_function("location.hash === '#training'")
    top = page.evaluate("document.getElementById('training').getBoundingClientRect().top")
    assert 0 <= top < 50, f"the section is {top} px from the top after its link was clicked"
    nav = page.evaluate("getComputedStyle(document.querySelector('nav.toc')).position")
    assert nav == "sticky", "on a wide screen the contents stay in view"
    light.check_quiet()


def test_the_contents_come_first_on_a_narrow_screen(browser: Browser, report: Path):
    narrow = Watched(browser, report, viewport={"width": 400, "height": 800})
    try:
        boxes = narrow.page.evaluate(
            "[document.querySelector('nav.toc'), document.querySelector('main')].map(e => e.getBoundingClientRect())"
        )
        nav, main = boxes
        assert nav["bottom"] <= main["top"] + 1 and nav["width"] > 300, boxes
        narrow.check_quiet()
    finally:
        narrow.close()


def test_clicking_a_header_sorts_the_table_as_numbers(light: Watched):
    page = light.page
    header = "#model table.sortable thead th:last-child"
    column = "[...document.querySelectorAll('#model table.sortable tbody tr')].map(r => r.cells[3].textContent)"
    before = page.evaluate(column)
    numbers = [int(v.replace(",", "")) for v in before]
    assert numbers != sorted(numbers), "the layers were already in order: nothing to check"
    page.click(f"{header} button")
    assert [int(v.replace(",", "")) for v in page.evaluate(column)] == sorted(numbers)
    assert page.get_attribute(header, "aria-sort") == "ascending"
    page.click(f"{header} button")
    assert [int(v.replace(",", "")) for v in page.evaluate(column)] == sorted(numbers, reverse=True)
    assert page.get_attribute(header, "aria-sort") == "descending"
    page.click("#model table.sortable thead th:first-child button")  # back to the layers' order
    assert page.evaluate(column) == before
    light.check_quiet()


def test_dark_mode_follows_the_system_setting(browser: Browser, report: Path, light: Watched):
    dark = Watched(browser, report, viewport={"width": 1400, "height": 900}, color_scheme="dark")
    try:
        style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
        light_body, dark_body = light.page.eval_on_selector("body", style), dark.page.eval_on_selector("body", style)
        assert light_body != dark_body
        assert _luminance(dark_body[0]) < 0.2 < 0.8 < _luminance(light_body[0]), (light_body, dark_body)
        assert _luminance(dark_body[1]) > 0.7, "dark mode keeps the text light"
        figure = dark.page.eval_on_selector("main img", "i => getComputedStyle(i).backgroundColor")
        assert _luminance(figure) == 1.0, "figures keep a white frame in dark mode"
        dark.check_quiet()
    finally:
        dark.close()


def test_printing_hides_the_contents_and_opens_collapsed_sections(light: Watched, tmp_path: Path):
    page = light.page
    page.evaluate("document.querySelector('#model details').open = false")
    # the page's own beforeprint handler ran first: this one sees what is printed
    page.evaluate(
        "window.printed = []; addEventListener('beforeprint', () => window.printed.push("
        "[...document.querySelectorAll('details')].every(d => d.open)))"
    )
    pdf = page.pdf(path=str(tmp_path / "report.pdf"))
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert page.evaluate("window.printed") == [True], "a collapsed section was printed closed"
    assert page.evaluate("document.querySelector('#model details').open") is False, "closed again after printing"
    page.emulate_media(media="print", color_scheme="dark")
    assert page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display") == "none"
    assert page.evaluate("getComputedStyle(document.querySelector('main h2')).breakAfter") == "avoid"
    assert _luminance(page.eval_on_selector("section", "e => getComputedStyle(e).color")) < 0.2, (
        "print is dark on light"
    )
    light.check_quiet()


def _luminance(css: str) -> float:
    """The mean of a CSS ``rgb()``/``rgba()`` colour's channels, from 0 (black) to 1 (white)."""
    channels = [float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    return sum(channels) / (3 * 255)
