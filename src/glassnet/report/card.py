"""The model report card: one self-contained HTML page built from a run directory.

Each section is a function ``(ReportContext) -> str | None`` registered with ``@section``; it
reads the run's files and returns HTML (None when its stage has not run). Later stages add
their sections the same way, so the report grows without this module changing.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
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

    def figure(self, name: str, alt: str) -> str:
        """An ``<img>`` with the PNG inlined as a data URI ('' when the figure is absent)."""
        return self.picture(self.run.figure(name), "image/png", alt)

    def picture(self, path: Path, mime: str, alt: str) -> str:
        """An ``<img>`` of the run's file ``path`` inlined as a data URI ('' when the file is absent)."""
        if not self.own(path):
            return ""
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:{mime};base64,{data}" alt="{esc(alt)}">'


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


def table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if i >= numeric_from else ""}">{esc(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
    context = ReportContext(run=run)
    if context.result("train") is None:
        raise RunError(f"'{run.path}' has no results/train.json; train the run before reporting on it")
    context.own(run.model_json)
    context.model, context.config = read_model_json(run.model_json), _read_config(context)
    parts = []
    for _, title, render in _SECTIONS:
        body = render(context)
        if body:
            anchor = title.lower().replace(" ", "-")
            parts.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>')
    from glassnet.version import __version__

    page = _PAGE.format(
        title=esc(f"glassnet report: {run.path.name}"),
        heading=esc(run.path.name),
        subtitle=esc(f"{context.model['name']} on {context.model['spec'].get('name') or 'user data'}"),
        style=_STYLE,
        body="\n".join(parts),
        version=esc(__version__),
    )
    write_text(run.report, page)
    return run.report


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


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;color:#b9c0cc}main{max-width:1100px;margin:0 auto;padding:16px 32px}
section{background:#fff;border-radius:8px;padding:12px 22px 18px;margin:16px 0;box-shadow:0 1px 3px #0002}
h2{font-size:1.15em;border-bottom:1px solid #e3e6eb;padding-bottom:6px}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #eceef2;text-align:left}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}.metrics{display:flex;flex-wrap:wrap;gap:12px}
.metric{background:#f0f4fa;border-radius:6px;padding:8px 16px;min-width:120px}
.metric b{display:block;font-size:1.5em}.note{color:#5a6272;font-size:.9em}
.verdict{border-left:4px solid #2d7d46;padding:6px 12px;background:#eef7f0}
.verdict.ties{border-color:#b07d00;background:#fbf5e6}.verdict.trails{border-color:#c0392b;background:#fbeeec}
details summary{cursor:pointer;color:#2d5b9a}footer{color:#8a93a3;font-size:.8em;text-align:center;padding:12px}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{style}</style></head>
<body><header><h1>Model report card: {heading}</h1><p>{subtitle}</p></header>
<main>
{body}
</main><footer>written by glassnet {version}; this page is self-contained and opens offline</footer></body></html>
"""
