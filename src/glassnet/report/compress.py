"""Report section of the compress stage: every variant against the fp32 original, and the
size-accuracy figure."""

from __future__ import annotations

from typing import Any

from glassnet.compress.core import variant_cells
from glassnet.report.card import ReportContext, esc, num, section, table
from glassnet.report.sections import subset_note
from glassnet.report.validate import ANY, NUMBER, TEXT

# what the section reads of results/compress.json: checked before it is read
_COMPRESS = {
    "metric": TEXT,
    "test_size": NUMBER,
    "threads": ANY,
    "variants": [{"name": ANY, "method": ANY, "slower?": [TEXT]}],
    "onnx?": {
        "passed": ANY, "file": ANY, "exporter": ANY, "max_abs_diff": NUMBER, "examples": NUMBER, "tolerance": NUMBER,
    },
    "skipped?": [{"variant": ANY, "reason": ANY}],
}  # fmt: skip


@section("Compression", order=70)
def compression(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("compress")
    if not result or not result.get("variants"):
        return None
    ctx.check("compress", result, _COMPRESS)
    metric = result["metric"]
    rows = [_row(v, metric) for v in result["variants"]]
    header = [
        "variant",
        "file size",
        "parameters",
        f"test {metric}",
        "latency p50 (ms)",
        "latency p95 (ms)",
        "throughput, batches of 64 (examples/s)",
        "smaller",
        "batch-1 speed-up",
        "batch-64 speed-up",
        "verdict",
    ]
    out = table(header, rows)
    out += (
        f'<p class="note">All variants measured in one process on the same examples ({_examples(ctx, result)}), with '
        f"{esc(_threads(result['threads']))}: latency is one example per call, throughput batches of 64. Speed-ups "
        "and size ratios are against the fp32 original; a variant slower than the original is marked so, not "
        "hidden.</p>"
    )
    onnx = result.get("onnx")
    if onnx:
        verdict = "within" if onnx["passed"] else "<b>outside</b>"
        out += (
            f"<p>ONNX export ({esc(onnx['file'])}, {esc(onnx['exporter'])} exporter): largest difference to "
            f"PyTorch {num(onnx['max_abs_diff'], '.2e')} on {num(onnx['examples'], ',')} test inputs, {verdict} the "
            f"tolerance {num(onnx['tolerance'], 'g')}.</p>"
        )
    out += ctx.figure("compress_tradeoff", "file size against test metric per variant")
    methods = "".join(f"<li><b>{esc(v['name'])}</b>: {esc(v['method'])}</li>" for v in result["variants"])
    out += f"<details><summary>How each variant was made</summary><ul>{methods}</ul></details>"
    skipped = result.get("skipped") or []
    if skipped:
        items = "".join(f"<li><b>{esc(s['variant'])}</b>: {esc(s['reason'])}</li>" for s in skipped)
        out += f"<p>Not applicable to this model:</p><ul>{items}</ul>"
    return out


def _examples(ctx: ReportContext, result: dict[str, Any]) -> str:
    """The test examples the variants were scored on: all of the test split, or how many of them."""
    train = ctx.result("train", {"data?": {"splits?": {"test?": {"size?": NUMBER}}}}) or {}
    size = (((train.get("data") or {}).get("splits") or {}).get("test") or {}).get("size")
    return subset_note(result["test_size"], "test", size)


def _threads(threads: Any) -> str:
    return f"{threads} CPU thread" + ("" if threads == 1 else "s") if isinstance(threads, int) else f"{threads} threads"


def _row(v: dict[str, Any], metric: str) -> list[Any]:
    verdict = (
        "baseline" if v["name"] == "fp32" else ("slower: " + ", ".join(v["slower"]) if v.get("slower") else "faster")
    )
    return [*variant_cells(v, metric), verdict]
