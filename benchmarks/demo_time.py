"""Time `glassnet demo` end to end in a fresh process, against its two-minute budget (and another version).

    .venv/bin/python benchmarks/demo_time.py [--repeats 3] [--baseline SRC]

Prints the wall time of each run (import, data, training, evaluation, explain, attack, compress,
report), the test accuracy, and the ratio of the median time to the 120 s budget (below 1.0 meets
it). With ``--baseline SRC`` (the ``src`` folder of another checkout, e.g. a ``git worktree`` of an
older commit) the runs alternate between that version and this one, each a fresh
``glassnet demo`` process, and the ratio this / baseline of the medians (wall and
CPU time of the child processes) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 120.0
HERE = Path(__file__).resolve().parents[1] / "src"


def once(source: Path) -> tuple[float, float, float]:
    """One demo in a fresh process with glassnet from ``source``: (wall s, CPU s, test accuracy)."""
    out = Path(tempfile.mkdtemp()) / "demo"
    env = {**os.environ, "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    entry = "import sys; from glassnet.cli import main; sys.exit(main())"  # the same for every version
    command = [sys.executable, "-c", entry, "demo", "--quiet", "--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    accuracy = json.loads((out / "results" / "train.json").read_text())["test"]["accuracy"]
    return wall, cpu, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="the src folder of the version to compare with")
    args = parser.parse_args()
    sources = {"this": HERE} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sources}
    for _ in range(args.repeats):
        for name, source in sources.items():  # alternate, so both see the same load over time
            runs[name].append(once(source))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    medians = {}
    for name, results in runs.items():
        walls, cpus, accuracies = zip(*results)
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        shown = ", ".join(f"{t:.1f}" for t in walls)
        print(f"{name}: wall {shown} s (median {medians[name][0]:.1f}); CPU median {medians[name][1]:.1f} s")
        print(f"{name}: test accuracy {', '.join(f'{a:.4f}' for a in accuracies)}")
    print(f"ratio to the {BUDGET_S:.0f} s budget: {medians['this'][0] / BUDGET_S:.3f}")
    if "baseline" in medians:
        wall, cpu = (medians["this"][i] / medians["baseline"][i] for i in range(2))
        print(f"ratio this / baseline: wall {wall:.3f}, CPU {cpu:.3f}")


if __name__ == "__main__":
    main()
