"""The ``compress`` stage: pruned, quantised, distilled and exported variants, each measured against fp32."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from glassnet.config import parse_overrides
from glassnet.progress import cli_progress
from glassnet.stages import Stage, print_table, register_stage
from glassnet.stages._written import print_written, run_files

FIGURE = "compress_tradeoff"


def compress_run(run: Any, **options: Any) -> Any:
    """``glassnet.compress.compress_run``, imported when the stage runs (the command line starts without torch)."""
    from glassnet.compress.run import compress_run

    return compress_run(run, **options)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", type=float, metavar="F", help="fraction to prune, 0 < F < 1 (e.g. 0.5)")
    p.add_argument(
        "--prune-method",
        default="structured",
        choices=["structured", "global", "layer"],
        help="structured: remove channels (Torch-Pruning) or, for rnn/lstm/gru, hidden units and embedding "
        "dimensions (layers shrink); global/layer: zero the smallest weights",
    )
    p.add_argument("--prune-steps", type=int, default=1, help="iterative pruning: rounds of prune + fine-tune")
    p.add_argument("--fine-tune", type=int, default=2, metavar="EPOCHS", help="fine-tuning epochs per round")
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (default 1e-3)")
    p.add_argument(
        "--quantize",
        action="append",
        metavar="METHOD",
        help="int8 (= torch-dynamic, torch-static and ort-static), or one of torch-dynamic, torch-static, "
        "ort-static, ort-dynamic; repeat it or separate with commas for several",
    )
    p.add_argument("--distill", metavar="MODEL", help="train this registered model as a student of the run")
    p.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a student hyper-parameter, e.g. --student channels=[8,16] --student hidden=32",
    )
    p.add_argument("--distill-epochs", type=int, default=10, help="student training epochs (default 10)")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (default 4)")
    p.add_argument("--alpha", type=float, default=0.7, help="weight of the soft-target loss (default 0.7)")
    p.add_argument("--export", choices=["onnx"], help="export to ONNX (single file, dynamic batch) and verify it")
    p.add_argument(
        "--stack",
        action="store_true",
        help="also quantise the pruned model with the ONNX Runtime methods asked for (needs --prune and --quantize)",
    )
    p.add_argument("--repeats", type=int, default=100, help="batch-1 latency samples per variant (default 100)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for the whole command (default: torch's setting; 1 gives steadier timings on a busy machine)",
    )
    p.add_argument("--episodes", type=int, help="an agent's run: seeded test episodes per variant (default 20)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "progress": cli_progress(args),
        "prune": args.prune,
        "prune_method": args.prune_method,
        "prune_steps": args.prune_steps,
        "fine_tune_epochs": args.fine_tune,
        "lr": args.lr,
        "quantize": [m.strip() for item in args.quantize or [] for m in item.split(",") if m.strip()] or None,
        "distill": args.distill,
        "student_hparams": parse_overrides(args.student),
        "distill_epochs": args.distill_epochs,
        "temperature": args.temperature,
        "alpha": args.alpha,
        "export_format": args.export,
        "stack": args.stack,
        "repeats": args.repeats,
        "threads": args.threads,
        "episodes": args.episodes,
    }


def show(result: Any, args: argparse.Namespace) -> None:
    if isinstance(result, dict) and result.get("kind") == "policy":
        _show_policy(result, args)
        return
    if isinstance(result, dict) and result.get("kind") == "generator":
        _show_generator(result, args)
        return
    record = result.to_dict()
    print_variants(record)
    print_written(run_files(args.run, ["results/compress.json", *written_variants(record)], [FIGURE]))


def _show_policy(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{result['episodes']} test episodes per variant (seeds {result['seeds'][0]}-{result['seeds'][1]}):")
    from glassnet.compress.policy import VARIANT_COLUMNS, variant_rows

    print_table(VARIANT_COLUMNS, variant_rows(result))
    for line in result["notes"] + [f"warning: {w}" for w in result["warnings"]]:
        print(line)
    print_written(
        run_files(args.run, ["results/compress.json", *written_variants(result)], result.get("figures") or [])
    )


def _show_generator(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{result['samples']:,} images per variant from the same noise; FID against the same test images:")
    from glassnet.compress.generator import VARIANT_COLUMNS, variant_rows

    print_table(VARIANT_COLUMNS, variant_rows(result))
    for line in result["notes"] + [f"warning: {w}" for w in result["warnings"]]:
        print(line)
    print_written(run_files(args.run, ["results/compress.json", *written_variants(result)], []))


def headline(result: dict[str, Any]) -> str | None:
    if result.get("kind") == "generator":
        best = max(result["variants"], key=lambda v: v["speedup"] if v.get("keeps_quality", True) else 0)
        return (
            f"fastest generator keeping its FID {best['name']}: {best['ms_per_64_images']:.2f} ms per 64 images "
            f"({best['speedup']:.2f}x), FID {best['fid']:.2f} -> results/compress.json"
        )
    if result.get("kind") == "policy":
        best = max(result["variants"], key=lambda v: v["speedup"])
        return (
            f"fastest policy {best['name']}: {best['latency_ms_p50']:.4f} ms per action ({best['speedup']:.2f}x), "
            f"return {best['return_mean']:.2f} -> results/compress.json"
        )
    if not result.get("variants"):
        return None
    best = max(result["variants"], key=lambda v: v.get("latency_speedup") or 0)
    metric = result.get("metric", "accuracy")
    value = best.get(metric)
    shown = f", {metric} {value:.4f}" if isinstance(value, (int, float)) else ""
    return (
        f"fastest variant {best['name']}: {best['latency_speedup']:.2f}x batch-1 speed, "
        f"{best['size_ratio']:.2f}x smaller{shown} -> results/compress.json"
    )


def demo(run: Any) -> tuple[dict[str, Any], str]:
    if all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime", "onnxscript")):
        return (
            {"quantize": ["int8"], "export_format": "onnx"},
            "int8 quantisation (PyTorch and ONNX Runtime) and an ONNX export",
        )
    return (
        {"quantize": ["torch-dynamic", "torch-static"], "export_format": None},
        "PyTorch int8 only (`pip install 'glassnet[compress]'` adds ONNX and ONNX Runtime)",
    )


def written_variants(result: dict[str, Any]) -> list[str]:
    """The files the variants were written to, relative to the run (the fp32 original is the run's own model)."""
    files = [v.get("file") for v in result.get("variants", []) if v.get("name") != "fp32"]
    onnx = result.get("onnx") or {}
    return [f for f in [*files, onnx.get("file")] if f]


def print_variants(result: dict[str, Any]) -> None:
    """The variants as a text table, then the ONNX check and what was skipped."""
    from glassnet.compress.core import variant_cells

    metric = result["metric"]
    rows = [
        [*variant_cells(v, metric), "SLOWER: " + ", ".join(v["slower"]) if v["slower"] else ""]
        for v in result["variants"]
    ]
    header = [
        "variant",
        "size",
        "params",
        metric,
        "p50 ms",
        "p95 ms",
        "ex/s b64",
        "smaller",
        "b1 speed",
        "b64 speed",
        "",
    ]
    if not any(row[-1] for row in rows):  # no variant is slower: no column for it
        header, rows = header[:-1], [row[:-1] for row in rows]
    print(f"{result['test_size']:,} test examples, {result['threads']} thread(s); speed-ups against fp32:")
    print_table(header, rows)
    if result.get("onnx"):
        check = result["onnx"]
        verdict = "ok" if check["passed"] else "FAILED"
        print(
            f"ONNX check: max |onnx - torch| = {check['max_abs_diff']:.2e} on {check['examples']} test inputs "
            f"(tolerance {check['tolerance']:g}): {verdict}"
        )
    for skipped in result.get("skipped", []):
        print(f"skipped {skipped['variant']}: {skipped['reason']}")


STAGE = register_stage(
    Stage(
        name="compress",
        run=compress_run,
        help="prune, quantise, distil and export a trained run; measure size, speed and accuracy "
        "(an agent: int8/ONNX policies, return and latency per action)",
        description="Make smaller variants of a trained run and measure each against the fp32 original "
        "(file size, parameters, test metric, batch-1 latency p50/p95, batch-64 throughput).",
        arguments=arguments,
        options=options,
        show=show,
        headline=headline,
        demo=demo,
        order=80,
        takes_progress=True,
    )
)
