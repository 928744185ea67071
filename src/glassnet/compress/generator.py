"""Compressing a GAN's generator: int8 and ONNX versions judged by the FID of the images they draw.

A generator has no accuracy to keep; what it must keep is the quality of its images. Every variant
draws from the same seeded noise and classes, and each set of images is scored exactly as the run's
own evaluation scores its samples (``glassnet.generate.evaluation``): FID, KID and improved
precision/recall against the same test images, in the features of the run's own feature classifier
(``RUN/feature_classifier``, trained again with the same seed if it is missing). A variant keeps the
quality when its FID is within ``FID_TOLERANCE`` (5 %) of the fp32 generator's. Also recorded: the
classifier's agreement on the class of each image with the fp32 image drawn from the same noise, the
mean absolute pixel difference, the file size and the time to draw 64 images.

The generator is exported as one module of one input, each row the latent vector followed by the
class id (a float, cast back inside), so the ONNX file needs no second input: the moving average of
the generator's weights is what is exported (what ``glassnet generate`` draws with).

Variants: ``fp32``, ``int8-torch-dynamic`` (Linear weights int8: the latent projection),
``onnx-fp32`` (ONNX Runtime) and ``int8-ort-static`` (ONNX Runtime QDQ int8, calibrated on the
noise), the ONNX files in ``RUN/compressed/``.

A ``ddpm`` run is compressed the same way, with its U-Net (the moving average) in place of the
generator: each row is the starting noise and the class, and every variant draws its images with
the model's own DDIM sampler (``sample_steps`` steps, its guidance weight), only the U-Net inside
swapped (``Diffusion.sample(denoiser=...)``). The U-Net is exported as one module of one input
(``Denoising``: the noisy image, the timestep and the class in a row), and the int8 calibration uses
its inputs along the sampling paths of a few images (every step), not random noise.
"""

from __future__ import annotations

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
from glassnet.errors import ConfigError
from glassnet.generate.evaluation import (
    MIN_SAMPLES,
    FeatureExtractor,
    _distances,
    run_feature_classifier,
)
from glassnet.progress import Progress, note, progress_bar
from glassnet.train.run import Run

FID_TOLERANCE = 0.05  # a variant keeps the quality when its FID is at most 5 % above the fp32 generator's
SAMPLES = 2000
LATENCY_BATCH, LATENCY_CALLS = 64, 20
DIFFUSION_LATENCY_CALLS = 3


class Drawing(nn.Module):
    """A generator as a module of one input: each row is the latent vector, then the class id (a float)."""

    def __init__(self, generator: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.generator = generator
        self.conditional = conditional

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        labels = rows[:, -1].long() if self.conditional else None
        return self.generator(rows[:, :-1], labels)


class Denoising(nn.Module):
    """A diffusion U-Net as a module of one input: each row is the noisy image (flattened), the timestep and the
    class id (floats; the "no class" id for an unconditional estimate), so the ONNX file needs no second input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.shape = tuple(net.shape)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = rows[:, :-2].reshape(-1, *self.shape)  # -1: the ONNX batch stays dynamic
        labels = rows[:, -1].long() if self.net.num_classes else None
        return self.net(x, rows[:, -2].long(), labels).flatten(1)


def _denoiser(forward: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], classes: int) -> Callable:
    """``denoiser(x, t, labels)`` of ``Diffusion.sample`` from a one-input ``Denoising`` forward (torch or ONNX)."""

    def estimate(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        ids = labels if labels is not None else torch.full((len(x),), classes, dtype=torch.long)
        rows = torch.cat([x.flatten(1).float(), t.float()[:, None], ids.float()[:, None]], dim=1)
        return torch.as_tensor(forward(rows)).float().reshape(len(x), *shape)

    return estimate


def _trajectory(model: nn.Module, rows: torch.Tensor, steps: int) -> torch.Tensor:
    """Calibration rows for int8: the U-Net's inputs along the sampling of a few images (every step, both halves
    of classifier-free guidance)."""
    seen: list[torch.Tensor] = []
    net = Denoising(model.net_ema).eval()

    def record(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        ids = labels if labels is not None else torch.full((len(x),), model.num_classes, dtype=torch.long)
        batch = torch.cat([x.flatten(1).float(), t.float()[:, None], ids.float()[:, None]], dim=1)
        seen.append(batch)
        return net(batch).reshape(x.shape)

    _draw(model, rows, record, steps)
    return torch.cat(seen)


def _draw(model: nn.Module, rows: torch.Tensor, denoiser: Callable | None, steps: int | None = None) -> torch.Tensor:
    """A diffusion model's images from rows of starting noise (flattened) and class ids, by its own sampler."""
    noise = rows[:, :-1].reshape(len(rows), *model.noise_shape)
    labels = rows[:, -1].long() if model.conditional else None
    return model.sample(len(rows), labels=labels, noise=noise, denoiser=denoiser, steps=steps)


def compress_generator(run: Run, samples: int = SAMPLES, seed: int = 0, progress: Progress = None) -> dict[str, Any]:
    """Quantise and export a GAN run's generator; compare the FID of each variant's images.

    Args:
        run: a ``Run`` of ``dcgan`` or ``cgan``.
        samples: images each variant draws (at most the test split's size).
        seed: seeds the noise, the classes' order and the KID subsets.
        progress: a bar over the variants, with elapsed time and time left: True on stderr, or a text
            stream; None (default) or False draws nothing.

    Returns:
        The dict written to ``results/compress.json``: ``variants`` (name, description, FID, KID,
        precision, recall, FID change against fp32, class agreement, pixel difference, size, time per 64
        images), ``features``, ``notes``, ``warnings``.

    Raises:
        ConfigError: a ``ddpm`` run, or a test split too small to measure FID.
    """
    model = run.model.eval()
    diffusion = hasattr(model, "net_ema")
    if not diffusion and not hasattr(model, "generator_ema"):
        raise ConfigError(
            f"compress draws a generative run's images (dcgan, cgan, ddpm); {type(model).__name__} is none"
        )
    bundle = run.data()
    test_x, test_y = bundle.test.tensors
    n = min(samples, len(test_x))
    if n < MIN_SAMPLES:
        raise ConfigError(f"the test split has {n} images; measuring a generator's FID needs at least {MIN_SAMPLES}")
    chosen = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(seed))[:n]
    real, labels = test_x[chosen].float(), test_y[chosen].long()
    classifier, features = run_feature_classifier(run.path, bundle, seed)
    extractor = FeatureExtractor(classifier)
    if diffusion:
        noise = torch.randn((n, *model.noise_shape), generator=torch.Generator().manual_seed(seed)).flatten(1)
        rows = torch.cat([noise, labels.float()[:, None]], dim=1)
        variants, notes, onnx = _diffusion_variants(run, model, rows)
        drawing = model.net_ema
    else:
        drawing = Drawing(model.generator_ema, model.conditional).eval()
        noise = model.noise(n, torch.Generator().manual_seed(seed))
        rows = torch.cat([noise, labels.float()[:, None]], dim=1)
        variants, notes, onnx = _generator_variants(run, drawing, rows)
    calls = DIFFUSION_LATENCY_CALLS if diffusion else LATENCY_CALLS  # a diffusion draw runs the U-Net 50 times
    records = _score_variants(variants, rows, real, classifier, extractor, seed, progress, calls)
    base = records[0]
    for record in records:
        record["size_ratio"] = round(base["size_bytes"] / record["size_bytes"], 3) if record["size_bytes"] else None
        record["speedup"] = round(base["ms_per_64_images"] / record["ms_per_64_images"], 3)
    warnings = [
        f"{r['name']} raises the FID by {r['fid_change']:.1%} ({base['fid']:.2f} -> {r['fid']:.2f}), more than "
        f"{FID_TOLERANCE:.0%}: its images are measurably worse"
        for r in records[1:]
        if not r["keeps_quality"]
    ]
    result = {
        "kind": "generator",
        "task": "generate",
        "model": "diffusion U-Net (its moving average), sampled by DDIM" if diffusion else "generator (moving average)",
        "sample_steps": model.sample_steps if diffusion else None,
        "samples": n,
        "seed": seed,
        "fid_tolerance": FID_TOLERANCE,
        "parameters": count_parameters(drawing)[0],
        "features": features,
        "variants": records,
        "onnx": onnx,
        "notes": notes,
        "warnings": warnings,
        "latency": f"{LATENCY_BATCH} images per call, median of {calls} calls",
    }
    run.write_result("compress", result)
    return result


Variant = tuple[str, str, Callable[[torch.Tensor], torch.Tensor], int, "str | None"]


def _diffusion_variants(run: Run, model: nn.Module, rows: torch.Tensor) -> tuple[list[Variant], list[str], Any]:
    """fp32, torch dynamic int8, ONNX and ONNX Runtime int8 copies of a diffusion U-Net, each drawing images with
    the model's own sampler (``sample_steps`` DDIM steps, its guidance) from the rows' noise and classes."""
    net = Denoising(model.net_ema).eval()
    shape, classes = net.shape, model.num_classes
    variants: list[Variant] = [
        ("fp32", "the averaged U-Net (PyTorch, fp32)", lambda r: _draw(model, r, None), serialized_size(net), None)
    ]
    notes: list[str] = []
    try:
        quantized = quantization.dynamic_quantize(net)
        step = _denoiser(torch_forward(quantized), shape, classes)
        variants.append(("int8-torch-dynamic", "PyTorch dynamic int8 (Linear weights int8: time, class, attention)",
                         lambda r: _draw(model, r, step), pickled_state_size(quantized), None))  # fmt: skip
    except Exception as exc:
        notes.append(f"int8-torch-dynamic skipped: {str(exc).splitlines()[0]}")
    onnx: dict[str, Any] | None = None
    folder = run.path / "compressed"
    folder.mkdir(exist_ok=True)
    try:
        calibration = _trajectory(model, rows[:8], None)
        path = folder / "denoiser.onnx"
        exporter = export.export_onnx(net, calibration[:8], path)
        onnx = {
            "file": f"compressed/{path.name}",
            **export.verify_onnx(net, path, calibration[:64], exporter).to_dict(),
        }
        fp32 = _denoiser(export.OnnxModel(path), shape, classes)
        variants.append(("onnx-fp32", f"ONNX ({exporter}) U-Net in ONNX Runtime, the sampler in PyTorch",
                         lambda r: _draw(model, r, fp32), path.stat().st_size, onnx["file"]))  # fmt: skip
        int8 = folder / "denoiser.int8.onnx"
        quantization.ort_quantize(path, int8, calibration, method="ort-static")
        q8 = _denoiser(export.OnnxModel(int8), shape, classes)
        variants.append(("int8-ort-static", "ONNX Runtime static int8 U-Net (QDQ, calibrated along sampling paths)",
                         lambda r: _draw(model, r, q8), int8.stat().st_size, f"compressed/{int8.name}"))  # fmt: skip
    except Exception as exc:
        notes.append(f"ONNX variants skipped: {str(exc).splitlines()[0]}")
    return variants, notes, onnx


def _generator_variants(run: Run, drawing: nn.Module, rows: torch.Tensor) -> tuple[list[Variant], list[str], Any]:
    """fp32, torch dynamic int8, ONNX and ONNX Runtime int8 copies of a GAN's averaged generator."""
    variants: list[Variant] = [
        ("fp32", "the averaged generator (PyTorch, fp32)", torch_forward(drawing), serialized_size(drawing), None)
    ]
    notes: list[str] = []
    try:
        quantized = quantization.dynamic_quantize(drawing)
        variants.append(("int8-torch-dynamic", "PyTorch dynamic int8 (Linear weights int8)", torch_forward(quantized),
                         pickled_state_size(quantized), None))  # fmt: skip
    except Exception as exc:  # no Linear layer, no quantisation engine ...
        notes.append(f"int8-torch-dynamic skipped: {str(exc).splitlines()[0]}")
    onnx: dict[str, Any] | None = None
    folder = run.path / "compressed"
    folder.mkdir(exist_ok=True)
    try:
        path = folder / "generator.onnx"
        exporter = export.export_onnx(drawing, rows[:8], path)
        onnx = {"file": f"compressed/{path.name}", **export.verify_onnx(drawing, path, rows[:64], exporter).to_dict()}
        variants.append(("onnx-fp32", f"ONNX ({exporter}) in ONNX Runtime", export.OnnxModel(path),
                         path.stat().st_size, onnx["file"]))  # fmt: skip
        int8 = folder / "generator.int8.onnx"
        quantization.ort_quantize(path, int8, rows, method="ort-static")
        variants.append(("int8-ort-static", "ONNX Runtime static int8 (QDQ, calibrated on the noise)",
                         export.OnnxModel(int8), int8.stat().st_size, f"compressed/{int8.name}"))  # fmt: skip
    except Exception as exc:  # onnx/onnxruntime missing, an operator without an export or int8 kernel ...
        notes.append(f"ONNX variants skipped: {str(exc).splitlines()[0]}")
    return variants, notes, onnx


def _score_variants(
    variants: list[Variant],
    rows: torch.Tensor,
    real: torch.Tensor,
    classifier: nn.Module,
    extractor: FeatureExtractor,
    seed: int,
    progress: Progress,
    calls: int = LATENCY_CALLS,
) -> list[dict[str, Any]]:
    """Each variant's images from the same rows, scored against the real images and against the first variant's;
    the time of ``calls`` draws of ``LATENCY_BATCH`` images (median)."""
    n = len(rows)
    records: list[dict[str, Any]] = []
    reference: torch.Tensor | None = None
    reference_classes: torch.Tensor | None = None
    bar = progress_bar(len(variants), "compress", progress, unit="variants")
    for name, description, forward, size, file in variants:
        note(bar, f"{name}: {n} images")
        images = torch.cat([forward(rows[i : i + 500]).float() for i in range(0, n, 500)]).clamp(0, 1)
        with torch.no_grad():
            classes = torch.cat([classifier(images[i : i + 500]).argmax(1) for i in range(0, n, 500)])
        record: dict[str, Any] = {
            "name": name,
            "description": description,
            "file": file,
            "size_bytes": size,
            **_distances(extractor, real, images, seed),
            "ms_per_64_images": _latency(forward, rows[:LATENCY_BATCH], calls),
        }
        if reference is None:
            reference, reference_classes = images, classes
        else:
            record["fid_change"] = round(record["fid"] / records[0]["fid"] - 1, 4) if records[0]["fid"] else None
            record["same_class"] = round(float((classes == reference_classes).float().mean()), 4)
            record["pixel_mae"] = round(float((images - reference).abs().mean()), 6)
            record["keeps_quality"] = record["fid"] <= records[0]["fid"] * (1 + FID_TOLERANCE)
        records.append(record)
        bar.update(1)
    bar.close()
    return records


VARIANT_COLUMNS = ["variant", "size", "FID", "FID change", "precision", "recall", "same class", "ms / 64 images",
                   "speed-up", "smaller"]  # fmt: skip


def variant_rows(result: dict[str, Any]) -> list[list[str]]:
    """The variants of a generator's ``results/compress.json`` as table cells (``VARIANT_COLUMNS``)."""
    return [
        [
            str(v.get("name")),
            cell(v.get("size_bytes") / 1024 if is_number(v.get("size_bytes")) else None, ".1f", " KiB"),
            cell(v.get("fid"), ".2f"),
            cell(v.get("fid_change"), "+.1%") if "fid_change" in v else "",
            cell(v.get("precision"), ".3f"),
            cell(v.get("recall"), ".3f"),
            cell(v.get("same_class"), ".1%") if "same_class" in v else "",
            cell(v.get("ms_per_64_images"), ".2f"),
            cell(v.get("speedup"), ".2f", "x"),
            cell(v.get("size_ratio"), ".2f", "x"),
        ]
        for v in result["variants"]
    ]


def _latency(forward: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, calls: int = LATENCY_CALLS) -> float:
    forward(rows)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        forward(rows)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 4)
