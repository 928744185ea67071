"""``glassnet compress RUN``: prune, quantise, distil and export a run, then print the measured table."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register the ``compress`` subcommand."""
    p = commands.add_parser(
        "compress",
        parents=[common],
        help="prune, quantise, distil and export a trained run; measure size, speed and accuracy",
        description="Make smaller variants of a trained run and measure each against the fp32 original "
        "(file size, parameters, test metric, batch-1 latency p50/p95, batch-64 throughput).",
    )
    p.add_argument("run", help="run directory")
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
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call ``glassnet.compress.compress_run`` and print its table."""
    from glassnet.compress import compress_run
    from glassnet.config import parse_overrides
    from glassnet.runs import RunDir

    result = compress_run(
        args.run,
        progress=None if args.quiet else sys.stderr,
        prune=args.prune,
        prune_method=args.prune_method,
        prune_steps=args.prune_steps,
        fine_tune_epochs=args.fine_tune,
        lr=args.lr,
        quantize=[m.strip() for item in args.quantize or [] for m in item.split(",") if m.strip()] or None,
        distill=args.distill,
        student_hparams=parse_overrides(args.student),
        distill_epochs=args.distill_epochs,
        temperature=args.temperature,
        alpha=args.alpha,
        export_format=args.export,
        stack=args.stack,
        repeats=args.repeats,
        threads=args.threads,
    )
    print_table(result.to_dict())
    run_dir = RunDir(args.run)
    print(f"written:  {run_dir.result('compress')}")
    print(f"figure:   {run_dir.figure('compress_tradeoff')}")
    return 0


def print_table(result: dict[str, Any]) -> None:
    """The variants as a text table, then the ONNX check and what was skipped."""
    from glassnet.cli.main import _print_table

    metric = result["metric"]
    rows = []
    for v in result["variants"]:
        value, change = v.get(metric), v.get(f"{metric}_change")
        shown = "n/a" if value is None else f"{value:.4f}"
        if change is not None and v["name"] != "fp32":
            shown += f" ({change:+.4f})"
        rows.append(
            [
                v["name"],
                _kib(v["size_bytes"]),
                f"{v['parameters']:,}",
                shown,
                f"{v['latency_ms_p50']:.3f}",
                f"{v['latency_ms_p95']:.3f}",
                f"{v['throughput']:,.0f}",
                f"{v['size_ratio']:.2f}x",
                f"{v['latency_speedup']:.2f}x",
                f"{v['throughput_speedup']:.2f}x",
                "SLOWER: " + ", ".join(v["slower"]) if v["slower"] else "",
            ]
        )
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
    print(f"{result['test_size']:,} test examples, {result['threads']} thread(s); speed-ups against fp32:")
    _print_table(header, rows)
    if result.get("onnx"):
        check = result["onnx"]
        verdict = "ok" if check["passed"] else "FAILED"
        print(
            f"ONNX check: max |onnx - torch| = {check['max_abs_diff']:.2e} on {check['examples']} test inputs "
            f"(tolerance {check['tolerance']:g}): {verdict}"
        )
    for skipped in result.get("skipped", []):
        print(f"skipped {skipped['variant']}: {skipped['reason']}")


def _kib(count: int) -> str:
    return f"{count / 1024:,.1f} KiB"
