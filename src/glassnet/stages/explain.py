"""The ``explain`` stage: attributions of a run's test predictions, their trust checks and pictures."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.explain.methods import ALIASES, METHODS
from glassnet.explain.names import DEFAULT_EXAMPLES, DEFAULT_MEMORY_MB, DENSE_TASKS, TASKS
from glassnet.progress import cli_progress
from glassnet.stages import Stage, register_stage
from glassnet.stages._written import print_written, run_files


def explain_run(run: Any, **options: Any) -> dict[str, Any]:
    """``glassnet.explain.explain_run``, imported when the stage runs (the command line starts without torch)."""
    from glassnet.explain.run import explain_run

    return explain_run(run, **options)


def arguments(p: argparse.ArgumentParser) -> None:
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


def options(args: argparse.Namespace) -> dict[str, Any]:
    chosen: dict[str, Any] = {
        "method": args.method,
        "n": args.n,
        "memory_mb": args.memory_mb,
        "layer": args.layer,
        "checks": not args.no_checks,
        "seed": args.seed,
        "n_steps": args.steps,
        "progress": cli_progress(args),
    }
    if args.samples is not None:
        chosen["n_samples"] = args.samples
    return chosen


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    if result.get("kind") == "transcription":
        _show_words(result, args)
        return
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
    print_written(run_files(args.run, ["results/explain.json"], result.get("figures") or []))


def _show_words(result: dict[str, Any], args: argparse.Namespace) -> None:
    s = result["summary"]
    print(f"method:   {result['method_label']} of {s['words']} decoded words in {s['utterances']} test utterances "
          f"({result['time_s']:.1f} s, {result['steps']} steps)")  # fmt: skip
    print(f"local:    a median {s['median_inside_share']:.0%} of a word's attribution lies in its own frames, which "
          f"cover {s['median_span_share']:.0%} of the clip; {s['local_words']:.0%} of the words are local")  # fmt: skip
    print(f"complete: median error {s['median_completeness_error']:.2%}, worst {s['max_completeness_error']:.2%}")
    print(f"deletion: silencing a word's top frames lowers its log-probability by a median "
          f"{s['median_deletion_drop']:.2f}, as many random frames by {s['median_random_drop']:.2f}; "
          f"{s['faithful_words']:.0%} of the words are faithful")  # fmt: skip
    for warning in result["warnings"]:
        print(f"warning:  {warning}")
    print_written(run_files(args.run, ["results/explain.json"], result.get("figures") or []))


def headline(result: dict[str, Any]) -> str:
    warnings = len(result.get("warnings") or [])
    return f"{result.get('method')}, {warnings} trust-check warning(s) -> results/explain.json"


def demo(run: Any) -> tuple[dict[str, Any], str]:
    return (
        {"method": "integrated_gradients", "n": 32},
        "integrated gradients on 32 test examples, with the trust checks",
    )


STAGE = register_stage(
    Stage(
        name="explain",
        run=explain_run,
        help="explain a run's test predictions (Captum attributions, trust checks, pictures)",
        description="Explain why a trained run's model decides as it does, check the explanation and "
        "write results/explain.json, figures/explain_*.png and a report section.",
        arguments=arguments,
        options=options,
        show=show,
        headline=headline,
        demo=demo,
        tasks=(*TASKS, *DENSE_TASKS, "control", "transcribe", "generate"),
        order=60,
        takes_progress=True,
    )
)
