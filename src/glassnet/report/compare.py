"""The comparison page: several runs side by side in one self-contained HTML file.

``compare(runs, out)`` reads each run's ``results/*.json`` (validated as the report card validates
them), lays out one table with a column per run and a row per quantity (model, data, parameters,
settings, test metrics, training time, and the headlines of the audits: explanation faithfulness,
accuracy under attack at each budget, the fastest compressed variant), highlights the best run of
each row, and draws one bar chart of the main test metric beside the audited accuracies.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassnet.errors import ConfigError, GlassnetError, RunError
from glassnet.report.card import ReportContext, esc
from glassnet.report.validate import ANY, NUMBER, TEXT, Each
from glassnet.runs import RunDir, write_text

# what the page reads of each results file: checked before it is read
_TRAIN = {
    "task?": ANY,
    "test": Each(ANY),
    "data?": {"name?": ANY},
    "model?": {"name?": ANY, "hparams?": Each(ANY), "parameters?": NUMBER},
    "training?": {"train_time_s?": NUMBER, "epochs_run?": ANY, "device?": ANY},
}
_NESTED = {
    "roc?": {"auc?": NUMBER},
    "precision_recall?": {"average_precision?": NUMBER},
    "calibration?": {"ece?": NUMBER},
}
_FAITHFULNESS = {
    "deletion_auc?": NUMBER, "random_deletion_auc?": NUMBER, "insertion_auc?": NUMBER, "random_insertion_auc?": NUMBER,
}  # fmt: skip
_EXPLAIN = {"method_label?": ANY, "method?": ANY, "trust?": {"faithfulness?": _FAITHFULNESS}}
_ROBUSTNESS = {
    "kind?": ANY, "norm?": ANY, "space?": ANY, "examples?": NUMBER, "clean_accuracy?": NUMBER,
    "robust_accuracy?": Each(NUMBER),
}  # fmt: skip
_COMPRESS = {
    "kind?": ANY,
    "metric?": TEXT,
    "variants?": [{"name": ANY, "size_ratio?": NUMBER, "latency_speedup?": NUMBER}],
}
# the extra test figures of classifiers, kept under their records in train.json: (record, key, row, direction)
_EXTRA_METRICS = (
    ("roc", "auc", "ROC AUC", "max"),
    ("precision_recall", "average_precision", "average precision", "max"),
    ("calibration", "ece", "ECE (calibration error)", "min"),
)
_SETTINGS = ("optimizer", "lr", "batch_size", "epochs", "seed")
_AUDITS = ("Explanations", "Robustness", "Compression")


@dataclass
class _Run:
    """One run as the page shows it: its files, read and validated once."""

    label: str
    path: Path
    task: str
    data: str
    train: dict[str, Any]
    explain: dict[str, Any] | None
    robustness: dict[str, Any] | None
    compress: dict[str, Any] | None
    config: dict[str, Any]
    report: Path | None

    @property
    def group(self) -> tuple[str, str]:
        """Runs of the same group (data and task) have comparable metrics."""
        return self.data, self.task


@dataclass
class _Row:
    """One quantity across the runs: a value to rank (number or None) and a cell per run."""

    group: str
    name: str
    values: list[float | None]
    cells: list[str]
    mode: str | None = None  # "max" or "min": which value is best; None for facts that are not ranked
    best: set[int] = field(default_factory=set)


def compare(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] = "compare.html") -> Path:
    """Write one self-contained HTML page that compares ``runs`` and return its path.

    Args:
        runs: two or more run directories (trained with ``glassnet train``; audited or not).
        out: the HTML file to write (a directory gets ``compare.html`` inside it).

    Returns:
        The path of the page written.

    Raises:
        ConfigError: fewer than two runs are given.
        RunError: a path is not a trained run, or one of its results files is damaged.
    """
    if len(runs) < 2:
        given = f": '{runs[0]}'" if runs else ""
        raise ConfigError(
            f"compare needs at least two runs, got {len(runs)}{given}; e.g. `glassnet compare runs/a runs/b`"
        )
    opened = _open_runs(runs)
    rows = _rows(opened)
    for row in rows:
        _rank(row, opened)
    target = Path(out)
    if target.is_dir():
        target = target / "compare.html"
    write_text(target, _page(opened, rows, _chart(opened), target))
    return target


def _open_runs(paths: Sequence[str | os.PathLike[str]]) -> list[_Run]:
    names = [Path(p).name or str(p) for p in paths]
    labels = [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths)]
    return [_open(label, Path(p)) for label, p in zip(labels, paths)]


def _open(label: str, path: Path) -> _Run:
    run = RunDir(path)
    run.require_model()
    context = ReportContext(run=run)
    train = context.result("train", _TRAIN)
    if train is None:
        raise RunError(f"'{path}' has no results/train.json; train the run before comparing it")
    context.check("train", train["test"], _NESTED, "test")
    robustness = context.result("robustness", _ROBUSTNESS)
    compressed = context.result("compress", _COMPRESS)
    return _Run(
        label=label,
        path=path,
        task=str(train.get("task") or "?"),
        data=str((train.get("data") or {}).get("name") or "user data"),
        train=train,
        explain=context.result("explain", _EXPLAIN),
        robustness=robustness if robustness and robustness.get("kind") not in ("policy", "dense") else None,
        compress=compressed if compressed and compressed.get("kind") not in ("policy", "generator") else None,
        config=_config(run),
        report=run.report if run.report.is_file() else None,
    )


def _config(run: RunDir) -> dict[str, Any]:
    """The run's config.yaml, or nothing when it is missing or unreadable (the page only shows settings from it)."""
    from glassnet.config import read_yaml

    try:
        return read_yaml(run.config_file) if run.config_file.is_file() else {}
    except GlassnetError:
        return {}


# --- rows -------------------------------------------------------------------------------------------


def _rows(runs: list[_Run]) -> list[_Row]:
    return [
        *_run_rows(runs),
        *_metric_rows(runs),
        *_training_rows(runs),
        *_explain_rows(runs),
        *_robustness_rows(runs),
        *_compress_rows(runs),
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numeric(
    group: str,
    name: str,
    runs: list[_Run],
    read: Callable[[_Run], Any],
    shown: Callable[[float], str],
    mode: str | None,
) -> _Row | None:
    """A ranked row of the numbers ``read`` gives (None when no run has one)."""
    values = [_number(read(r)) for r in runs]
    if all(v is None for v in values):
        return None
    return _Row(group, name, values, [shown(v) if v is not None else "n/a" for v in values], mode)


def _run_rows(runs: list[_Run]) -> list[_Row]:
    def model(r: _Run) -> str:
        block = r.train.get("model") or {}
        hparams = ", ".join(f"{k}={v}" for k, v in (block.get("hparams") or {}).items())
        return f"{block.get('name', '?')}({hparams})"

    def settings(r: _Run) -> str:
        return ", ".join(f"{k}={r.config[k]}" for k in _SETTINGS if k in r.config) or "n/a"

    rows = [
        _Row("Run", "model", [None] * len(runs), [model(r) for r in runs]),
        _Row("Run", "data (task)", [None] * len(runs), [f"{r.data} ({r.task})" for r in runs]),
        _Row("Run", "settings", [None] * len(runs), [settings(r) for r in runs]),
    ]
    parameters = _numeric(
        "Run",
        "parameters",
        runs,
        lambda r: (r.train.get("model") or {}).get("parameters"),
        lambda v: f"{v:,.0f}",
        "min",
    )
    if parameters:
        rows.append(parameters)
    return rows


def _metric_rows(runs: list[_Run]) -> list[_Row]:
    keys: list[str] = []
    for r in runs:
        keys += [k for k, v in r.train["test"].items() if _number(v) is not None and k not in keys]
    rows = [
        _numeric("Test metrics", k, runs, lambda r, k=k: r.train["test"].get(k), lambda v: f"{v:.4f}", _mode(runs, k))
        for k in keys
    ]
    for record, key, name, mode in _EXTRA_METRICS:
        rows.append(
            _numeric(
                "Test metrics",
                name,
                runs,
                lambda r, record=record, key=key: (r.train["test"].get(record) or {}).get(key),
                lambda v: f"{v:.4f}",
                mode,
            )
        )
    return [r for r in rows if r]


def _mode(runs: list[_Run], key: str) -> str | None:
    """Whether a higher (``max``) or lower (``min``) test ``key`` is better, as the runs' tasks say."""
    from glassnet.train import get_task

    for task in dict.fromkeys(r.task for r in runs if key in r.train["test"]):
        try:
            mode = get_task(task).monitor_modes.get(key)
        except GlassnetError:
            continue
        if mode:
            return mode
    return None


def _training_rows(runs: list[_Run]) -> list[_Row]:
    training = [r.train.get("training") or {} for r in runs]
    rows = [
        _Row("Training", "epochs", [None] * len(runs), [str(t.get("epochs_run", "n/a")) for t in training]),
        _numeric(
            "Training",
            "training time",
            runs,
            lambda r: (r.train.get("training") or {}).get("train_time_s"),
            lambda v: f"{v:,.1f} s",
            "min",
        ),
        _Row("Training", "device", [None] * len(runs), [str(t.get("device", "n/a")) for t in training]),
    ]
    return [r for r in rows if r]


def _explain_rows(runs: list[_Run]) -> list[_Row]:
    if not any(r.explain for r in runs):
        return []

    def faithfulness(r: _Run) -> dict[str, Any]:
        return ((r.explain or {}).get("trust") or {}).get("faithfulness") or {}

    def ratio(r: _Run, kind: str) -> float | None:
        own, random = (_number(faithfulness(r).get(k)) for k in (f"{kind}_auc", f"random_{kind}_auc"))
        return own / random if own is not None and random else None

    def shown(r: _Run, kind: str) -> str:
        own, random = (_number(faithfulness(r).get(k)) for k in (f"{kind}_auc", f"random_{kind}_auc"))
        return f"{own:.3f} (random {random:.3f})" if own is not None and random is not None else "n/a"

    method = [str((r.explain or {}).get("method_label") or (r.explain or {}).get("method") or "n/a") for r in runs]
    rows = [_Row("Explanations", "method", [None] * len(runs), method)]
    for kind, mode in (("deletion", "min"), ("insertion", "max")):
        values = [ratio(r, kind) for r in runs]
        if any(v is not None for v in values):
            rows.append(
                _Row("Explanations", f"{kind} AUC (random order)", values, [shown(r, kind) for r in runs], mode)
            )
    return rows


def _robustness_rows(runs: list[_Run]) -> list[_Row]:
    attacked = [r.robustness or {} for r in runs]
    if not any(attacked):
        return []
    rows = [
        _numeric("Robustness", "examples attacked", runs, lambda r: (r.robustness or {}).get("examples"),
                 "{:,.0f}".format, None),  # more examples is not a better model
        _numeric("Robustness", "clean accuracy (attacked examples)", runs,
                 lambda r: (r.robustness or {}).get("clean_accuracy"), "{:.4f}".format, "max"),
    ]  # fmt: skip
    budgets: dict[tuple[str, str, float], None] = {}
    for result in attacked:
        for eps in result.get("robust_accuracy") or {}:
            budgets[(str(result.get("norm", "linf")), str(result.get("space", "input")), _eps(eps))] = None
    for norm, space, eps in sorted(budgets, key=lambda b: (b[0], b[1], b[2])):

        def read(r: _Run, norm: str = norm, space: str = space, eps: float = eps) -> Any:
            result = r.robustness or {}
            if str(result.get("norm", "linf")) != norm or str(result.get("space", "input")) != space:
                return None
            matches = [v for e, v in (result.get("robust_accuracy") or {}).items() if _eps(e) == eps]
            return matches[0] if matches else None

        where = "" if space == "input" else f" ({space} space)"
        rows.append(
            _numeric("Robustness", f"robust accuracy, {norm} eps={eps:g}{where}", runs, read, "{:.4f}".format, "max")
        )
    return [r for r in rows if r]


def _eps(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _fastest(r: _Run) -> dict[str, Any] | None:
    """The compressed variant with the largest batch-1 speed-up (the compress stage's headline)."""
    variants = [v for v in (r.compress or {}).get("variants") or [] if v.get("name") != "fp32"]
    return max(variants, key=lambda v: _number(v.get("latency_speedup")) or 0.0) if variants else None


def _compress_rows(runs: list[_Run]) -> list[_Row]:
    fastest = [_fastest(r) for r in runs]
    if not any(fastest):
        return []
    rows = [
        _Row("Compression", "fastest variant", [None] * len(runs), [str(v["name"]) if v else "n/a" for v in fastest]),
        _numeric("Compression", "its size, times smaller", runs, lambda r: (_fastest(r) or {}).get("size_ratio"),
                 "{:.2f}x".format, "max"),
        _numeric("Compression", "its batch-1 speed-up", runs, lambda r: (_fastest(r) or {}).get("latency_speedup"),
                 "{:.2f}x".format, "max"),
    ]  # fmt: skip
    metrics = dict.fromkeys(str((r.compress or {}).get("metric", "accuracy")) for r in runs if r.compress)
    for metric in metrics:

        def read(r: _Run, metric: str = metric) -> Any:
            same = (r.compress or {}).get("metric", "accuracy") == metric
            return (_fastest(r) or {}).get(metric) if same else None

        rows.append(_numeric("Compression", f"its test {metric}", runs, read, "{:.4f}".format, _mode(runs, metric)))
    return [r for r in rows if r]


def _rank(row: _Row, runs: list[_Run]) -> None:
    """Mark the best value of a ranked row, when the runs that have it are comparable and more than one has it."""
    present = [i for i, v in enumerate(row.values) if v is not None and v == v]
    if row.mode is None or len(present) < 2:
        return
    if len({runs[i].group for i in present}) > 1:
        return
    best = (max if row.mode == "max" else min)(row.values[i] for i in present)
    row.best = {i for i in present if row.values[i] == best}


# --- the page ----------------------------------------------------------------------------------------


def _chart(runs: list[_Run]) -> str:
    """One bar chart: each run's main test metric, with its worst-case robust accuracy (at its largest
    budget) and its fastest compressed variant's metric beside it, as an inline SVG ``<img>``."""
    from glassnet.figures import pyplot
    from glassnet.train import get_task

    panels: dict[str, list[_Run]] = {}
    for r in runs:
        try:
            main = next(iter(get_task(r.task).headline_metrics), "loss")
        except GlassnetError:
            main = "loss"
        if _number(r.train["test"].get(main)) is not None:
            panels.setdefault(main, []).append(r)
    if not panels:
        return ""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 1.6 * len(runs) + 2) * len(panels), 3.8), squeeze=False)
    for ax, (metric, members) in zip(axes[0], panels.items()):
        _bars(ax, metric, members)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="test {esc(", ".join(panels))} of each run">'


def _bars(ax: Any, metric: str, runs: list[_Run]) -> None:
    """Grouped bars of one metric: test, under attack (largest eps), fastest compressed variant."""
    series: list[tuple[str, list[float | None], list[str], dict[str, Any]]] = [
        (f"test {metric}", [_number(r.train["test"].get(metric)) for r in runs], [""] * len(runs), {"color": "#2d5b9a"})
    ]
    if metric == "accuracy":
        robust = [_largest_budget(r) for r in runs]
        if any(v is not None for v, _ in robust):
            series.append(
                (
                    "robust accuracy (largest eps)",
                    [v for v, _ in robust],
                    [f"eps {e}" if e else "" for _, e in robust],
                    {"color": "#c0392b", "hatch": "//", "edgecolor": "white"},
                )
            )
    compressed = [
        _number((_fastest(r) or {}).get(metric)) if (r.compress or {}).get("metric", "accuracy") == metric else None
        for r in runs
    ]
    if any(v is not None for v in compressed):
        series.append(("fastest compressed variant", compressed, [""] * len(runs), {"color": "#2d7d46"}))
    width = 0.8 / len(series)
    # each run's bars sit centred on its tick, however many of the series it has
    present = [[k for k, (_, values, _, _) in enumerate(series) if values[i] is not None] for i in range(len(runs))]
    for k, (label, values, notes, style) in enumerate(series):
        xs = [i + (p.index(k) - (len(p) - 1) / 2) * width if k in p else 0.0 for i, p in enumerate(present)]
        shown = [(x, v, n) for x, v, n in zip(xs, values, notes) if v is not None]
        if not shown:
            continue
        bars = ax.bar([x for x, _, _ in shown], [v for _, v, _ in shown], width * 0.95, label=label, **style)
        for bar, (_, v, note) in zip(bars, shown):
            text = f"{v:.3f}" + (f"\n{note}" if note else "")
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    ax.set_xticks(range(len(runs)), [r.label for r in runs], rotation=20 if len(runs) > 3 else 0, ha="center")
    top = max((v for _, values, _, _ in series for v in values if v is not None), default=1.0)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set(ylabel=metric, title=f"Test {metric}" + (" and the audits" if len(series) > 1 else ""))
    ax.grid(alpha=0.3, axis="y")
    if len(series) > 1:  # below the axes: never over a bar
        below = -0.28 if len(runs) > 3 else -0.12
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, below), ncol=len(series), frameon=False)


def _largest_budget(r: _Run) -> tuple[float | None, str]:
    robust = (r.robustness or {}).get("robust_accuracy") or {}
    if not robust:
        return None, ""
    eps = max(robust, key=_eps)
    return _number(robust[eps]), eps


def _page(runs: list[_Run], rows: list[_Row], chart: str, out: Path) -> str:
    from glassnet.version import __version__

    groups = dict.fromkeys(r.group for r in runs)
    notes = []
    if len(groups) > 1:
        listed = "; ".join(
            f"{esc(data)} / {esc(task)}: " + ", ".join(esc(r.label) for r in runs if r.group == (data, task))
            for data, task in groups
        )
        notes.append(
            f'<p class="warn">These runs differ in data or task ({listed}). Their metrics do not compare across '
            "groups: a row is highlighted only when every run that has it used the same data and task, and a "
            "figure a run does not have reads n/a.</p>"
        )
    notes.append(
        '<p class="note"><span class="best">Highlighted</span>: the best run of each row (highest for scores and '
        "speed-ups, lowest for losses, errors, calibration error, parameters and training time). Test metrics "
        "come from <code>results/train.json</code>, audits from <code>results/explain.json</code>, "
        "<code>robustness.json</code> and <code>compress.json</code>; a stage that has not run reads n/a.</p>"
    )
    return _PAGE.format(
        title=esc(f"glassnet comparison: {', '.join(r.label for r in runs)}"),
        heading=esc(f"{len(runs)} runs compared"),
        subtitle=esc(", ".join(r.label for r in runs)),
        style=_STYLE,
        notes="".join(notes),
        table=_table(runs, rows, out),
        chart=f"<section><h2>Main metric</h2>{chart}{_CHART_NOTE}</section>" if chart else "",
        explained=_EXPLAINED if any(row.group in _AUDITS for row in rows) else "",
        version=esc(__version__),
    )


def _table(runs: list[_Run], rows: list[_Row], out: Path) -> str:
    head = "".join(f"<th>{_run_heading(r, out)}</th>" for r in runs)
    body, group = [], None
    for row in rows:
        if row.group != group:
            group = row.group
            body.append(f'<tr class="group"><th colspan="{len(runs) + 1}">{esc(group)}</th></tr>')
        cells = "".join(
            f'<td class="{"num" if row.mode or v is not None else ""}{" best" if i in row.best else ""}">{esc(c)}</td>'
            for i, (v, c) in enumerate(zip(row.values, row.cells))
        )
        body.append(f"<tr><th>{esc(row.name)}</th>{cells}</tr>")
    return (
        f'<div class="wide"><table><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _run_heading(r: _Run, out: Path) -> str:
    """The run's name, linked to its report card when it has one."""
    if r.report is None:
        return esc(r.label)
    try:
        href = Path(os.path.relpath(r.report.resolve(), out.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows): no relative path
        return esc(r.label)
    return f'<a href="{esc(href)}">{esc(r.label)}</a>'


_EXPLAINED = """<section><h2>Reading the rows</h2><ul class="note">
<li><b>Explanations</b>: faithfulness of the explanation method. Deletion: the area under the model's confidence
as the inputs it ranks most important are removed first, beside the same with a random order (lower than random
is faithful). Insertion: inputs restored most important first (higher than random is faithful). The best run is
the one that beats random by the widest ratio.</li>
<li><b>Robustness</b>: accuracy on the attacked test examples when every attack run counts (an example counts only
if every attack fails), at each budget eps of each norm; budgets of tables are fractions of each feature's range.</li>
<li><b>Compression</b>: the variant with the largest batch-1 speed-up over the fp32 original, its size ratio and its
test metric.</li></ul></section>"""

_CHART_NOTE = (
    '<p class="note">Each run\'s first headline test metric; for accuracy, the worst-case accuracy under attack at '
    "the run's largest eps, and the fastest compressed variant's metric, when those stages have run.</p>"
)

_STYLE = """
:root{color-scheme:light dark;--fg:#1d2330;--bg:#f5f6f8;--card:#fff;--line:#eceef2;--head:#f0f2f5;--muted:#5a6272;
--best:#dff1e3;--bestfg:#1e5f30;--warnbg:#fbf5e6;--warn:#b07d00;--link:#2d5b9a}
@media (prefers-color-scheme:dark){:root{--fg:#e3e6eb;--bg:#14171d;--card:#1d2129;--line:#2c313b;--head:#252a33;
--muted:#a3abb8;--best:#1f3d28;--bestfg:#a8e0b6;--warnbg:#3a3220;--warn:#e0b44a;--link:#8fb4ea}}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;color:#b9c0cc}main{max-width:1200px;margin:0 auto;padding:16px 32px}
section{background:var(--card);border-radius:8px;padding:12px 22px 18px;margin:16px 0;box-shadow:0 1px 3px #0002}
h2{font-size:1.15em;border-bottom:1px solid var(--line);padding-bottom:6px}.wide{overflow-x:auto}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.group th{background:transparent;font-size:1.05em;padding-top:14px;border-bottom:2px solid var(--line)}
.best{background:var(--best);color:var(--bestfg);font-weight:700}a{color:var(--link)}
img{max-width:100%;height:auto;background:#fff;border-radius:4px}.note{color:var(--muted);font-size:.9em}
.warn{border-left:4px solid var(--warn);padding:6px 12px;background:var(--warnbg)}
footer{color:#8a93a3;font-size:.8em;text-align:center;padding:12px}
@media print{body{background:#fff}section{box-shadow:none;break-inside:avoid}h2{break-after:avoid}}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{style}</style></head>
<body><header><h1>{heading}</h1><p>{subtitle}</p></header>
<main>
<section><h2>Runs side by side</h2>{notes}{table}</section>
{chart}
{explained}
</main><footer>written by glassnet {version}; this page is self-contained and opens offline</footer></body></html>
"""
