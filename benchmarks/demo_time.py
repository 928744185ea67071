"""Time `glassnet demo` end to end in a fresh process, against its two-minute budget.

    .venv/bin/python benchmarks/demo_time.py [--repeats 3]

Prints the wall time of each run (import, data, training, evaluation, figures, report), the test
accuracy, and the ratio of the median time to the 120 s budget (below 1.0 meets it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    glassnet = Path(sys.executable).parent / "glassnet"
    times, accuracies = [], []
    for _ in range(args.repeats):
        out = Path(tempfile.mkdtemp()) / "demo"
        start = time.perf_counter()
        subprocess.run([str(glassnet), "demo", "--quiet", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        accuracies.append(json.loads((out / "results" / "train.json").read_text())["test"]["accuracy"])
    median = statistics.median(times)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"demo wall time (s): {', '.join(f'{t:.1f}' for t in times)}; median {median:.1f}")
    print(f"test accuracy: {', '.join(f'{a:.4f}' for a in accuracies)}")
    print(f"ratio to the {BUDGET_S:.0f} s budget: {median / BUDGET_S:.3f}")


if __name__ == "__main__":
    main()
