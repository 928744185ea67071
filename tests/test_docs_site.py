"""The documentation site: every page in the nav, the whole public API in the reference, and a strict
``mkdocs build`` (warnings are errors) whose pages load nothing from the network."""

import inspect
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import glassnet as gn
from glassnet.pipeline import train

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def nav_pages(entries: list) -> set[str]:
    pages = set()
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_the_nav_lists_every_page_and_only_pages_that_exist():
    nav = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert not pages - nav, f"add these pages to the nav in mkdocs.yml: {sorted(pages - nav)}"
    assert not nav - pages, f"the nav of mkdocs.yml names pages that do not exist: {sorted(nav - pages)}"


def test_the_api_reference_documents_every_public_name():
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= {path.rsplit(".", 1)[-1] for path in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M)}
    missing = set(gn.__all__) - documented - {"__version__"}
    assert not missing, f"add `::: module.name` entries to docs/api/*.md for: {sorted(missing)}"


class _Page(HTMLParser):
    """The text of a page, and the URLs its <link> and <script> elements load."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.loads.append(values["src"])
        if tag == "link" and values.get("href") and values.get("rel") not in ("canonical", "alternate"):
            self.loads.append(values["href"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def first_line(obj: object) -> str:
    """A docstring's first line as the page shows it (reST literals lose their backticks)."""
    return inspect.getdoc(obj).splitlines()[0].replace("``", "")


def test_the_site_builds_strictly_with_the_api_reference_and_no_network_assets(tmp_path):
    pytest.importorskip("material", reason="the site needs the docs extra: pip install -e '.[docs]'")
    pytest.importorskip(
        "mkdocstrings_handlers.python", reason="the site needs the docs extra: pip install -e '.[docs]'"
    )
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    done = subprocess.run([*command, "--site-dir", str(site)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]

    api = " ".join(" ".join(read_page(site / "api" / "index.html").text).split())
    assert first_line(train) in api
    assert first_line(gn.load) in api
    training = " ".join(" ".join(read_page(site / "api" / "train.html").text).split())
    assert first_line(gn.Trainer) in training
    assert first_line(gn.EarlyStopping) in training

    remote = {}
    for path in site.rglob("*.html"):
        urls = [url for url in read_page(path).loads if re.match(r"(https?:)?//", url)]
        if urls:
            remote[path.relative_to(site).as_posix()] = urls
    assert not remote, f"pages that load assets from the network: {remote}"
