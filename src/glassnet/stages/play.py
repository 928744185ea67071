"""The ``play`` stage: one episode of a trained agent rendered to an animated GIF."""

from __future__ import annotations

import argparse
from typing import Any

from glassnet.stages import Stage, register_stage
from glassnet.stages._written import print_written


def play(run: Any, **options: Any) -> dict[str, Any]:
    """``glassnet.rl.evaluation.play``, imported when the stage runs (the command line starts without torch)."""
    from glassnet.rl.evaluation import play

    return play(run, **options)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="the GIF to write (default RUN/figures/play.gif)")
    p.add_argument("--seed", type=int, help="the episode's seed (default: the first test episode's seed, 20000)")
    p.add_argument("--max-frames", type=int, default=600, help="at most this many frames (default 600)")
    p.add_argument("--width", type=int, default=320, help="frame width in pixels (default 320)")
    p.add_argument("--sample", action="store_true", help="draw actions from the policy instead of the most likely")


def options(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {"out": args.out, "max_frames": args.max_frames, "width": args.width, "deterministic": not args.sample}
    if args.seed is not None:
        chosen["seed"] = args.seed
    return chosen


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"episode:  seed {result['seed']}, return {result['return']:.2f}, {result['length']} steps")
    print_written([f"{result['file']} ({result['frames']} frames)", f"{args.run}/results/play.json"])


def headline(result: dict[str, Any]) -> str:
    return f"episode of seed {result['seed']}: return {result['return']:.2f} -> {result['file']}"


STAGE = register_stage(
    Stage(
        name="play",
        run=play,
        help="render one episode of a trained agent (--env run) to an animated GIF",
        description="Play one seeded episode with a trained agent's policy and write it as an animated GIF "
        "(results/play.json records the seed, return and length).",
        arguments=arguments,
        options=options,
        show=show,
        headline=headline,
        tasks=("control",),
        audit=False,
        refreshes_report=False,
        order=45,
    )
)
