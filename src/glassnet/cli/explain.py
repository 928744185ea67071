"""``glassnet explain RUN``: attributions of a run's test examples, with trust checks, into explain.json."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.explain.budget import DEFAULT_MEMORY_MB
from glassnet.explain.methods import ALIASES, METHODS
from glassnet.explain.run import DEFAULT_EXAMPLES


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "explain",
        parents=[common],
        help="explain a run's test predictions (Captum attributions, trust checks, pictures)",
        description="Explain why a trained run's model decides as it does, check the explanation and "
        "write results/explain.json, figures/explain_*.png and a report section.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--method",
        default="integrated_gradients",
        metavar="M",
        help=f"attribution method: {', '.join(METHODS)} (aliases: {', '.join(sorted(ALIASES))}); "
        "default integrated_gradients",
    )
    p.add_argument(
        "--n", type=int, default=DEFAULT_EXAMPLES, help=f"test examples to explain (default {DEFAULT_EXAMPLES})"
    )
    p.add_argument(
        "--memory-mb",
        type=float,
        default=DEFAULT_MEMORY_MB,
        help=f"memory budget of one forward and backward pass in MB (default {DEFAULT_MEMORY_MB:g})",
    )
    p.add_argument("--layer", help="Grad-CAM's layer (default: the activation after the last convolution)")
    p.add_argument("--steps", type=int, default=50, help="integrated gradients' starting number of steps (default 50)")
    p.add_argument("--samples", type=int, help="samples of SmoothGrad, GradientSHAP, LIME and KernelSHAP")
    p.add_argument("--no-checks", action="store_true", help="skip the trust checks (faster)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (default 0)")
    p.add_argument("--report", action="store_true", help="(re)write report.html afterwards")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet.explain import explain_run

    options: dict[str, Any] = {"n_steps": args.steps}
    if args.samples is not None:
        options["n_samples"] = args.samples
    result = explain_run(
        args.run,
        args.method,
        n=args.n,
        memory_mb=args.memory_mb,
        layer=args.layer,
        checks=not args.no_checks,
        seed=args.seed,
        **options,
    )
    print(f"method:   {result['method_label']} on {result['examples']} test examples ({result['time_s']:.1f} s)")
    trust = result.get("trust")
    if trust:
        faith = trust["faithfulness"]
        print(
            f"deletion: area {faith['deletion_auc']:.3f} (random {faith['random_deletion_auc']:.3f}); "
            f"insertion: area {faith['insertion_auc']:.3f} (random {faith['random_insertion_auc']:.3f})"
        )
        if "rank_correlation" in trust.get("randomisation", {}):
            r = trust["randomisation"]
            line = f"sanity:   randomised-model correlation {r['rank_correlation']:.2f} (passes below {r['threshold']})"
            if "example_share" in r:
                line += f"; position profile removed, {r['example_share']:.0%} of the explanation left"
            print(line)
        if "completeness" in trust:
            c = trust["completeness"]
            print(
                f"complete: worst error {c['max_relative_error']:.2%} with up to {c['steps_max_used']} steps "
                f"({'holds' if c['holds'] else 'does not hold'})"
            )
    for warning in result["warnings"]:
        print(f"warning:  {warning}")
    print(f"written:  {args.run}/results/explain.json, figures: {', '.join(result['figures']) or '(none)'}")
    if args.report:
        from glassnet.report import report

        print(f"report:   {report(args.run)}")
    return 0
