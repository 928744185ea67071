"""The compress stage over a run directory: what ``glassnet compress RUN`` calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from glassnet.compress.core import CompressResult, compress
from glassnet.compress.figures import size_tradeoff
from glassnet.data import DataBundle
from glassnet.errors import ConfigError
from glassnet.progress import Progress
from glassnet.runs import writes_run
from glassnet.train.finite import require_finite_weights
from glassnet.train.run import Run

COMPRESSED_DIR = "compressed"
FIGURE = "compress_tradeoff"


@writes_run("compress")
def compress_run(
    run: Run | str | os.PathLike[str], data: DataBundle | None = None, progress: Progress = None, **options: Any
) -> CompressResult:
    """Compress a trained run: variants go to ``RUN/compressed/``, figures to
    ``RUN/results/compress.json`` and ``RUN/figures/compress_tradeoff.png``.

    Args:
        run: the ``Run``, or its directory.
        data: the data to fine-tune, calibrate and measure on; by default the run's own dataset,
            re-loaded with the same split options (so its test split is the run's test split).
        progress: bars over the variants and the measurements, with elapsed time and time left: True on
            stderr, or a text stream; None (default) or False draws nothing.
        **options: the options of ``glassnet.compress.compress`` (``prune``, ``quantize``,
            ``distill``, ``export_format``, ...).

    Raises:
        RunError: the run has no trained model or no config.yaml (and no ``data`` was given), or its
            weights are NaN or infinite (it diverged).
        ConfigError: an option is invalid, or the data does not fit the model.
    """
    run = Run.open(run)
    model, spec = run.model, run.spec
    require_finite_weights(model, run.weights)
    if spec.task == "generate":
        return _compress_generator(run, data, options, progress)
    if spec.task == "control":
        return _compress_agent(run, data, options, progress)
    if options.pop("episodes", None) is not None:
        raise ConfigError("--episodes applies to an agent's run (glassnet train --env ...); this run learnt from data")
    if data is None:
        data = run.data()
    if tuple(data.spec.input_shape) != tuple(spec.input_shape) or data.spec.num_outputs != spec.num_outputs:
        raise ConfigError(
            f"the data ({data.spec.name or 'given'}: inputs {data.spec.input_shape}, {data.spec.num_outputs} outputs) "
            f"does not fit the run's model (inputs {spec.input_shape}, {spec.num_outputs} outputs)"
        )
    if data.spec.modality == "text" and data.spec.extra.get("vocab") != spec.extra.get("vocab"):
        raise ConfigError("the text data's vocabulary differs from the one the run's model was trained with")
    folder = run.path / COMPRESSED_DIR
    result = compress(model, data, out=folder, progress=progress, **options)
    for record in result.variants:
        if record["file"] is not None:
            record["file"] = Path(record["file"]).relative_to(run.path).as_posix()
    base = result.variants[0]
    base["file"] = run.weights.name
    base["size_bytes"] = run.weights.stat().st_size
    for record in result.variants:
        record["size_ratio"] = base["size_bytes"] / record["size_bytes"]
    if result.onnx is not None:
        result.onnx["file"] = f"{COMPRESSED_DIR}/{result.onnx['file']}"
    run.write_result("compress", result.to_dict())
    size_tradeoff(result.variants, result.metric, run.figure(FIGURE))
    return result


def _compress_generator(run: Run, data: Any, options: dict[str, Any], progress: Progress = None) -> dict[str, Any]:
    """A GAN's generator or a diffusion model's U-Net: int8 and ONNX variants judged by the FID of their images
    (``compress.generator``).

    Raises:
        ConfigError: data, pruning, distillation or a choice of quantisation was asked for (they do not
            apply to a generator yet); nothing is written then.
    """
    from glassnet.compress.generator import compress_generator

    unsupported = [k for k in ("prune", "distill", "stack", "episodes") if options.get(k)]
    if data is not None or unsupported:
        raise ConfigError(
            "a generator is compressed by int8 quantisation and ONNX export, judged by the FID of its images; "
            f"{', '.join(unsupported) or 'data'} does not apply to it (drop those options)"
        )
    return compress_generator(run, progress=progress)


def _compress_agent(run: Run, data: Any, options: dict[str, Any], progress: Progress = None) -> dict[str, Any]:
    """An agent's policy: int8 and ONNX variants judged by the return of the same test episodes.

    Raises:
        ConfigError: data, pruning, a choice of quantisation or distillation was asked for (they do not
            apply to a policy yet).
    """
    from glassnet.compress.policy import compress_policy

    unsupported = [k for k in ("prune", "quantize", "distill", "stack") if options.get(k)]
    if data is not None or unsupported:
        raise ConfigError(
            "an agent's policy is compressed by int8 quantisation and ONNX export, judged by its return; "
            f"{', '.join(unsupported) or 'data'} does not apply to it (drop those options)"
        )
    return compress_policy(run, episodes=options.get("episodes") or 20, export_onnx=True, progress=progress)
