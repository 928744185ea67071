"""The model report card: one self-contained HTML page built from a run directory.

Each section is a function ``(ReportContext) -> str | None`` registered with ``@section``; it
reads the run's files and returns HTML (None when its stage has not run). Later stages add
their sections the same way, so the report grows without this module changing.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from glassnet.errors import ConfigError, RunError
from glassnet.models.serialization import read_model_json
from glassnet.report.validate import ANY, problem
from glassnet.runs import RunDir, write_text, writes_run

Section = Callable[["ReportContext"], "str | None"]
_SECTIONS: list[tuple[float, str, Section]] = []


@dataclass
class ReportContext:
    """What sections read: the run directory and its parsed files."""

    run: RunDir
    model: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    written: str = ""  # when the report is written (UTC, ISO 8601)
    _results: dict[str, Any] = field(default_factory=dict, repr=False)

    def result(self, stage: str, schema: Any = None) -> dict[str, Any] | None:
        """``results/<stage>.json`` (None when the stage has not run), checked against the ``schema`` of
        what the caller reads (see ``glassnet.report.validate``).

        Raises:
            RunError: the file is not a JSON mapping, does not match ``schema``, or is a link out of the run.
        """
        if stage not in self._results:
            self._results[stage] = self.run.read_result(stage) if self.own(self.run.result_file(stage)) else None
        data = self._results[stage]
        if data is not None:
            self.check(stage, data, schema or {})
        return data

    def check(self, stage: str, value: Any, schema: Any, where: str = "") -> Any:
        """``value`` (found at ``where`` in ``results/<stage>.json``) once it matches ``schema``.

        Raises:
            RunError: it does not; the message names the file, the place and what to run again.
        """
        found = problem(value, schema, where)
        if found:
            self.invalid(stage, found)
        return value

    def invalid(self, stage: str, what: str) -> NoReturn:
        """Refuse ``results/<stage>.json``, saying ``what`` is wrong with it and how to write it again."""
        redo = _RERUN.get(stage, f"re-run the stage that writes it (`glassnet {stage} {self.run.path}`)")
        raise RunError(f"{self.run.result_file(stage)}: {what}; {redo.format(run=self.run.path)}")

    @property
    def control(self) -> bool:
        """Whether the run is an agent (trained on an environment): its sections are ``report.control``'s."""
        return (self.result("train", {"task?": ANY}) or {}).get("task") == "control"

    def own(self, path: Path) -> bool:
        """Whether ``path`` exists as a file; refused when a symbolic link takes it outside the run.

        Raises:
            RunError: ``path`` leads (through a link) to a file that is not one of the run's own.
        """
        if not path.is_file():
            return False
        if not self.run.owns(path.resolve()):
            raise RunError(
                f"'{path}' is a symbolic link to '{path.resolve()}', outside the run; the report embeds only the "
                "run's own files: remove the link, or copy the file into the run in its place"
            )
        return True

    def figure(self, name: str, alt: str, scale: float | None = None) -> str:
        """An ``<img>`` of the run's figure ``name`` inlined as a data URI ('' when the figure is absent).

        The figure is ``figures/<name>.svg`` or ``figures/<name>.png`` (the newer when both exist).

        Args:
            name: the figure's name, without its extension.
            alt: the text that stands for the figure (screen readers, a figure that fails to show).
            scale: the PNG's pixel ratio (2: drawn at twice the resolution it is shown at); None reads
                it from the resolution the PNG was saved at (see ``pixel_ratio``).
        """
        png, svg = self.run.figure(name), self.run.figures_dir / f"{name}.svg"
        if self.own(svg) and not (self.own(png) and png.stat().st_mtime > svg.stat().st_mtime):
            return self.picture(svg, "image/svg+xml", alt)
        return self.picture(png, "image/png", alt, scale)

    def picture(self, path: Path, mime: str, alt: str, scale: float | None = None) -> str:
        """An ``<img>`` of the run's file ``path`` inlined as a data URI ('' when the file is absent).

        The tag carries its size in CSS pixels (``width``/``height``, read from the PNG, GIF or SVG
        header), so the page does not jump while it loads and a PNG drawn at ``scale`` times its size
        shows at its intended size, sharp on high-resolution screens.
        """
        if not self.own(path):
            return ""
        raw = path.read_bytes()
        size = image_size(raw, mime, scale)
        dimensions = f' width="{size[0]}" height="{size[1]}"' if size else ""
        data = base64.b64encode(raw).decode("ascii")
        return f'<img src="data:{mime};base64,{data}" alt="{esc(alt)}"{dimensions}>'


# a figure is shown at this many CSS pixels per inch of the matplotlib figure: the size a figure saved at
# glassnet's 1x resolution (110 dpi) always had; one saved at 220 dpi is a 2x figure of the same size
CSS_PX_PER_INCH = 110.0


def image_size(data: bytes, mime: str, scale: float | None = None) -> tuple[int, int] | None:
    """The size an image is shown at, in CSS pixels: (width, height), or None when it cannot be read.

    A PNG's pixels are divided by ``scale``, or, when None, by its pixel ratio (``pixel_ratio``); a GIF
    shows at its pixel size; an SVG at its ``width``/``height`` (points count at ``CSS_PX_PER_INCH``).
    """
    if mime == "image/png":
        header = _png_header(data)
        if header is None:
            return None
        width, height, dpi = header
        ratio = scale if scale else pixel_ratio(dpi)
        return max(1, round(width / ratio)), max(1, round(height / ratio))
    if mime == "image/gif" and data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if mime == "image/svg+xml":
        return _svg_size(data)
    return None


def pixel_ratio(dpi: float | None) -> float:
    """The pixel ratio of a PNG saved at ``dpi`` (its ``pHYs`` resolution): ``dpi / CSS_PX_PER_INCH``, two
    decimals, at least 1 (a figure is never shown larger than its pixels); 1 when the PNG does not say."""
    if not dpi or not math.isfinite(dpi):
        return 1.0
    return max(1.0, round(dpi / CSS_PX_PER_INCH, 2))


def _png_header(data: bytes) -> tuple[int, int, float | None] | None:
    """Width and height (IHDR) and resolution in dots per inch (pHYs, None when absent) of a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    dpi, offset = None, 8
    while offset + 8 <= len(data):  # the chunks before the image data: pHYs must come before IDAT
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            break
        if kind == b"pHYs" and length == 9 and offset + 17 <= len(data):
            per_x, _, unit = struct.unpack(">IIB", data[offset + 8 : offset + 17])
            dpi = per_x * 0.0254 if unit == 1 and per_x else None  # unit 1: pixels per metre
        offset += 12 + length
    return width, height, dpi


_SVG_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px|pt|)\s*$")


def _svg_size(data: bytes) -> tuple[int, int] | None:
    """The ``width``/``height`` of an SVG's root element in CSS pixels (None unless both are absolute)."""
    root = re.search(rb"<svg\b[^>]*>", data[:8192])
    if root is None:
        return None
    found = []
    for name in (b"width", b"height"):
        attribute = re.search(rb"\s" + name + rb"\s*=\s*[\"']([^\"']*)[\"']", root.group(0))
        length = _SVG_LENGTH.match(attribute.group(1).decode("ascii", "replace")) if attribute else None
        if length is None:
            return None
        value = float(length.group(1)) * (CSS_PX_PER_INCH / 72 if length.group(2) == "pt" else 1.0)
        found.append(max(1, round(value)))
    return found[0], found[1]


# how each results file is written again: the message that refuses a damaged one says so
_RERUN = {
    "train": "restore it, or train the run again (`glassnet train ... --out {run} --overwrite`)",
    "evaluate": "re-run `glassnet evaluate {run}`",
    "explain": "re-run `glassnet explain {run}`",
    "robustness": "re-run `glassnet attack {run}`",
    "compress": "re-run `glassnet compress {run}` with the options it had",
    "lr_finder": "re-run `glassnet train --find-lr` with the run's configuration",
}


def section(title: str, order: float) -> Callable[[Section], Section]:
    """Register a report section; sections render in ascending ``order``."""

    def decorate(render: Section) -> Section:
        _SECTIONS.append((order, title, render))
        _SECTIONS.sort(key=lambda entry: entry[0])
        return render

    return decorate


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(
    header: list[str],
    rows: list[list[Any]],
    numeric_from: int = 1,
    foot: list[list[Any]] | None = None,
    sortable: bool = True,
) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned.

    Args:
        header: the column names.
        rows: the body rows; a reader sorts them by clicking a column's name (numbers as numbers).
        numeric_from: the first right-aligned (numeric) column.
        foot: rows kept below the body when it is sorted (totals).
        sortable: offer sorting (a table of two rows or more).
    """

    def cells(row: list[Any]) -> str:
        return "".join(f'<td class="{"num" if i >= numeric_from else ""}">{esc(c)}</td>' for i, c in enumerate(row))

    numeric = ' class="num"'
    head = "".join(f'<th scope="col"{numeric if i >= numeric_from else ""}>{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    tail = f"<tfoot>{''.join(f'<tr>{cells(row)}</tr>' for row in foot)}</tfoot>" if foot else ""
    kind = ' class="sortable"' if sortable and len(rows) > 1 else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tail}</table>"


def key_values(rows: list[list[Any]]) -> str:
    """A two-column table of facts, names in bold, no header."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def fmt(value: Any) -> str:
    """Numbers with four significant decimals, integers with separators."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def num(value: Any, spec: str) -> str:
    """``value`` formatted with the format ``spec`` (e.g. ``.3f``, ``.1%``, ``,``); "n/a" for a missing
    value (results store NaN and infinities as null) or anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return format(float(value) if spec[-1:] in "eEfFgG%" else value, spec)


@writes_run("report")
def report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.html`` for a run (atomically) and return its path.

    Raises:
        RunError: the run has no trained model to report on.
    """
    from glassnet.stages import list_stages

    list_stages()  # stages may bring report sections of their own
    run = RunDir(run_dir)
    run.require_model()
    from glassnet.provenance import utc_now

    context = ReportContext(run=run, written=utc_now())
    if context.result("train") is None:
        raise RunError(f"'{run.path}' has no results/train.json; train the run before reporting on it")
    context.own(run.model_json)
    context.model, context.config = read_model_json(run.model_json), _read_config(context)
    parts, contents, anchors = [], [], set()
    for _, title, render in _SECTIONS:
        body = render(context)
        if body:
            anchor = _anchor(title, anchors)
            parts.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>')
            contents.append(f'<li><a href="#{anchor}">{esc(title)}</a></li>')
    from glassnet.version import __version__

    page = _PAGE.format(
        title=esc(f"glassnet report: {run.path.name}"),
        heading=esc(run.path.name),
        subtitle=esc(f"{context.model['name']} on {context.model['spec'].get('name') or 'user data'}"),
        style=_STYLE,
        contents="".join(contents),
        body="\n".join(parts),
        version=esc(__version__),
        written=esc(plain_time(context.written)),
        script=_SCRIPT,
    )
    write_text(run.report, page)
    return run.report


def _anchor(title: str, taken: set[str]) -> str:
    """The ``id`` of a section: its title in lower case with dashes, unique in the page."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


def _read_config(context: ReportContext) -> dict[str, Any]:
    """The run's config.yaml as a mapping; a file that is not a bounded YAML mapping is refused."""
    run = context.run
    if not context.own(run.config_file):
        return {}
    from glassnet.config import read_yaml

    try:
        return read_yaml(run.config_file)
    except ConfigError as exc:
        raise RunError(f"{exc}; the run's config.yaml was changed after training (retrain, or restore it)") from exc


def plain_time(value: Any) -> str:
    """An ISO 8601 time as words a reader scans (``2026-12-04 16:40:12 UTC``); anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# colours are variables: the light set, the dark set (prefers-color-scheme) and the light set again for print
_LIGHT = (
    "--bg:#f5f6f8;--fg:#1d2330;--card:#fff;--muted:#5a6272;--line:#eceef2;--rule:#e3e6eb;--th:#f0f2f5;"
    "--tile:#f0f4fa;--link:#2d5b9a;--head:#1d2330;--head-muted:#b9c0cc;--good:#2d7d46;--good-bg:#eef7f0;"
    "--tie:#b07d00;--tie-bg:#fbf5e6;--bad:#c0392b;--bad-bg:#fbeeec;--shadow:#0002;--foot:#8a93a3;--frame:none"
)
_DARK = (
    "--bg:#111419;--fg:#e2e6ed;--card:#1b1f27;--muted:#a4acba;--line:#2a303b;--rule:#333a47;--th:#232934;"
    "--tile:#222a37;--link:#8cb4f0;--head:#07090c;--head-muted:#9aa3b2;--good:#4caf6d;--good-bg:#16291c;"
    "--tie:#d9a521;--tie-bg:#2e2612;--bad:#e0675a;--bad-bg:#361b18;--shadow:#0009;--foot:#7d8696;"
    "--frame:0 0 0 6px #fff"
)
_STYLE = """
:root{color-scheme:light dark;LIGHT}
@media (prefers-color-scheme:dark){:root{DARK}}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
a{color:var(--link)}
header{background:var(--head);color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;color:var(--head-muted)}
.layout{max-width:1100px;margin:0 auto;padding:0 32px}main{min-width:0}
nav.toc{background:var(--card);border-radius:8px;padding:10px 22px;margin:16px 0 0;box-shadow:0 1px 3px var(--shadow)}
.toc-title{font-size:.8em;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:4px 0 6px}
nav.toc ol{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px}
nav.toc a{text-decoration:none}nav.toc a:hover,nav.toc a:focus-visible{text-decoration:underline}
nav.toc a[aria-current]{font-weight:600}
@media (min-width:1180px){
.layout{display:grid;grid-template-columns:200px minmax(0,1100px);gap:24px;max-width:1324px}
nav.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;box-sizing:border-box;margin:0;
padding:24px 0 16px;background:none;box-shadow:none;border-radius:0}
nav.toc ol{display:block}nav.toc li{margin:0 0 6px}}
section{background:var(--card);border-radius:8px;padding:12px 22px 18px;margin:16px 0;
box-shadow:0 1px 3px var(--shadow);overflow-x:auto;scroll-margin-top:8px}
h2{font-size:1.15em;border-bottom:1px solid var(--rule);padding-bottom:6px}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left}
th{background:var(--th)}td.num{text-align:right;font-variant-numeric:tabular-nums}th.num{text-align:right}
tfoot td{font-weight:600}
th button.sort{all:unset;cursor:pointer;display:inline-flex;gap:4px;align-items:baseline}
th button.sort::after{content:"\\2195";opacity:.35;font-size:.85em}
th[aria-sort=ascending] button.sort::after{content:"\\25B2";opacity:.8}
th[aria-sort=descending] button.sort::after{content:"\\25BC";opacity:.8}
th button.sort:focus-visible{outline:2px solid var(--link);outline-offset:2px}
img{max-width:100%;height:auto;background:#fff;box-shadow:var(--frame);border-radius:2px}
@media (prefers-color-scheme:dark){img{margin:6px}}
.metrics{display:flex;flex-wrap:wrap;gap:12px}
.metric{background:var(--tile);border-radius:6px;padding:8px 16px;min-width:120px}
.metric b{display:block;font-size:1.5em}.note{color:var(--muted);font-size:.9em}
.verdict{border-left:4px solid var(--good);padding:6px 12px;background:var(--good-bg)}
.verdict.ties{border-color:var(--tie);background:var(--tie-bg)}
.verdict.trails{border-color:var(--bad);background:var(--bad-bg)}
.note.warn{color:var(--bad)}
pre{background:var(--th);padding:8px 12px;border-radius:6px;overflow-x:auto;white-space:pre-wrap}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.88em}
table.facts th{white-space:nowrap}
details summary{cursor:pointer;color:var(--link)}
footer{color:var(--foot);font-size:.8em;text-align:center;padding:12px}
@media (max-width:600px){header{padding:14px 14px}.layout{padding:0 10px}section{padding:10px 12px 14px}}
@media print{
:root{LIGHT}
body{background:#fff;font-size:10.5pt}
nav.toc{display:none}
header{background:none;color:#000;padding:0 0 6pt;border-bottom:2px solid #000}header p{color:#333}
.layout{display:block;max-width:none;padding:0}
section{box-shadow:none;border-radius:0;padding:0;margin:0 0 14pt;overflow:visible;break-inside:avoid}
h1,h2,h3,h4,summary{break-after:avoid;page-break-after:avoid}
h2{break-before:auto}
img,tr,pre,.metrics,.verdict,figure{break-inside:avoid;page-break-inside:avoid}
img{box-shadow:none;margin:0}
p{orphans:3;widows:3}
thead{display:table-header-group}
th button.sort::after{content:none}
details summary{color:inherit;font-weight:600;list-style:none}
details summary::-webkit-details-marker{display:none}
a{color:inherit;text-decoration:none}
footer{color:#555}
}
@media print{details::details-content{content-visibility:visible;display:block}}
""".replace("LIGHT", _LIGHT).replace("DARK", _DARK)

# sortable tables, the current section in the table of contents, and <details> opened for printing
_SCRIPT = """
"use strict";
(() => {
  const MISSING = /^(|n\\/a|-|\\u2013|\\u2014|nan|none)$/i;
  const NUMBER = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?$/i;
  const key = (cell) => {
    const text = cell ? (cell.getAttribute("data-sort") ?? cell.textContent).trim() : "";
    if (MISSING.test(text)) return { missing: true };
    const plain = text.replace(/[,\\s\\u00a0\\u202f]/g, "").replace(/\\u2212/g, "-").replace(/%$/, "");
    return NUMBER.test(plain) ? { number: parseFloat(plain) } : { text };
  };
  const compare = (a, b) => {
    if (a.number !== undefined && b.number !== undefined) return a.number - b.number;
    if (a.number !== undefined || b.number !== undefined) return a.number !== undefined ? -1 : 1;
    return a.text.localeCompare(b.text, undefined, { numeric: true, sensitivity: "base" });
  };
  const sortBy = (table, column) => {
    const headers = [...table.tHead.rows[0].cells];
    const ascending = headers[column].getAttribute("aria-sort") !== "ascending";
    headers.forEach((header) => header.removeAttribute("aria-sort"));
    headers[column].setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = [...body.rows].map((row, at) => ({ row, at, key: key(row.cells[column]) }));
    rows.sort((a, b) => {
      if (a.key.missing || b.key.missing) return (a.key.missing ? 1 : 0) - (b.key.missing ? 1 : 0) || a.at - b.at;
      return (ascending ? 1 : -1) * compare(a.key, b.key) || a.at - b.at;
    });
    rows.forEach(({ row }) => body.appendChild(row));
  };
  for (const table of document.querySelectorAll("table.sortable")) {
    if (!table.tHead || table.tHead.rows.length !== 1 || table.tBodies.length !== 1) continue;
    [...table.tHead.rows[0].cells].forEach((header, column) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.title = `Sort by ${header.textContent.trim()}`;
      button.append(...header.childNodes);
      header.append(button);
      button.addEventListener("click", () => sortBy(table, column));
    });
  }
  const links = new Map([...document.querySelectorAll("nav.toc a")].map((a) => [a.hash.slice(1), a]));
  if ("IntersectionObserver" in window && links.size) {
    const seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting || !links.has(entry.target.id)) continue;
        links.forEach((link) => link.removeAttribute("aria-current"));
        links.get(entry.target.id).setAttribute("aria-current", "location");
      }
    }, { rootMargin: "0px 0px -75% 0px" });
    document.querySelectorAll("main > section").forEach((section) => seen.observe(section));
  }
  let opened = [];
  addEventListener("beforeprint", () => {
    opened = [...document.querySelectorAll("details:not([open])")];
    opened.forEach((details) => { details.open = true; });
  });
  addEventListener("afterprint", () => {
    opened.forEach((details) => { details.open = false; });
    opened = [];
  });
})();
"""

# no request leaves the page: images are data URIs, the style and the script are inline
_POLICY = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="POLICY">
<meta name="color-scheme" content="light dark">
<title>{title}</title><style>{style}</style></head>
<body><header><h1>Model report card: {heading}</h1><p>{subtitle}</p></header>
<div class="layout">
<nav class="toc" aria-label="Contents"><p class="toc-title">Contents</p><ol>{contents}</ol></nav>
<main id="main">
{body}
</main></div>
<footer>written by glassnet {version} on {written}; this page is self-contained and opens offline</footer>
<script>{script}</script></body></html>
""".replace("POLICY", _POLICY)
