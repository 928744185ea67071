"""Throughput and peak memory of glassnet.explain against calling Captum directly with its defaults.

Same model (the Fashion-MNIST-sized CNN, 1 x 28 x 28, channels 16/32, untrained: speed and memory do not
depend on the weights), same inputs and the same method arguments, targets included (both get the
predicted classes computed before the clock starts); each measurement runs in a fresh subprocess, so
its peak resident memory (ru_maxrss) belongs to that one call. Both libraries make the same warm-up
call first. Printed: examples/s, the peak memory the call added above the process after set-up, the
ratios glassnet / Captum (speed from wall time; "cpu ratio": Captum's CPU seconds over glassnet's, the
steadier figure on a shared machine with one thread), how far glassnet's attributions are from
Captum's (largest absolute difference over the largest absolute attribution; the random methods run
under the same seed, so with the same draws), and the load average (the machine may be shared: the
two libraries alternate, repeat after repeat, so that load hits both alike).

    .venv/bin/python benchmarks/explain_vs_captum.py --n 64 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

CASES = {
    # the Captum call with its default batching; GLASSNET gives explain() the same method arguments
    "integrated_gradients": "IntegratedGradients(model).attribute(x, baselines=zeros, target=t, n_steps=50)",
    "gradient_shap": "GradientShap(model).attribute(x, baselines=zeros[:1], n_samples=20, target=t)",
    "smoothgrad": "NoiseTunnel(Saliency(model)).attribute(x, nt_type='smoothgrad', nt_samples=10, stdevs=0.1, "
    "target=t)",
    "occlusion": "Occlusion(model).attribute(x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), target=t)",
}
GLASSNET = {
    "integrated_gradients": {"auto_steps": False, "n_steps": 50},
    "gradient_shap": {"n_samples": 20},
    "smoothgrad": {"n_samples": 10, "stdevs": 0.1},
    "occlusion": {"window": (1, 4, 4)},
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def setup(n: int, threads: int) -> tuple[Any, Any, Any]:
    """The benchmark's model, inputs and their predicted classes."""
    import torch

    from glassnet.data import DataSpec
    from glassnet.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = DataSpec(modality="image", input_shape=(1, 28, 28), task="classify", num_outputs=10)
    model = create_model("cnn", spec, channels=[16, 32], hidden=64).eval()
    x = torch.rand(n, 1, 28, 28)
    with torch.no_grad():
        t = model(x).argmax(dim=1)
    return model, x, t


def agreement(case: str, n: int, memory_mb: float, threads: int) -> None:
    """Print max |glassnet - Captum| / max |Captum| for one case, both seeded alike."""
    import numpy as np
    import torch
    from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Occlusion, Saliency  # noqa: F401

    from glassnet.explain import explain

    model, x, t = setup(n, threads)
    zeros = torch.zeros_like(x)
    ours = explain(model, x, case, target=t, memory_mb=memory_mb, seed=0, **GLASSNET[case]).values
    torch.manual_seed(0)  # explain(seed=0) seeds torch and NumPy (Captum draws from both) the same way
    np.random.seed(0)
    reference = eval(CASES[case], {**globals(), **locals()}).detach()
    print(json.dumps({"difference": float((ours - reference).abs().max() / reference.abs().max())}))


def child(case: str, library: str, n: int, memory_mb: float, threads: int) -> None:
    import torch
    from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Occlusion, Saliency  # noqa: F401

    from glassnet.explain import explain

    model, x, t = setup(n, threads)
    zeros = torch.zeros_like(x)
    explain(model, x[:2], "saliency")  # warm up both code paths the same way
    before = rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    if library == "captum":
        eval(CASES[case], {**globals(), **locals()})
    else:
        explain(model, x, case, target=t, memory_mb=memory_mb, **GLASSNET[case])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_added_mb": peak - before}))


def measure(case: str, library: str, n: int, memory_mb: float, threads: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            case,
            library,
            "--n",
            str(n),
            "--memory-mb",
            str(memory_mb),
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="examples explained per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-mb", type=float, default=512.0, help="glassnet's budget per pass (its default)")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--threads", type=int, default=2, help="torch threads per call (1 on a shared machine)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[1] == "agreement":
            agreement(args.child[0], args.n, args.memory_mb, args.threads)
        else:
            child(args.child[0], args.child[1], args.n, args.memory_mb, args.threads)
        return
    print(
        f"{args.n} examples, 1x28x28 CNN, glassnet budget {args.memory_mb:g} MB, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    print("load average at start: " + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(f"{'method':22} {'captum ex/s':>12} {'glassnet ex/s':>14} {'speed ratio':>12} "
          f"{'cpu ratio':>10} {'captum MB':>10} {'glassnet MB':>12} {'memory ratio':>13} {'max diff':>9}")  # fmt: skip
    for case in args.cases:
        runs: dict[str, list[dict[str, float]]] = {"captum": [], "glassnet": []}
        for _ in range(args.repeats):  # alternate, so load on the machine hits both alike
            for library in runs:
                runs[library].append(measure(case, library, args.n, args.memory_mb, args.threads))
        speed = {k: args.n / statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["cpu_seconds"] for r in v) for k, v in runs.items()}
        memory = {k: statistics.median(r["peak_added_mb"] for r in v) for k, v in runs.items()}
        difference = measure(case, "agreement", args.n, args.memory_mb, args.threads)["difference"]
        print(
            f"{case:22} {speed['captum']:12.1f} {speed['glassnet']:14.1f} {speed['glassnet'] / speed['captum']:12.2f} "
            f"{cpu['captum'] / max(cpu['glassnet'], 1e-9):10.2f} "
            f"{memory['captum']:10.1f} {memory['glassnet']:12.1f} "
            f"{memory['glassnet'] / max(memory['captum'], 1e-9):13.2f} {difference:9.1e}",
            flush=True,
        )
    print("load average at end: " + " ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
