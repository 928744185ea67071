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
    if not result or not result.get("variants") or result.get("kind") == "generator":
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


_GENERATOR = {"samples": NUMBER, "latency": TEXT, "fid_tolerance": NUMBER, "variants": [{"name": ANY}],
              "warnings?": [ANY], "notes?": [ANY]}  # fmt: skip


@section("Compressed generator", order=71)
def generator_compression(ctx: ReportContext) -> str | None:
    """A GAN's int8 and ONNX generators against the fp32 one, by the FID of the images they draw."""
    result = ctx.result("compress")
    if not result or result.get("kind") != "generator":
        return None
    ctx.check("compress", result, _GENERATOR)
    from glassnet.compress.generator import VARIANT_COLUMNS, variant_rows

    warnings = "".join(f'<p class="note warn">&#9888; {esc(w)}</p>' for w in result.get("warnings") or [])
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in result.get("notes") or [])
    return (
        f"<p>Each variant draws {num(result['samples'], ',')} images from the same noise and classes; FID, precision "
        "and recall are measured as in the generated-images section (same test images, same feature classifier). A "
        f"variant keeps the quality when its FID is at most {num(result['fid_tolerance'], '.0%')} above the fp32 "
        "generator's; <em>same class</em> is the share of images the classifier assigns the class of the fp32 image "
        f"drawn from the same noise. Time: {esc(result['latency'])}.</p>"
        + warnings
        + table(VARIANT_COLUMNS, variant_rows(result))
        + notes
    )
