"""``glassnet generate RUN``: new images from a generative run, as one PNG grid or one PNG per image.

Import-light (no torch at import): the command line builds its parser from ``add_parser`` and
imports ``glassnet.generate`` only when the command runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

EXAMPLE = "glassnet generate runs/cgan --n 64 --class 7 --out sevens.png"


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``generate`` subcommand to ``commands`` (the ``add_subparsers`` object of ``glassnet``).

    Args:
        commands: the subparsers action of the ``glassnet`` parser.
        common: the parent parser of the options every command takes (``--debug``, ``--quiet``).
    """
    parser = commands.add_parser(
        "generate",
        parents=[common],
        help="draw new images from a generative run (dcgan, cgan, ddpm) into a PNG grid or a folder of PNGs",
        description="Draw new images from a run trained with a generative model (dcgan, cgan, ddpm), from the "
        "model's moving average (ddpm: by DDIM in --steps steps),"
        " and write them as one PNG grid (--out FILE.png) or one PNG per image "
        "(--out FOLDER). The same --seed gives the same images. The run's evaluation (FID, KID, class coverage, "
        "memorisation) is in RUN/results/generate.json.",
        epilog=f"example: {EXAMPLE}",
    )
    parser.add_argument("run", help="run directory of a generative run")
    parser.add_argument("--n", type=int, default=64, help="how many images (default 64)")
    parser.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="NAME",
        help="the class to draw (conditional runs; repeat to cycle through several; default: every class in turn)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument(
        "--steps", type=int, help="denoising steps of a diffusion run (DDIM; default: the model's sample_steps)"
    )
    parser.add_argument(
        "--guidance", type=float, help="classifier-free guidance weight of a conditional diffusion run (1: none)"
    )
    parser.add_argument(
        "--eta", type=float, help="fresh noise per step of a diffusion run: 0 deterministic DDIM (default), 1 as DDPM"
    )
    parser.add_argument(
        "--out",
        default="samples.png",
        help="a .png file (one grid) or a folder (one PNG per image); default samples.png",
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Draw ``args.n`` images from ``args.run`` and write them to ``args.out``; returns the exit status."""
    from glassnet.errors import ConfigError
    from glassnet.generate.sampling import sample_run, write_samples
    from glassnet.runs import RunDir
    from glassnet.train.run import Run

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1. Received: --n {args.n}")
    if RunDir(args.run).owns(args.out):
        raise ConfigError(f"--out {args.out} is one of the run's own files; write the images elsewhere")
    run = Run.open(args.run)
    start = time.perf_counter()
    options = {"steps": args.steps, "guidance": args.guidance, "eta": args.eta}
    images, labels = sample_run(run, args.n, classes=args.classes, seed=args.seed, **options)
    written = write_samples(images, args.out, run.spec.class_names, labels)
    shape = " x ".join(map(str, images.shape[1:]))
    which = f", classes {', '.join(args.classes)}" if args.classes else ""
    print(
        f"generated: {len(images)} images of {shape} (seed {args.seed}{which}) in {time.perf_counter() - start:.2f} s"
    )
    print(f"written:   {written[0] if len(written) == 1 else f'{len(written)} PNG files in {args.out}'}")
    return 0
