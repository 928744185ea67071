"""The server's web page: the model card and a form for the run's kind of input. One self-contained
HTML file (inline style and script, no network), like ``report.html``.

Element ids are a contract with the browser tests: ``#file``, ``#text``, ``#row``, ``#submit``,
``#prediction``, ``#probabilities``, ``#explanation``, ``#speech`` (a text-to-speech run's player),
``#error``; ``document.body.dataset.state`` is ``ready``, ``busy``, ``done`` or ``error``.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassnet.serve.app import ServeSettings
    from glassnet.serve.model import ServedModel

# what a user gives each modality: a file to drop, a text to type, or a row to paste
_FILE_TYPES = {
    "image": ("an image", "image/*"),
    "audio": ("a WAV file", ".wav,audio/wav"),
    "sequence": ("a CSV file of the series (its last rows are the window)", ".csv"),
    "tabular": ("a CSV file of rows", ".csv,.tsv,.txt"),
}


def page(served: ServedModel, settings: ServeSettings) -> str:
    """The page for ``served``; facts come from model.json and results/train.json."""
    spec = served.spec
    facts = [
        ("model", served.name),
        ("data", spec.name or "user data"),
        ("task", spec.task),
        ("input", " x ".join(map(str, spec.input_shape)) + f" ({spec.modality})"),
        ("backend", served.backend),
    ]
    if served.class_names:
        shown = ", ".join(served.class_names[:20]) + (" ..." if len(served.class_names) > 20 else "")
        facts.append((f"classes ({len(served.class_names)})", shown))
    train = _train_result(served)
    metrics = train.get("test") if isinstance(train, dict) else None
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                facts.append((f"test {key.replace('_', ' ')}", f"{value:.4f}"))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    report = '<p><a href="report">The full report card</a></p>' if served.run.report.is_file() else ""
    return _PAGE.format(
        title=html.escape(f"glassnet: {served.name} on {spec.name or 'user data'}"),
        card=rows,
        report=report,
        form=_form(spec.modality, served.control, served.synthesis),
        action="Speak" if served.synthesis else "Predict",
        config=_script_json({"modality": spec.modality, "control": served.control, "synthesis": served.synthesis}),
    )


def _script_json(value: Any) -> str:
    """JSON for a ``<script>`` element, whose text the browser never un-escapes: the characters that
    could end the element or start markup are written as JSON escapes instead."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _train_result(served: ServedModel) -> Any:
    try:
        return served.run.read_result("train") or {}
    except Exception:  # a damaged results file costs the page its figures, not the server its start
        return {}


def _form(modality: str, control: bool, synthesis: bool = False) -> str:
    if synthesis:
        return '<label for="text">A text to say (words and digits)</label><textarea id="text" rows="3"></textarea>'
    if control:
        return (
            '<label for="row">An observation: numbers separated by commas</label>'
            '<input id="row" type="text" autocomplete="off" placeholder="0.01, -0.2, 0.03, 0.1">'
        )
    parts = []
    if modality == "text":
        parts.append('<label for="text">A text</label><textarea id="text" rows="4"></textarea>')
    if modality == "tabular":
        parts.append(
            '<label for="row">One row: the values separated by commas, in the order of the training columns</label>'
            '<input id="row" type="text" autocomplete="off">'
        )
    if modality in _FILE_TYPES:
        what, accept = _FILE_TYPES[modality]
        or_ = "or " if parts else ""
        parts.append(
            f'<label for="file">{or_}drop {html.escape(what)}</label>'
            f'<input id="file" type="file" accept="{html.escape(accept)}">'
        )
    return "".join(parts)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>
:root {{ color-scheme: light dark; --fg: #1d2330; --bg: #fbfbfd; --muted: #667; --accent: #2c6fbb; --bar: #9cc3ee; }}
@media (prefers-color-scheme: dark) {{
  :root {{ --fg: #e6e8ee; --bg: #16181d; --muted: #99a; --accent: #7fb2f0; --bar: #2f5d8f; }} }}
body {{ font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); max-width: 60rem;
  margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; }} table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: .2rem .8rem .2rem 0; vertical-align: top; }}
th {{ color: var(--muted); font-weight: 500; }}
label {{ display: block; margin: .8rem 0 .3rem; }} textarea, input[type=text] {{ width: 100%; box-sizing: border-box;
  font: inherit; padding: .4rem; }}
button {{ margin-top: .8rem; font: inherit; padding: .4rem 1.2rem; background: var(--accent); color: white;
  border: 0; border-radius: 4px; cursor: pointer; }} button:disabled {{ opacity: .5; }}
#prediction {{ font-size: 1.6rem; font-weight: 600; }} #error {{ color: #c0392b; white-space: pre-wrap; }}
.bar {{ background: var(--bar); height: .8rem; display: inline-block; vertical-align: middle; }}
#explanation {{ max-width: 100%; margin-top: 1rem; }} .cols {{ display: flex; gap: 2rem; flex-wrap: wrap; }}
</style></head>
<body data-state="loading">
<h1>{title}</h1>
<div class="cols"><section><h2>Model card</h2><table>{card}</table>{report}</section>
<section style="flex:1;min-width:18rem"><h2>Try it</h2>
<form id="form">{form}<button id="submit" type="submit">{action}</button></form>
<div id="error" role="alert"></div>
<div id="result" hidden><h2>Prediction</h2><p><span id="prediction"></span> <span id="confidence"></span></p>
<table id="probabilities"></table><img id="explanation" alt="what the prediction rests on">
<audio id="speech" controls hidden></audio></div>
</section></div>
<script id="config" type="application/json">{config}</script>
<script>
"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
function setState(state) {{ document.body.dataset.state = state; $("submit").disabled = state === "busy"; }}
function request() {{
  const file = $("file"), text = $("text"), row = $("row");
  if (file && file.files.length) {{
    const data = new FormData(); data.append("file", file.files[0]); return {{ body: data }};
  }}
  if (text && text.value.trim()) return {{ body: JSON.stringify({{ texts: [text.value] }}), type: "application/json" }};
  if (row && row.value.trim()) {{
    if (config.control) {{
      const numbers = row.value.split(",").map(Number);
      return {{ body: JSON.stringify({{ observations: [numbers] }}), type: "application/json" }};
    }}
    return {{ body: row.value.trim() + "\\n", type: "text/csv" }};
  }}
  return null;
}}
async function speak(text) {{
  const answer = await fetch("synthesize", {{ method: "POST", body: JSON.stringify({{ text }}),
    headers: {{ "Content-Type": "application/json" }} }});
  if (!answer.ok) {{
    const data = await answer.json().catch(() => ({{ error: "the server answered " + answer.status }}));
    throw new Error(data.error || ("the server answered " + answer.status));
  }}
  const audio = $("speech");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(await answer.blob()); audio.hidden = false; $("result").hidden = false;
}}
async function call(route, made) {{
  const headers = made.type ? {{ "Content-Type": made.type }} : {{}};
  const answer = await fetch(route, {{ method: "POST", body: made.body, headers }});
  const data = await answer.json().catch(() => ({{ error: "the server answered " + answer.status }}));
  if (!answer.ok) throw new Error(data.error || ("the server answered " + answer.status));
  return data;
}}
function show(record) {{
  const value = record.prediction ?? record.action;
  const shown = Array.isArray(value) ? value.join(", ") : String(value);
  $("prediction").textContent = shown;
  const sure = record.confidence;
  $("confidence").textContent = sure !== undefined ? "(" + (100 * sure).toFixed(1) + "%)" : "";
  const table = $("probabilities"); table.replaceChildren();
  const pairs = Object.entries(record.probabilities || {{}}).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of pairs) {{
    const tr = table.insertRow(), label = tr.insertCell(), bar = tr.insertCell(), value = tr.insertCell();
    label.textContent = name; value.textContent = (100 * p).toFixed(1) + "%";
    const span = document.createElement("span"); span.className = "bar"; span.style.width = (p * 12).toFixed(2) + "rem";
    bar.appendChild(span);
  }}
  $("result").hidden = false;
}}
$("form").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const made = request();
  if (!made) {{ $("error").textContent = "Give an input first."; setState("error"); return; }}
  $("error").textContent = ""; $("explanation").removeAttribute("src"); setState("busy");
  try {{
    if (config.synthesis) {{ await speak($("text").value); setState("done"); return; }}
    const answer = await call(config.control ? "act" : "predict", made);
    show((answer.predictions || answer.actions)[0]);
    if (!config.control) {{
      const explained = await call("explain", request());
      if (explained.overlay_png) $("explanation").src = "data:image/png;base64," + explained.overlay_png;
    }}
    setState("done");
  }} catch (error) {{
    $("error").textContent = error.message; $("result").hidden = true; setState("error");
  }}
}});
setState("ready");
</script></body></html>
"""
