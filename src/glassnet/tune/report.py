"""The report of a study: ``study.json`` (the summary) and ``study.html`` (one self-contained page: the best
trial, hyper-parameter importance, parallel coordinates, the history and the table of trials)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from glassnet.runs import write_json, write_text

STUDY_JSON, STUDY_HTML = "study.json", "study.html"
DPI = 144  # the page's figures at 1.5x, crisp on high-density screens


def write_study(study: Any, out: Path, metric: str, direction: str, storage: str) -> dict[str, Any]:
    """Write ``out/study.json`` and ``out/study.html`` for ``study``; return the summary."""
    summary = summarize(study, metric, direction, storage)
    summary["files"] = {"json": str(out / STUDY_JSON), "html": str(out / STUDY_HTML)}
    write_json(out / STUDY_JSON, summary)
    write_text(out / STUDY_HTML, study_page(summary, _figures(study, summary), out))
    return summary


def summarize(study: Any, metric: str, direction: str, storage: str) -> dict[str, Any]:
    """What ``study.json`` holds: the study, its search, counts, the best trial, importance and every trial."""
    from glassnet.train.loggers import redact_uri

    trials = [_trial_record(t) for t in study.get_trials(deepcopy=False)]
    counts = {state: sum(t["state"] == state for t in trials) for state in ("complete", "pruned", "fail", "running")}
    described = study.user_attrs.get("glassnet", {})
    complete = [t for t in trials if t["state"] == "complete" and _finite(t["value"])]
    best = None
    if complete:
        pick = min if direction == "minimize" else max
        top = pick(complete, key=lambda t: t["value"])
        best = {key: top[key] for key in ("number", "value", "params", "run_dir")}
    importance, note = _importance(study, len(complete))
    return {
        "study": study.study_name,
        "storage": redact_uri(storage),
        "data": described.get("data"),
        "model": described.get("model"),
        "metric": metric,
        "direction": direction,
        "search": described.get("search", {}),
        "fixed": described.get("fixed", {}),
        "counts": {**counts, "total": len(trials)},
        "best": best,
        "importance": importance,
        "importance_note": note,
        "trials": trials,
    }


def _trial_record(trial: Any) -> dict[str, Any]:
    state = trial.state.name.lower()
    value = trial.value
    if state == "pruned" and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]  # where it stopped
    seconds = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 2)
    return {
        "number": trial.number,
        "state": state,
        "value": value,
        "params": dict(trial.params),
        "epochs": trial.user_attrs.get("epochs"),
        "pruned_at_epoch": trial.user_attrs.get("pruned_at_epoch"),
        "duration_s": seconds,
        "run_dir": trial.user_attrs.get("run_dir"),
        "host": trial.user_attrs.get("host"),
        "pid": trial.user_attrs.get("pid"),
        "error": trial.user_attrs.get("error"),
        "intermediate": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
    }


def _importance(study: Any, complete: int) -> tuple[dict[str, float], str | None]:
    """Optuna's hyper-parameter importance (its default evaluator), or why there is none."""
    if complete < 2:
        return {}, f"importance needs at least 2 complete trials ({complete} so far)"
    import optuna

    try:
        scores = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. every trial drew the same values
        return {}, f"importance could not be computed: {str(exc).splitlines()[0] if str(exc) else exc}"
    if not scores:
        return {}, "importance needs searched parameters whose values differ between trials"
    return {k: round(float(v), 4) for k, v in scores.items()}, None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# --- figures ---------------------------------------------------------------------------------------


def _figures(study: Any, summary: dict[str, Any]) -> dict[str, str]:
    """The page's figures as base64 PNG, by name; a figure without data is left out."""
    trials = summary["trials"]
    drawn = {}
    for name, draw in (
        ("history", _history),
        ("intermediate", _intermediate),
        ("parallel", _parallel),
    ):
        figure = draw(study, trials, summary)
        if figure is not None:
            drawn[name] = _png(figure)
    return drawn


def _png(figure: Any) -> str:
    from glassnet.figures import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _history(study: Any, trials: list[dict[str, Any]], summary: dict[str, Any]) -> Any:
    """Each trial's value against its number, pruned trials where they stopped, and the best so far."""
    from glassnet.figures import pyplot

    shown = [t for t in trials if t["state"] in ("complete", "pruned") and _finite(t["value"])]
    if not shown:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for state, style in (("complete", {"marker": "o", "color": "C0"}), ("pruned", {"marker": "x", "color": "0.55"})):
        points = [t for t in shown if t["state"] == state]
        if points:
            ax.scatter([t["number"] for t in points], [t["value"] for t in points], label=state, zorder=3, **style)
    pick = min if summary["direction"] == "minimize" else max
    best, xs, ys = None, [], []
    for t in sorted((t for t in shown if t["state"] == "complete"), key=lambda t: t["number"]):
        best = t["value"] if best is None else pick(best, t["value"])
        xs.append(t["number"])
        ys.append(best)
    if xs:
        last = max(t["number"] for t in shown)
        if last > xs[-1]:  # the best so far holds through the later (pruned) trials
            xs, ys = [*xs, last], [*ys, ys[-1]]
        ax.step(xs, ys, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(summary["metric"])
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _intermediate(study: Any, trials: list[dict[str, Any]], summary: dict[str, Any]) -> Any:
    """The metric after each epoch of each trial: pruned trials end where the pruner stopped them."""
    from glassnet.figures import pyplot

    curves = [t for t in trials if t["intermediate"]]
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for t in curves:
        epochs = [int(k) for k in t["intermediate"]]
        values = list(t["intermediate"].values())
        pruned = t["state"] == "pruned"
        ax.plot(epochs, values, color="0.6" if pruned else "C0", linestyle="--" if pruned else "-", alpha=0.8)
        if pruned:
            ax.plot(epochs[-1:], values[-1:], marker="x", color="0.4")
    ax.set_xlabel("epoch")
    ax.set_ylabel(summary["metric"])
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    return fig


def _parallel(study: Any, trials: list[dict[str, Any]], summary: dict[str, Any]) -> Any:
    """Parallel coordinates of the complete trials: one axis per searched key and one for the metric;
    each trial a line coloured by its value (the best drawn thick)."""
    from glassnet.figures import pyplot

    complete = [t for t in trials if t["state"] == "complete" and _finite(t["value"])]
    keys = [k for k in summary["search"] if any(k in t["params"] for t in complete)]
    if not complete or not keys:
        return None
    distributions = {}
    for trial in study.get_trials(deepcopy=False):
        distributions.update(trial.distributions)
    axes = [_axis(key, [t["params"].get(key) for t in complete], distributions.get(key)) for key in keys]
    axes.append(_axis(summary["metric"], [t["value"] for t in complete], None))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.9 * len(axes)), 3.6))
    values = [t["value"] for t in complete]
    low, high = min(values), max(values)
    colours = plt.get_cmap("viridis_r" if summary["direction"] == "minimize" else "viridis")
    best = summary["best"]["number"] if summary["best"] else None
    for t in complete:
        ys = [
            axis["place"](t["params"].get(axis["key"]) if axis["key"] in t["params"] else t["value"]) for axis in axes
        ]
        shade = colours((t["value"] - low) / (high - low) if high > low else 1.0)
        ax.plot(range(len(axes)), ys, color=shade, linewidth=3 if t["number"] == best else 1.2, alpha=0.9)
    for i, axis in enumerate(axes):
        ax.axvline(i, color="0.3", linewidth=0.8)
        for place, label in axis["ticks"]:
            ax.text(i + 0.03, place, label, fontsize=7, va="center")
    ax.set_xticks(range(len(axes)), [a["key"] for a in axes], fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.06, 1.06)
    ax.set_xlim(-0.1, len(axes) - 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return fig


def _axis(key: str, values: list[Any], distribution: Any) -> dict[str, Any]:
    """Where each value sits on a [0, 1] axis: choices evenly spaced, numbers linearly or logarithmically."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        spots = {repr(c): i / max(len(choices) - 1, 1) for i, c in enumerate(choices)}
        return {
            "key": key,
            "place": lambda v: spots.get(repr(v), 0.5),
            "ticks": [(spots[repr(c)], str(c)) for c in choices],
        }
    log = bool(getattr(distribution, "log", False))
    low = getattr(distribution, "low", min(values))
    high = getattr(distribution, "high", max(values))

    def scale(v: float) -> float:
        return math.log10(v) if log else float(v)

    span = scale(high) - scale(low)

    def place(v: Any) -> float:
        return 0.5 if not span else (scale(v) - scale(low)) / span

    return {"key": key, "place": place, "ticks": [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")]}


# --- the page --------------------------------------------------------------------------------------


def study_page(summary: dict[str, Any], figures: dict[str, str], out: Path) -> str:
    """``study.html``: self-contained (inline PNG and CSS, no script, no network)."""
    e = html.escape
    counts = summary["counts"]
    parts = [
        f"<h1>Study {e(summary['study'])}</h1>",
        f"<p class=note>{e(str(summary['model']))} on {e(str(summary['data']))}: {counts['total']} trials "
        f"({counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed, "
        f"{counts['running']} running); {e(summary['direction'])} {e(summary['metric'])}. "
        f"Storage: <code>{e(summary['storage'])}</code></p>",
        _best_block(summary, out),
        _search_block(summary),
        _importance_block(summary),
    ]
    captions = {
        "parallel": "Parallel coordinates of the complete trials (colour: the metric; thick: the best)",
        "history": "The metric of each trial, and the best so far (pruned trials where they stopped)",
        "intermediate": "The metric after each epoch (dashed: pruned trials)",
    }
    for name, caption in captions.items():
        if name in figures:
            parts.append(
                f'<figure><img src="data:image/png;base64,{figures[name]}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    parts.append(_trials_table(summary, out))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>Study {e(summary['study'])}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def _best_block(summary: dict[str, Any], out: Path) -> str:
    e = html.escape
    best = summary["best"]
    if best is None:
        return "<h2>Best trial</h2><p>No trial has completed yet.</p>"
    params = "".join(f"<tr><th>{e(k)}</th><td>{e(_shown(v))}</td></tr>" for k, v in best["params"].items())
    return (
        f"<h2>Best trial: {best['number']}</h2><p>{e(summary['metric'])} <b>{best['value']:.6g}</b> "
        f"&mdash; run {_run_link(best['run_dir'], out)}</p><table class=kv>{params}</table>"
    )


def _search_block(summary: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in summary["search"].items())
    fixed = "".join(f"<tr><th>{e(k)}</th><td>{e(_shown(v))}</td></tr>" for k, v in summary["fixed"].items())
    block = f"<h2>Search space</h2><table class=kv>{rows or '<tr><td>(nothing searched)</td></tr>'}</table>"
    if fixed:
        block += f"<h3>Fixed for every trial</h3><table class=kv>{fixed}</table>"
    return block


def _importance_block(summary: dict[str, Any]) -> str:
    e = html.escape
    if not summary["importance"]:
        return f"<h2>Hyper-parameter importance</h2><p class=note>{e(summary['importance_note'] or '')}</p>"
    rows = "".join(
        f'<tr><th>{e(k)}</th><td>{v:.3f}</td><td class=bar><span style="width:{max(v, 0) * 100:.1f}%"></span></td></tr>'
        for k, v in sorted(summary["importance"].items(), key=lambda kv: -kv[1])
    )
    return (
        "<h2>Hyper-parameter importance</h2><p class=note>Share of the metric's variation over the complete "
        "trials that each searched key explains (Optuna's importance evaluator); it sharpens as trials "
        f"accumulate.</p><table class=kv>{rows}</table>"
    )


def _trials_table(summary: dict[str, Any], out: Path) -> str:
    e = html.escape
    keys = list(summary["search"])
    head = ["trial", "state", summary["metric"], *keys, "epochs", "seconds", "run"]
    rows = []
    best = summary["best"]["number"] if summary["best"] else None
    for t in summary["trials"]:
        state = t["state"] + (f" at epoch {t['pruned_at_epoch']}" if t["pruned_at_epoch"] else "")
        if t["error"]:
            state += f": {t['error']}"
        cells = [
            str(t["number"]),
            e(state),
            e(f"{t['value']:.6g}" if _finite(t["value"]) else "-"),
            *(e(_shown(t["params"][k])) if k in t["params"] else "-" for k in keys),
            e(str(t["epochs"] if t["epochs"] is not None else "-")),
            e(f"{t['duration_s']:.1f}" if t["duration_s"] is not None else "-"),
            _run_link(t["run_dir"], out),
        ]
        mark = " class=best" if t["number"] == best else ""
        rows.append(f"<tr{mark}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<h2>Trials</h2><table class=trials><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _run_link(run_dir: str | None, out: Path) -> str:
    """The run directory, as a relative link when it lies in the study's directory."""
    if not run_dir:
        return "-"
    path = Path(run_dir)
    try:
        relative = path.relative_to(out.resolve())
    except ValueError:
        return f"<code>{html.escape(run_dir)}</code>"
    return f'<a href="{html.escape(relative.as_posix())}/">{html.escape(relative.as_posix())}</a>'


def _shown(value: Any) -> str:
    """A value as in an override: ``0.001``, ``64``, ``true``, ``relu``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


_STYLE = """
:root{--fg:#1d2125;--bg:#fff;--muted:#5f6b76;--line:#d9dee3;--accent:#2f6fb3;--best:#fff4d6}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ea;--bg:#15181b;--muted:#9aa5b0;--line:#343a40;
--accent:#7fb0e6;--best:#3a3320}img{background:#fff;border-radius:4px}}
body{font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg);max-width:1000px;margin:2em auto;
padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid var(--line)}
.note{color:var(--muted)}code{font-size:.92em}a{color:var(--accent)}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.25em .7em;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top}table.trials{font-size:.9em;width:100%}tr.best td{background:var(--best)}
td.bar{width:240px}td.bar span{display:block;height:.8em;background:var(--accent);border-radius:2px}
figure{margin:1.2em 0}img{max-width:100%}figcaption{color:var(--muted);font-size:.9em}
@media print{h2{break-after:avoid}figure,tr{break-inside:avoid}}
"""
