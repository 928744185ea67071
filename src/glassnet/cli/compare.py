"""``glassnet compare RUN1 RUN2 ...``: one HTML page with the runs' metrics and audit headlines side by side.

Import-light (no torch at import): the command line builds its parser from ``add_parser`` and
imports ``glassnet.report.compare`` only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

EXAMPLE = "glassnet compare runs/mlp-digits runs/cnn-digits --out compare.html"


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``compare`` subcommand to ``commands`` (the ``add_subparsers`` object of ``glassnet``).

    Args:
        commands: the subparsers action of the ``glassnet`` parser.
        common: the parent parser of the options every command takes (``--debug``).
    """
    parser = commands.add_parser(
        "compare",
        parents=[common],
        help="compare trained runs side by side in one HTML page (metrics, audits, a chart)",
        description="Write one self-contained HTML page with a column per run: model, data, parameters, "
        "settings, test metrics, training time and the headlines of the audits (explanation faithfulness, "
        "accuracy under attack at each eps, the fastest compressed variant), the best run of each row "
        "highlighted, and a bar chart of the main test metric.",
        epilog=f"example: {EXAMPLE}",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run directories to compare (two or more)")
    parser.add_argument(
        "--out", default="compare.html", metavar="FILE", help="the HTML file to write (default: compare.html)"
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Write the comparison page of ``args.runs`` to ``args.out`` and print its path; returns the exit status."""
    from glassnet.report.compare import compare

    path = compare(args.runs, args.out)
    print(f"compared: {len(args.runs)} runs ({', '.join(str(r) for r in args.runs)})")
    print(f"written:  {path}")
    return 0
