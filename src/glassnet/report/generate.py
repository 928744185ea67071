"""Report section of a generative run: samples per class, quality figures (and which features they
are in), class coverage, nearest training neighbours and the warnings of ``results/generate.json``."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, key_values, num, section, table
from glassnet.report.validate import ANY, NUMBER, TEXT

# what the section reads of results/generate.json: checked before it is read
_GENERATE = {
    "model": TEXT,
    "conditional": ANY,
    "features": {"layer": TEXT, "trained_on": TEXT, "test_accuracy": NUMBER, "note": TEXT},
    "quality": {"samples": NUMBER, "fid": NUMBER, "kid": NUMBER, "reference": ANY},
    "coverage": {"classes": [{"name": ANY, "share": NUMBER, "test_share": NUMBER}], "covered": NUMBER, "missing": ANY},
    "memorisation": {"sample_median": NUMBER, "test_median": NUMBER, "near_copy_share": NUMBER, "threshold": NUMBER},
    "warnings": [TEXT],
}


@section("Generated images", order=56)
def generated_images(ctx: ReportContext) -> str | None:
    """Samples, FID/KID against their references, coverage and memorisation of a generative run."""
    result = ctx.result("generate")
    if not result:
        return None
    if "skipped" in result:
        return f"<p>No evaluation of the generated images: {esc(result['skipped'])}.</p>"
    ctx.check("generate", result, _GENERATE)
    parts = [_warnings(result["warnings"]), _optimisers(ctx)]
    samples = ctx.figure("generate_samples", "generated images, one row per class")
    if samples:
        parts.append("<h3>Samples</h3>" + samples)
    progress = ctx.figure("generate_progress", "the same noise's samples after each validation, top to bottom")
    curves = ctx.figure("generate_curves", "FID and class coverage of each validation's samples")
    if progress or curves:
        parts.append(
            "<h3>Across training</h3>" + (progress or "") + _curve(result.get("across_training")) + (curves or "")
        )
    strip = ctx.figure("generate_interpolation", "images from noise interpolated between two draws, one row each")
    if strip:
        parts.append("<h3>Latent interpolation</h3>" + strip)
    parts.append(_quality(result))
    parts.append(_coverage(result))
    coverage = ctx.figure("generate_coverage", "share of generated images per class beside the test split's")
    if coverage:
        parts.append(coverage)
    parts.append(_memorisation(result["memorisation"]))
    pairs = ctx.figure("generate_neighbours", "the generated images closest to a training image, above it")
    if pairs:
        parts.append(pairs)
    return "".join(parts)


def _curve(curve: dict[str, Any] | None) -> str:
    """One sentence on the FID and coverage of the validations' samples, first and best."""
    points = (curve or {}).get("points") or []
    if len(points) < 2 or not all(isinstance(p.get("fid"), (int, float)) for p in points):
        return ""
    best = min(points, key=lambda p: p["fid"])
    return (
        f"<p>Each validation's {num(curve.get('images'), ',')} samples, scored after training in the same features "
        f"against the validation images: FID {fmt(points[0]['fid'])} after epoch {esc(points[0]['epoch'])}, "
        f"{fmt(points[-1]['fid'])} after epoch {esc(points[-1]['epoch'])} (best {fmt(best['fid'])} at epoch "
        f"{esc(best['epoch'])}); classes covered {esc(points[0]['covered'])} then {esc(points[-1]['covered'])}.</p>"
    )


def _warnings(warnings: list[str]) -> str:
    if not warnings:
        return '<p class="note">No instability, mode collapse or memorisation was detected.</p>'
    return "<ul>" + "".join(f"<li><strong>warning:</strong> {esc(w)}</li>" for w in warnings) + "</ul>"


def _optimisers(ctx: ReportContext) -> str:
    """How the networks were trained (the step's own optimisers, not the configured ``optimizer``/``lr``)."""
    step = ((ctx.result("train") or {}).get("training") or {}).get("step") or {}
    if step.get("name") == "diffusion":
        return (
            f'<p class="note">Trained with the <code>diffusion</code> step: Adam (lr {esc(step.get("lr"))}, '
            f"gradients clipped to norm {esc(step.get('clip'))}) on the noise-prediction error, "
            f"{num(step.get('drop_label'), '.0%')} of the images without their class (classifier-free guidance), and a "
            f"moving average of the U-Net (decay {esc(step.get('ema'))}) that every sample here comes from.</p>"
        )
    if step.get("name") != "gan":
        return ""
    return (
        f'<p class="note">Trained with the <code>gan</code> step: two Adam optimisers (generator lr '
        f"{esc(step.get('lr_g'))}, discriminator lr {esc(step.get('lr_d'))}, betas {esc(step.get('betas'))}, "
        f"{esc(step.get('d_steps'))} discriminator update(s) per batch, constant rates), and a moving average of the "
        f"generator (decay {esc(step.get('ema'))}) that every sample here comes from. The optimiser, learning rate, "
        "weight decay and schedule of the training settings do not apply to it.</p>"
    )


def _quality(result: dict[str, Any]) -> str:
    quality, features = result["quality"], result["features"]
    reference = quality.get("reference") or {}
    measured = [("this generator", quality), ("real training images (floor)", reference.get("real_train_vs_test")),
                ("untrained generator (ceiling)", reference.get("untrained_generator"))]  # fmt: skip
    rows = [
        [
            name,
            num(scores["fid"], ".2f"),
            num(scores["kid"], ".4f"),
            num(scores.get("precision"), ".1%"),
            num(scores.get("recall"), ".1%"),
        ]  # fmt: skip
        for name, scores in measured
        if scores
    ]
    return (
        f"<h3>Quality</h3><p>FID and KID between {fmt(quality['samples'])} generated and as many test images, in the "
        f"features of the {esc(features['layer'])} of a CNN trained on {esc(features['trained_on'])} (test accuracy "
        f"{num(features['test_accuracy'], '.2%')}). <strong>These are not Inception features</strong>: "
        f"{esc(features['note'])}. Precision: the share of samples inside the test images' feature manifold "
        "(realism); recall: the share of test images inside the samples' (variety).</p>"
        + table(["images", "FID (lower is better)", "KID", "precision", "recall"], rows)
    )


def _coverage(result: dict[str, Any]) -> str:
    coverage = result["coverage"]
    classes = coverage["classes"]
    conditional = coverage.get("agreement") is not None
    read = all("test_predicted_share" in c for c in classes)  # runs evaluated before it lack the column
    header = (
        ["class", "share of samples", "share of test images"]
        + (["test images the classifier puts here"] if read else [])
        + (["agreement"] if conditional else [])
    )
    rows = [
        [c["name"], num(c["share"], ".1%"), num(c["test_share"], ".1%")]
        + ([num(c["test_predicted_share"], ".1%")] if read else [])
        + ([num(c.get("agreement"), ".1%")] if conditional else [])
        for c in classes
    ]
    missing = coverage["missing"]
    text = (
        f"{fmt(coverage['covered'])} of {len(classes)} classes covered"
        + (f"; missing: {esc(', '.join(map(str, missing)))} (mode collapse)" if missing else "")
        + "."
    )
    if conditional:
        text += (
            f" The classifier puts {num(coverage['agreement'], '.1%')} of the samples in the class they were "
            "generated for."
        )
    if read:
        text += (
            " The classifier labels real test images with its own mistakes too: the shares it gives them are what a "
            "perfect generator would get, so a sample share far from that column is the generator's skew."
        )
    return f"<h3>Class coverage</h3><p>{text} {esc(coverage.get('missing_rule', ''))}.</p>" + table(header, rows)


def _memorisation(memo: dict[str, Any]) -> str:
    rows = [
        ["median distance of a sample to its nearest training image", num(memo["sample_median"], ".3f")],
        ["median distance of a test image to its nearest training image", num(memo["test_median"], ".3f")],
        [f"near-copies (closer than {num(memo['threshold'], '.3f')})", num(memo["near_copy_share"], ".1%")],
    ]
    return (
        "<h3>Memorisation</h3><p>Pixel distances to the nearest training image: samples that are copies of training "
        "images sit far below real test images. A near-copy is closer than 99% of test images are.</p>"
        + key_values(rows)
    )
