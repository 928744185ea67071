"""The ``robustness`` stage (command ``glassnet robustness``, formerly ``attack``): accuracy under attack."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.errors import ConfigError
from glassnet.explain.names import DENSE_TASKS
from glassnet.progress import cli_progress
from glassnet.robustness.units import EPS_HELP
from glassnet.stages import Stage, print_table, register_stage
from glassnet.stages._written import print_written, run_files

FIGURES = ("robustness_curves", "adversarial_examples")


def robustness_run(run: Any, **options: Any) -> dict[str, Any]:
    """``glassnet.robustness.robustness_run``, imported when the stage runs (the command line starts without
    torch)."""
    from glassnet.robustness.stage import robustness_run

    return robustness_run(run, **options)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--attack",
        action="append",
        metavar="A",
        help="attack drawn as a curve; repeat or comma-separate (default: fgsm,pgd). "
        "Choices: apgd-ce, apgd-dlr, cw, deepfool, fgsm, pgd, square",
    )
    p.add_argument("--eps", nargs="+", type=float, metavar="E", help=EPS_HELP)
    p.add_argument("--norm", default="linf", choices=["linf", "l2"], help="perturbation norm (default: linf)")
    p.add_argument("--limit", type=int, default=1000, help="attack N sampled examples (default: 1000)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--no-worst-case", action="store_true", help="skip the AutoAttack-style worst case")
    p.add_argument("--apgd-steps", type=int, default=100, help="iterations of each APGD run (default: 100)")
    p.add_argument("--square-queries", type=int, default=1000, help="query budget of the Square attack (default: 1000)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="bf16: attacks under bf16 autocast, faster but slightly weaker; accuracy judged in fp32 (default: fp32)",
    )
    p.add_argument("--episodes", type=int, default=10, help="an agent's run: test episodes per point (default: 10)")
    p.add_argument("--seed", type=int, default=0)


def options(args: argparse.Namespace) -> dict[str, Any]:
    attacks = [a.strip() for value in (args.attack or ["fgsm,pgd"]) for a in value.split(",") if a.strip()]
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1. Received: --limit {args.limit}")
    for flag, value in (("--apgd-steps", args.apgd_steps), ("--square-queries", args.square_queries)):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1. Received: {flag} {value}")
    return {
        "attack": attacks,
        "eps": args.eps,
        "norm": args.norm,
        "worst_case": not args.no_worst_case,
        "limit": args.limit,
        "split": args.split,
        "seed": args.seed,
        "apgd_steps": args.apgd_steps,
        "square_queries": args.square_queries,
        "precision": args.precision,
        "episodes": args.episodes,
        "progress": cli_progress(args),
    }


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    if result.get("kind") == "policy":
        _show_policy(result, args)
        return
    if result.get("kind") == "dense":
        _show_dense(result, args)
        return
    space = " (embedding space)" if result["space"] == "embedding" else ""
    space += ", attacks in bf16" if result.get("precision") == "bf16" else ""
    print(f"{result['examples']:,} {result['split']} examples, {result['norm']}{space}; clean accuracy "
          f"{result['clean_accuracy']:.4f}")  # fmt: skip
    rows = [[name, *curve] for name, curve in result["curves"].items()]
    if result.get("worst_case"):
        rows.append(["worst case", *result["worst_case"]["accuracy"]])
    header = ["attack", *(f"eps={e:g}" for e in result["eps"])]
    widths = [max(len(header[0]), *(len(r[0]) for r in rows)), *(max(len(h), 6) for h in header[1:])]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join([row[0].ljust(widths[0]), *(f"{v:.4f}".rjust(w) for v, w in zip(row[1:], widths[1:]))]))
    for reason in ((result.get("worst_case") or {}).get("omitted") or {}).values():
        print(f"note:     {reason}")
    for warning in result["warnings"]:
        print(f"warning:  {warning}")
    if not result["warnings"] and result["checks"]:
        print(f"checks:   {len(result['checks'])} gradient-masking checks passed")
    print_written(run_files(args.run, ["results/robustness.json"], FIGURES))


def _show_dense(result: dict[str, Any], args: argparse.Namespace) -> None:
    metric = result["metric"]
    shown = result.get("eps_shown") or {"factor": 255, "suffix": "/255"}
    what = "images" if shown["factor"] == 255 else "examples"
    print(f"{result['examples']:,} {result['split']} {what}, linf eps in {result['units']}; clean {metric} "
          f"{result['clean'][metric]:.4f}")  # fmt: skip
    header = ["attack", *(f"eps={e * shown['factor']:.3g}{shown['suffix']}" for e in result["eps"])]
    print_table(header, [[name, *(f"{p[metric]:.4f}" for p in points)] for name, points in result["curves"].items()])
    for warning in result["warnings"]:
        print(f"warning:  {warning}")
    print_written(run_files(args.run, ["results/robustness.json"], result.get("figures") or []))


def _show_policy(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{result['episodes']} test episodes per point, linf eps in {result['units']}")
    print(f"clean return {result['clean_return']:.2f}; a random policy's {result['random_policy_return']:.2f}")
    header = ["attack", *(f"eps={e:.3g}" for e in result["eps"])]
    rows = [[name, *(f"{p['return_mean']:.2f}" for p in points)] for name, points in result["curves"].items()]
    print_table(header, rows)
    changed = "actions changed" if result.get("discrete") else "mean action shift"
    rows = [[name, *(f"{p.get('changed', 0.0):.3f}" for p in points)] for name, points in result["curves"].items()]
    print_table([changed, *header[1:]], rows)
    for warning in result["warnings"]:
        print(f"warning:  {warning}")
    print_written(run_files(args.run, ["results/robustness.json"], result.get("figures") or []))


def headline(result: dict[str, Any]) -> str | None:
    if result.get("kind") == "policy":
        worst = min(
            result["curves"].get("pgd") or next(iter(result["curves"].values())), key=lambda p: p["return_mean"]
        )
        clean = result["clean_return"]
        return f"return {worst['return_mean']:.2f} under attack at eps {worst['eps']:.3g} (clean {clean:.2f})"
    if result.get("kind") == "dense":
        metric, curves = result["metric"], result["curves"]
        pick = max if result.get("mode") == "min" else min  # the worst point: the highest error rate, lowest score
        worst = pick(curves.get("pgd") or next(iter(curves.values())), key=lambda p: p[metric])
        return f"{metric} {worst[metric]:.4f} under PGD at eps {worst['eps']:.3g} (clean {result['clean'][metric]:.4f})"
    if not result.get("robust_accuracy"):
        return None
    eps, accuracy = max(result["robust_accuracy"].items(), key=lambda item: float(item[0]))
    return f"worst-case accuracy {accuracy:.4f} at {result.get('norm', 'linf')} eps {eps} -> results/robustness.json"


def demo(run: Any) -> tuple[dict[str, Any], str]:
    return (
        {"limit": 200, "apgd_steps": 20, "square_queries": 200},
        "APGD, Square and PGD on 200 test examples, L-inf eps up to 0.1",
    )


STAGE = register_stage(
    Stage(
        name="robustness",
        run=robustness_run,
        help="attack a trained classifier (accuracy against eps, AutoAttack-style worst case, masking checks) "
        "or an agent's observations (return against eps), or a segmentation or detection model (mIoU or mAP "
        "against eps)",
        description="Attack a trained classifier's test examples (FGSM, PGD, APGD, Square, C&W, DeepFool), run "
        "the AutoAttack-style worst case and the gradient-masking checks; write results/robustness.json.",
        arguments=arguments,
        options=options,
        show=show,
        headline=headline,
        demo=demo,
        tasks=("classify", "control", *DENSE_TASKS, "transcribe"),
        aliases=("attack",),
        order=70,
        takes_progress=True,
    )
)
