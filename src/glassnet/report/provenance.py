"""The report's "Provenance" section: when and how the run was trained, with what, on which machine.

Training stores ``glassnet.provenance.capture()`` under ``provenance`` in ``results/train.json``; a
later stage that stores one in its own results file gets a line of its own. A run trained before
glassnet recorded provenance says so ("not recorded") instead of failing.
"""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, num, plain_time, section
from glassnet.report.validate import ANY, FLAG, TEXT, Each, Kind

_TEXT_OR_NULL = Kind("a string or null", lambda v: v is None or isinstance(v, str))
_COUNT = Kind("a whole number or null", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)))
# what the section reads of a ``provenance`` block; every fact but the date may be missing
_PROVENANCE = {
    "date": TEXT,
    "command?": TEXT,
    "versions?": Each(_TEXT_OR_NULL),
    "git?": {"commit": TEXT, "dirty": FLAG},
    "machine?": {
        "system?": TEXT, "architecture?": TEXT, "cpu?": TEXT, "cpus?": _COUNT, "usable_cpus?": _COUNT,
        "torch_threads?": _COUNT, "device?": TEXT, "gpu?": TEXT, "thread_choice?": {"summary?": TEXT},
    },
    "seed?": ANY,
}  # fmt: skip
_LATER_STAGES = ("evaluate", "explain", "robustness", "compress")
_NAMES = {"glassnet": "glassnet", "torch": "PyTorch", "cuda": "CUDA", "numpy": "NumPy", "python": "Python"}


@section("Provenance", order=95)
def provenance(ctx: ReportContext) -> str:
    """Training's provenance in plain words, the later stages' commands, and when the report was written."""
    from glassnet.version import __version__

    block = (ctx.result("train", {"provenance?": ANY}) or {}).get("provenance")
    written = f"{plain_time(ctx.written)} by glassnet {__version__}" if ctx.written else f"by glassnet {__version__}"
    if block is None:
        intro = (
            '<p class="note">Training provenance not recorded: this run was trained by a glassnet version that '
            "did not record the date, command, versions and machine of its training.</p>"
        )
        return intro + _facts([("report written", esc(written))])
    ctx.check("train", block, _PROVENANCE, "provenance")
    rows = _training_rows(block) + [("report written", esc(written))]
    return _facts(rows) + _later_stages(ctx)


def _training_rows(block: dict[str, Any]) -> list[tuple[str, str]]:
    """The facts of training's provenance block, each as (name, HTML)."""
    rows = [("trained", esc(plain_time(block["date"])))]
    if block.get("command"):
        rows.append(("command", f"<code>{esc(block['command'])}</code>"))
    versions = block.get("versions") or {}
    software = [f"{_NAMES.get(k, k)} {v}" for k, v in versions.items() if v]
    rows.append(("software", esc(", ".join(software)) if software else "not recorded"))
    git = block.get("git")
    if git:
        state = "with uncommitted changes" if git["dirty"] else "no uncommitted changes"
        rows.append(("source", f"git commit <code>{esc(git['commit'][:12])}</code> ({state})"))
    else:
        rows.append(("source", "an installed glassnet (not a git checkout)"))
    rows += _machine_rows(block.get("machine") or {})
    seed = block.get("seed")
    rows.append(("seed", esc(f"{seed} (drives Python, NumPy and PyTorch)") if seed is not None else "none"))
    return rows


def _machine_rows(machine: dict[str, Any]) -> list[tuple[str, str]]:
    """The machine and the device, in words."""
    if not machine:
        return [("machine", "not recorded")]
    cpus = machine.get("cpus")
    usable = machine.get("usable_cpus")
    counted = f"{num(cpus, ',')} logical CPUs" if cpus is not None else ""
    if counted and usable is not None and usable != cpus:
        counted += f" ({num(usable, ',')} usable by the process)"
    threads = machine.get("torch_threads")
    parts = [
        machine.get("cpu") or machine.get("architecture"),
        counted,
        f"PyTorch used {num(threads, ',')} thread{'' if threads == 1 else 's'}" if threads is not None else "",
        machine.get("system"),
    ]
    rows = [("machine", esc(", ".join(p for p in parts if p)) or "not recorded")]
    chosen = (machine.get("thread_choice") or {}).get("summary")
    if chosen:  # why that many threads (glassnet.threads: the CPUs available and free at the start)
        rows.append(("threads", esc(chosen)))
    device = machine.get("device")
    if machine.get("gpu"):
        rows.append(("GPU", esc(f"{machine['gpu']} ({device})" if device else machine["gpu"])))
    elif device:
        rows.append(("device", esc(f"{device} (no GPU used)" if device == "cpu" else device)))
    return rows


def _later_stages(ctx: ReportContext) -> str:
    """A table of the later stages that recorded their provenance: when and by which command they ran."""
    rows = []
    for stage in _LATER_STAGES:
        block = (ctx.result(stage, {"provenance?": ANY}) or {}).get("provenance")
        if block is not None:
            ctx.check(stage, block, _PROVENANCE, "provenance")
            command = f"<code>{esc(block['command'])}</code>" if block.get("command") else "not recorded"
            rows.append(f"<tr><td>{esc(stage)}</td><td>{esc(plain_time(block['date']))}</td><td>{command}</td></tr>")
    if not rows:
        return ""
    head = '<tr><th scope="col">stage</th><th scope="col">run</th><th scope="col">command</th></tr>'
    return f"<h3>Later stages</h3><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _facts(rows: list[tuple[str, str]]) -> str:
    """A two-column table of facts whose values are HTML already escaped."""
    body = "".join(f'<tr><th scope="row">{esc(name)}</th><td>{value}</td></tr>' for name, value in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'
