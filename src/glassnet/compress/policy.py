"""Compressing an agent: int8 and ONNX versions of its policy, judged by the return they keep.

Each variant computes the policy's decision (``forward``: logits, Q-values or the action) and acts
through ``DecisionAgent``; all play the same seeded test episodes as the original, so "return
unchanged within noise" is a like-for-like comparison: the difference of the means is set against
the episodes' standard error. Latency is per action, one observation at a time (what a controller
pays each step), as the median and 95th percentile over repeated calls.

Variants: ``fp32`` (the trained policy), ``int8-torch-dynamic`` (Linear weights int8, PyTorch),
``onnx-fp32`` (ONNX Runtime) and ``int8-ort-dynamic`` (ONNX Runtime dynamic int8); the ONNX files
are written to ``RUN/compressed/``. The ONNX variants need ``pip install onnx onnxruntime``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from glassnet.compress import export, quantization
from glassnet.compress.measure import (
    cell,
    count_parameters,
    is_number,
    pickled_state_size,
    serialized_size,
    torch_forward,
)
from glassnet.progress import Progress, note, progress_bar
from glassnet.rl.evaluation import TEST_SEED, DecisionAgent, collect_states, cpu_threads, evaluate_policy
from glassnet.train.run import Run

LATENCY_CALLS = 200
VARIANTS = ("int8-torch-dynamic", "onnx-fp32", "int8-ort-dynamic")


@cpu_threads()  # one thread: steady per-step timings, no stalls when the cores are shared
def compress_policy(
    run: Run, episodes: int = 20, export_onnx: bool = True, seed: int = 0, progress: Progress = None
) -> dict[str, Any]:
    """Quantise and export an agent's policy; compare returns and per-action latency.

    Args:
        run: a ``Run`` trained with ``--env``.
        episodes: seeded test episodes each variant plays.
        export_onnx: also export to ONNX and run it (and its int8 version) in ONNX Runtime.
        seed: calibration sample draw.
        progress: a bar over the variants played, with elapsed time and time left: True on stderr, or a
            text stream; None (default) or False draws nothing.

    Returns:
        The dict written to ``results/compress.json``: ``variants`` (name, description, return mean
        and std, difference to the original and its noise, size, latency per action), ``warnings``.
    """
    model, environment, spec = run.model.eval(), run.data(), run.spec
    folder = run.path / "compressed"
    folder.mkdir(exist_ok=True)
    states = collect_states(model, environment, 256, seed=TEST_SEED)
    variants: list[tuple[str, str, Callable[[torch.Tensor], torch.Tensor], int, str | None]] = [
        ("fp32", "the trained policy (PyTorch, fp32)", torch_forward(model), serialized_size(model), None)
    ]
    notes: list[str] = []
    try:
        quantized = quantization.dynamic_quantize(model)
        variants.append(
            ("int8-torch-dynamic", "PyTorch dynamic int8 (Linear weights int8)", torch_forward(quantized),
             pickled_state_size(quantized), None)
        )  # fmt: skip
    except Exception as exc:  # a policy without Linear layers, a missing quantisation engine ...
        notes.append(f"int8-torch-dynamic skipped: {str(exc).splitlines()[0]}")
    onnx: dict[str, Any] | None = None
    if export_onnx:
        try:
            path = folder / "policy.onnx"
            exporter = export.export_onnx(model, states[:8], path)
            check = export.verify_onnx(model, path, states[:64], exporter)
            onnx = {"file": f"compressed/{path.name}", **check.to_dict()}
            variants.append(("onnx-fp32", f"ONNX ({exporter}) in ONNX Runtime", export.OnnxModel(path),
                             path.stat().st_size, onnx["file"]))  # fmt: skip
            int8 = folder / "policy.int8-dynamic.onnx"
            quantization.ort_quantize(path, int8, states, method="ort-dynamic")
            variants.append(("int8-ort-dynamic", "ONNX Runtime dynamic int8", export.OnnxModel(int8),
                             int8.stat().st_size, f"compressed/{int8.name}"))  # fmt: skip
        except Exception as exc:  # onnx/onnxruntime missing, an operator without an export ...
            notes.append(f"ONNX variants skipped: {str(exc).splitlines()[0]}")
    records = []
    original = None
    bar = progress_bar(len(variants), "compress", progress, unit="variants")
    for name, description, forward, size, file in variants:
        note(bar, f"{name}: {episodes} episodes")
        scores = evaluate_policy(DecisionAgent(forward, spec), environment, episodes, seed=TEST_SEED)
        p50, p95 = _latency(forward, states[:1])
        record = {
            "name": name,
            "description": description,
            "file": file,
            "size_bytes": size,
            "return_mean": scores["return_mean"],
            "return_std": scores["return_std"],
            "latency_ms_p50": p50,
            "latency_ms_p95": p95,
        }
        if original is None:
            original = scores
            agree = torch.ones(1)
        else:
            with torch.no_grad():
                agree = _agreement(model, forward, states, spec)
            difference = scores["return_mean"] - original["return_mean"]
            noise = math.sqrt((scores["return_std"] ** 2 + original["return_std"] ** 2) / episodes)
            record.update(
                return_difference=round(difference, 6),
                noise=round(noise, 6),
                unchanged=abs(difference) <= 2 * noise + 1e-9,
            )
        record["decisions_agree"] = round(float(agree.mean()), 6)
        records.append(record)
        bar.update(1)
    bar.close()
    params, _ = count_parameters(model)
    base = records[0]["size_bytes"]
    for record in records:
        record["size_ratio"] = round(base / record["size_bytes"], 3) if record["size_bytes"] else None
        record["speedup"] = round(records[0]["latency_ms_p50"] / record["latency_ms_p50"], 3)
    warnings = [
        f"{r['name']} changes the return beyond noise ({r['return_difference']:+.2f}, noise {r['noise']:.2f})"
        for r in records[1:]
        if not r["unchanged"]
    ]
    result = {
        "kind": "policy",
        "task": "control",
        "episodes": episodes,
        "seeds": [TEST_SEED, TEST_SEED + episodes - 1],
        "parameters": params,
        "variants": records,
        "onnx": onnx,
        "notes": notes,
        "warnings": warnings,
        "latency": f"one observation per call, median and 95th percentile of {LATENCY_CALLS} calls",
    }
    run.write_result("compress", result)
    return result


VARIANT_COLUMNS = ["variant", "size", "return", "difference (noise)", "same decisions", "ms per action", "speed-up",
                   "smaller"]  # fmt: skip


def variant_rows(result: dict[str, Any]) -> list[list[str]]:
    """The variants of ``results/compress.json`` as table cells (``VARIANT_COLUMNS``), for the command
    line and the report; a figure that is missing (NaN is stored as null) reads "n/a"."""
    return [
        [
            str(v.get("name")),
            cell(v.get("size_bytes") / 1024 if is_number(v.get("size_bytes")) else None, ".1f", " KiB"),
            f"{cell(v.get('return_mean'), '.2f')} ± {cell(v.get('return_std'), '.2f')}",
            ""
            if "return_difference" not in v
            else f"{cell(v['return_difference'], '+.2f')} ({cell(v.get('noise'), '.2f')})",
            cell(v.get("decisions_agree"), ".1%"),
            cell(v.get("latency_ms_p50"), ".4f"),
            cell(v.get("speedup"), ".2f", "x"),
            cell(v["size_ratio"], ".2f", "x") if v.get("size_ratio") else "",
        ]
        for v in result["variants"]
    ]


def _latency(forward: Callable[[torch.Tensor], torch.Tensor], observation: torch.Tensor) -> tuple[float, float]:
    for _ in range(10):
        forward(observation)
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        forward(observation)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return round(statistics.median(times), 5), round(times[int(0.95 * (len(times) - 1))], 5)


def _agreement(model: nn.Module, forward: Callable, states: torch.Tensor, spec: Any) -> torch.Tensor:
    """Per state: 1 when the variant takes the original's action (discrete), else 1 - relative action shift."""
    reference, out = model(states), forward(states).float()
    if spec.extra["action"]["kind"] == "discrete":
        return (reference.argmax(dim=-1) == out.argmax(dim=-1)).float()
    span = torch.tensor(spec.extra["action"]["high"]) - torch.tensor(spec.extra["action"]["low"])
    return 1 - ((reference - out).abs() / span).mean(dim=-1)
