"""Command-line start-up: how long `glassnet --help` and the listings take, against loading the package whole.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5]

Each command runs in a fresh interpreter (`python -m glassnet ...`), as a user's shell starts it; the
baseline, measured in the same run, is a fresh interpreter that imports everything the command line
used to import before answering (`glassnet.pipeline` and the audit packages: torch, the models,
training, compress). The script prints the median wall time of each and the ratio command/baseline
(issue 19's goal: `--help` and `datasets` under 0.5 s). On a machine shared with other jobs, compare
the ratios rather than the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "glassnet --help": ["-m", "glassnet", "--help"],
    "glassnet datasets": ["-m", "glassnet", "datasets"],
    "glassnet models": ["-m", "glassnet", "models"],
    "glassnet completion bash": ["-m", "glassnet", "completion", "bash"],
}
BASELINE = (
    "import glassnet.pipeline, glassnet.compress.core, glassnet.explain.attribute, glassnet.robustness.stage",
    "the whole package imported (what `glassnet --help` loaded before)",
)


def wall_time(args: list[str]) -> float:
    """Seconds for one fresh interpreter to run ``args`` (output discarded)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (the median is shown)")
    args = parser.parse_args()
    wall_time(["-c", "pass"])  # warm the file cache
    baseline = statistics.median(wall_time(["-c", BASELINE[0]]) for _ in range(args.repeats))
    print(f"baseline: {BASELINE[1]}: {baseline:.3f} s (median of {args.repeats})")
    print(f"{'command':<26} {'median s':>9} {'x baseline':>11}")
    for name, command in COMMANDS.items():
        seconds = statistics.median(wall_time(command) for _ in range(args.repeats))
        print(f"{name:<26} {seconds:>9.3f} {seconds / baseline:>11.3f}")


if __name__ == "__main__":
    main()
