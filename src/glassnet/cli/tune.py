"""``glassnet tune``: hyper-parameter search with Optuna, every trial a run (docs/tune.md).

Import-light: the parser is built without torch or Optuna; the handler imports them when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXAMPLE = (
    "glassnet tune --data breast-cancer --model mlp --trials 20 'lr=log(1e-4,1e-2)' 'model.width=[64,128,256]' epochs=5"
)


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``tune`` command to ``commands`` (the subparsers of ``glassnet``); ``common`` holds the
    options every command shares (``--debug``, ``--quiet``)."""
    tune = commands.add_parser(
        "tune",
        parents=[common],
        help="search hyper-parameters with Optuna; every trial is a run",
        description=(
            "Search hyper-parameters with Optuna: each trial trains an ordinary run into OUT/trial-NNNN, "
            "unpromising trials are pruned from their validation metric, and the study is kept in "
            "OUT/study.db, so the same command resumes it and several workers can share it. "
            "Searched: key=log(a,b) (log-uniform), key=uniform(a,b), key=int(a,b), key=[a,b,c] (a choice); "
            "any other key=value is fixed for every trial. Quote them for the shell."
        ),
        epilog=f"example: {EXAMPLE}",
    )
    tune.add_argument("--data", help="built-in dataset name or a path to data (see `glassnet datasets`)")
    tune.add_argument("--model", help="model name (see `glassnet models`)")
    tune.add_argument("--config", help="YAML file with the configuration the trials start from")
    tune.add_argument("--trials", type=int, required=True, help="the study's number of trials, across all workers")
    tune.add_argument("--out", help="the study's directory (default: runs/tune-<model>-<data>)")
    tune.add_argument(
        "--storage",
        help="Optuna RDB storage URL (default: sqlite:///OUT/study.db); postgresql://user:password@host/db "
        "lets workers on several machines share the study",
    )
    tune.add_argument("--study", help="the study's name in the storage (default: <model>-<data>)")
    tune.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    tune.add_argument("--metric", help="validation metric to optimise, e.g. val/accuracy (default: monitor, val/loss)")
    tune.add_argument("--no-prune", action="store_true", help="train every trial to the end (no pruning)")
    tune.add_argument(
        "overrides",
        nargs="*",
        metavar="key=SEARCH|key=value",
        help="searched keys, e.g. 'lr=log(1e-4,1e-2)' 'model.width=[64,128]', and fixed ones, e.g. epochs=5",
    )
    tune.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the study, print one line per trial and the best trial; returns the exit status."""
    from glassnet.tune import tune

    quiet = getattr(args, "quiet", False)
    summary = tune(
        data=args.data,
        model=args.model,
        space=list(args.overrides),
        trials=args.trials,
        out=args.out,
        storage=args.storage,
        study=args.study,
        timeout=args.timeout,
        metric=args.metric,
        config=args.config,
        prune=not args.no_prune,
        log=None if quiet else sys.stdout,
    )
    print_best(summary)
    return 0


def print_best(summary: dict[str, Any]) -> None:
    """The study's outcome: its trials, the best trial (value, parameters, run) and the files written."""
    counts = summary["counts"]
    print(
        f"study:    {summary['study']}: {counts['total']} trials ({counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['fail']} failed, {counts['running']} running)"
    )
    best = summary["best"]
    if best is None:
        print("best:     no complete trial yet")
    else:
        params = " ".join(f"{k}={_shown(v)}" for k, v in best["params"].items())
        print(f"best:     trial {best['number']}: {summary['metric']} {best['value']:.6g}  {params}")
        print(f"run:      {best['run_dir']}")
    print(f"report:   {summary['files']['html']}")
    print(f"summary:  {summary['files']['json']}")


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
