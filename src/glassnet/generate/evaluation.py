"""How good a generator is, measured honestly: FID and KID, class coverage, memorisation, instability.

No network download is possible, so the features are not Inception's: glassnet trains a small
classifier (the ``cnn`` family) on the run's own training split and measures FID and KID
(torchmetrics, with that classifier as the ``feature`` extractor) in the activations of its hidden
layer. Such figures compare generators of the **same data** with each other (and with the two
references written beside them: held-out real images, the floor, and an untrained generator, the
ceiling); they are not comparable with published Inception FIDs, and ``results/generate.json`` says
so in ``features``. Beside them, in the same features, improved precision and recall
(Kynkaanniemi et al., 2019): how many samples look real, and how much of the data's variety the
samples cover.

- **Coverage**: the classifier's label histogram of the samples. A class that gets fewer than a
  tenth of its fair share is *missing*: mode collapse. A conditional model is also scored on
  **agreement**: the share of samples the classifier puts in the class that was asked for.
- **Memorisation**: each sample's pixel distance to its nearest training image, against the test
  images' own nearest-training distances. A sample closer to a training image than 99% of real
  test images are is a *near-copy*; more than 5% near-copies (five times what chance gives) is a
  warning.
- **Instability** in plain words: the discriminator's loss collapsing to about 0 (it wins; the
  generator stops learning), missing classes, the validation MMD rising again late in training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.errors import DataError
from glassnet.runs import RunDir

MAX_SAMPLES = 2000  # generated images evaluated (and real test images compared with)
PR_NEIGHBOURS = 3  # k of improved precision and recall (the paper's choice)
MIN_SAMPLES = 10  # fewer test images than this: no evaluation (the reason is written instead)
NOISY_SAMPLES = 200  # fewer than this: the figures are computed with a warning that they are noisy
CLASSIFIER_EXAMPLES = 30_000  # examples the feature classifier sees in training (epochs scale to reach it)
CLASSIFIER_IMAGES = 20_000  # at most this many training images (a seeded subset) teach the feature classifier
CLASSIFIER_DIR = "feature_classifier"
MISSING_SHARE = 0.1  # a class is missing when it gets less than this share of its fair share of samples
NEAR_COPY_PERCENTILE = 1.0
NEAR_COPY_WARNING = 0.05
COLLAPSED_D_LOSS = 0.05
MMD_NOISE = 0.01  # validation MMDs closer than this are within the estimate's noise (512 images)
FEATURES_NOTE = (
    "FID and KID here are measured in the hidden layer of a small CNN classifier trained on this run's training "
    "split, not in Inception-v3 features: compare them only with other generators of the same data (and with the "
    "real-image floor and untrained-generator ceiling beside them), never with published Inception FIDs"
)


class FeatureExtractor(nn.Module):
    """The hidden-layer activations of a trained ``cnn`` classifier: the feature space of FID and KID.

    Args:
        classifier: a ``cnn`` model (``normalize``, ``features``, ``classifier`` with a hidden layer).
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.network = classifier.eval()
        head = list(classifier.classifier)
        linear = [i for i, layer in enumerate(head) if isinstance(layer, nn.Linear)]
        self.hidden = nn.Sequential(*head[: linear[0] + 2])  # flatten, hidden linear, its activation
        self.num_features = head[linear[0]].out_features

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        net = self.network
        return self.hidden(net.features(net.normalize(images.float()))).float()


@dataclass
class GenerationReport:
    """The evaluation of a generator: what ``results/generate.json`` holds, and its warnings."""

    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def headline(self) -> dict[str, float]:
        """The test figures of ``results/train.json``: ``fid``, ``kid``, ``coverage`` (and ``agreement``)."""
        if "skipped" in self.result:
            return {}
        quality, coverage = self.result["quality"], self.result["coverage"]
        values = {
            "fid": quality["fid"],
            "kid": quality["kid"],
            "coverage": coverage["covered"] / max(len(coverage["classes"]), 1),
        }
        if coverage.get("agreement") is not None:
            values["agreement"] = coverage["agreement"]
        return values

    def to_dict(self) -> dict[str, Any]:
        return {**self.result, "warnings": list(self.warnings)}


def train_feature_classifier(
    bundle: DataBundle, seed: int = 0, device: str | torch.device = "cpu", epochs: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the ``cnn`` whose hidden layer is the feature space of the evaluation.

    Args:
        bundle: the generative run's data (its training split and classes).
        seed: seeds the classifier's training.
        device: where it trains.
        epochs: passes over the training images (default: enough to see ``CLASSIFIER_EXAMPLES`` examples, 2 to
            20); at most ``CLASSIFIER_IMAGES`` of them, a seeded subset, are used.

    Returns:
        ``(classifier, description)``: the trained model (eval mode, CPU) and what the JSON records of it.
    """
    from glassnet.models import create_model
    from glassnet.train import Trainer

    spec = dataclasses.replace(bundle.spec, task="classify", num_outputs=len(bundle.spec.class_names))
    train_x, train_y = split_tensors(bundle.train)
    if len(train_x) > CLASSIFIER_IMAGES:
        keep = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))[:CLASSIFIER_IMAGES]
        train_x, train_y = train_x[keep], train_y[keep]
    if epochs is None:
        epochs = max(2, min(20, math.ceil(CLASSIFIER_EXAMPLES / max(len(train_x), 1))))
    hparams = {"channels": [32, 64], "hidden": 128, "dropout": 0.25}
    classifier = create_model("cnn", spec, **hparams)
    trainer = Trainer(task="classify", max_epochs=epochs, batch_size=128, lr=3e-3, seed=seed, device=device)
    trainer.fit(classifier, TensorDataset(train_x.float(), train_y.long()))
    test_x, test_y = split_tensors(bundle.test)
    accuracy = trainer.evaluate(classifier, TensorDataset(test_x.float(), test_y.long()))["accuracy"]
    classifier.cpu().eval()
    description = {
        "network": "cnn",
        "hparams": hparams,
        "layer": f"hidden layer of the classifier head ({hparams['hidden']} ReLU units)",
        "dimensions": hparams["hidden"],
        "trained_on": f"this run's training split ({len(train_x):,} images, {epochs} epochs, seed {seed})",
        "test_accuracy": round(float(accuracy), 4),
        "inception": False,
        "note": FEATURES_NOTE,
    }
    return classifier, description


def evaluate_generator(
    model: nn.Module,
    bundle: DataBundle,
    run: RunDir | None = None,
    seed: int = 0,
    history: Sequence[dict[str, Any]] = (),
    device: str | torch.device = "cpu",
    samples: int = MAX_SAMPLES,
    classifier: tuple[nn.Module, dict[str, Any]] | None = None,
    across_training: tuple[torch.Tensor, torch.Tensor, Sequence[tuple[int, torch.Tensor]]] | None = None,
) -> GenerationReport:
    """Evaluate a trained GAN against its data; with a run, write ``results/generate.json`` and the figures.

    Args:
        model: a trained ``dcgan`` or ``cgan`` (samples come from its averaged generator).
        bundle: the ``generate`` bundle it trained on.
        run: the run directory to write into (None: write nothing).
        seed: seeds the samples, the classifier and the KID subsets.
        history: the training history (``metrics.jsonl`` records), read for instability warnings.
        device: where the classifier trains.
        samples: generated images to evaluate (at most the test split's size, at least ``MIN_SAMPLES``).
        classifier: a feature classifier already trained (and its description), to reuse.
        across_training: ``(validation images, their labels, [(epoch, samples), ...])``: the samples each
            validation drew during training, scored by ``training_curve`` into ``across_training``.

    Returns:
        The ``GenerationReport``; with fewer than ``MIN_SAMPLES`` test images it holds only ``skipped``
        (the reason) and a warning.
    """
    from glassnet.models import create_model

    test_x, test_y = split_tensors(bundle.test)
    train_x, _ = split_tensors(bundle.train)
    n = min(samples, len(test_x))
    if n < MIN_SAMPLES:
        reason = f"the test split has {n} images; evaluating a generator needs at least {MIN_SAMPLES}"
        report = GenerationReport({"skipped": reason}, [f"no evaluation of the generated images: {reason}"])
        if run is not None:
            run.write_result("generate", report.to_dict())
        return report
    names = list(bundle.spec.class_names)
    chosen = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(seed))[:n]
    real, real_labels = test_x[chosen].float(), test_y[chosen].long()
    model = model.cpu().eval()
    fake = _samples(model, real_labels, seed)
    arch = getattr(model, "glassnet_arch", None)
    untrained = None
    if arch is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            fresh = create_model(arch["name"], bundle.spec, **arch["hparams"]).eval()
        untrained = _samples(fresh, real_labels, seed)
    net, features = classifier or train_feature_classifier(bundle, seed, device)
    if run is not None and classifier is None:
        from glassnet.models import save_model

        save_model(
            net, dataclasses.replace(bundle.spec, task="classify", num_outputs=len(names)), run.path / CLASSIFIER_DIR
        )
        features["weights"] = f"{CLASSIFIER_DIR}/model.safetensors"
    extractor = FeatureExtractor(net)
    train_chosen = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed + 1))[:n]
    quality = {
        "samples": n,
        "real_images": f"{n:,} test images",
        **_distances(extractor, real, fake, seed),
        "reference": {
            "real_train_vs_test": _distances(extractor, real, train_x[train_chosen].float(), seed),
            "untrained_generator": _distances(extractor, real, untrained, seed) if untrained is not None else None,
        },
    }
    coverage = class_coverage(net, fake, real_labels if model.conditional else None, test_y, names, real)
    curve = None
    if across_training is not None:
        images, labels, drawn = across_training
        curve = training_curve(extractor, net, images, labels, drawn, bool(model.conditional), names)
    memorisation = memorisation_check(fake, train_x.float(), real)
    warnings = instability_warnings(history, coverage, memorisation, quality, names)
    if n < NOISY_SAMPLES:
        warnings.append(
            f"only {n} test images to compare with: FID, KID and coverage are noisy; compare runs of this data only "
            "when their differences are large"
        )
    result = {
        "model": arch["name"] if arch else type(model).__name__,
        "conditional": bool(model.conditional),
        "features": features,
        "quality": quality,
        "coverage": coverage,
        "memorisation": {k: v for k, v in memorisation.items() if not k.startswith("_")},
    }
    if curve is not None:
        result["across_training"] = curve
    report = GenerationReport(result, warnings)
    if run is not None:
        from glassnet.generate import figures

        figures.samples_by_class(
            fake, real_labels, coverage["_predicted"], names, model.conditional, run.figure("generate_samples")
        )
        figures.nearest_pairs(fake, train_x, memorisation["_pairs"], run.figure("generate_neighbours"))
        figures.coverage_bars(coverage, run.figure("generate_coverage"))
        if hasattr(model, "noise_shape"):
            figures.interpolation_strip(model, names, seed, run.figure("generate_interpolation"))
        if curve is not None and len(curve["points"]) > 1:
            figures.quality_curves(curve, run.figure("generate_curves"))
        run.write_result("generate", _public(report.to_dict()))
    report.result = _public(report.result)
    return report


def run_feature_classifier(
    run_path: str | os.PathLike[str], bundle: DataBundle, seed: int = 0
) -> tuple[nn.Module, dict[str, Any]]:
    """A run's own feature classifier (``feature_classifier/``, saved by its evaluation) and its description
    (from ``results/generate.json``), or, for a run without one, a classifier trained the same way."""
    saved = Path(run_path) / CLASSIFIER_DIR
    if not (saved / "model.safetensors").is_file():
        return train_feature_classifier(bundle, seed)
    from glassnet.models import load_model

    classifier, _ = load_model(saved)
    features: dict[str, Any] = {"network": "cnn", "inception": False, "note": FEATURES_NOTE}
    try:
        written = json.loads((Path(run_path) / "results" / "generate.json").read_text())
        features.update(written.get("features") or {})
    except (OSError, ValueError):
        pass  # the weights alone still define the feature space
    features["weights"] = f"{CLASSIFIER_DIR}/model.safetensors"
    return classifier.cpu().eval(), features


def split_quality(
    model: nn.Module,
    bundle: DataBundle,
    split: str,
    classifier: Callable[[], tuple[nn.Module, dict[str, Any]]],
    seed: int = 0,
    samples: int = MAX_SAMPLES,
) -> dict[str, Any]:
    """FID, KID, improved precision/recall and class coverage of new samples against one split's images.

    What ``glassnet evaluate`` adds for a generative run: one sample is drawn for each of up to
    ``samples`` images of ``split`` (for a conditional model, of that image's class), and both sets are
    compared in the feature space of ``classifier()`` (called only when the split is large enough: the
    run's own, from ``run_feature_classifier``), so the figures compare with ``results/generate.json``'s.

    Returns:
        ``{"samples", "compared_with", "fid", "kid", "kid_std", "precision", "recall", "coverage",
        "agreement", "missing", "features"}``, or ``{"skipped": reason}`` for a split of fewer than
        ``MIN_SAMPLES`` images or when no feature classifier can be had.
    """
    images, labels = split_tensors(bundle.split(split))
    n = min(samples, len(images))
    if n < MIN_SAMPLES:
        return {"skipped": f"the {split} split has {n} images; evaluating a generator needs at least {MIN_SAMPLES}"}
    try:
        net, features = classifier()
    except DataError as exc:
        return {"skipped": f"no feature classifier for FID: {exc}"}
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    real, real_labels = images[chosen].float(), labels[chosen].long()
    model = model.cpu().eval()
    fake = _samples(model, real_labels, seed)
    names = list(bundle.spec.class_names)
    coverage = class_coverage(net, fake, real_labels if model.conditional else None, labels, names)
    return {
        "samples": n,
        "compared_with": f"{n:,} {split} images",
        **_distances(FeatureExtractor(net), real, fake, seed),
        "coverage": round(coverage["covered"] / max(len(names), 1), 4),
        "agreement": coverage["agreement"],
        "missing": coverage["missing"],
        "features": features,
    }


def training_curve(
    extractor: FeatureExtractor,
    classifier: nn.Module,
    real: torch.Tensor,
    labels: torch.Tensor,
    drawn: Sequence[tuple[int, torch.Tensor]],
    conditional: bool,
    names: list[str],
) -> dict[str, Any]:
    """FID and class coverage of the samples each validation drew during training (the same noise each time).

    Args:
        extractor: the feature space (the feature classifier's hidden layer).
        classifier: the feature classifier (its class of each sample).
        real: the validation images the samples are compared with.
        labels: their classes (the class each sample was drawn for, when conditional).
        drawn: ``(epoch, samples)`` per validation; samples as floats in [0, 1] or 8-bit images.
        conditional: whether the samples were drawn for ``labels``.
        names: class names.

    Returns:
        ``{"images", "classes", "compared_with", "points": [{"epoch", "fid", "covered", "agreement"}, ...]}``.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=extractor, normalize=True, reset_real_features=False)
    real = real.float()
    for start in range(0, len(real), 500):
        fid.update(real[start : start + 500], real=True)
    points = []
    for epoch, samples in drawn:
        fake = samples.float() / 255 if samples.dtype == torch.uint8 else samples.float()
        fid.reset()
        for start in range(0, len(fake), 500):
            fid.update(fake[start : start + 500], real=False)
        coverage = class_coverage(classifier, fake, labels if conditional else None, labels, names)
        points.append(
            {"epoch": int(epoch), "fid": round(float(fid.compute()), 4), "covered": coverage["covered"],
             "agreement": coverage["agreement"]}
        )  # fmt: skip
    return {
        "images": len(real),
        "classes": len(names),
        "compared_with": "the validation images (the same at every epoch)",
        "points": points,
    }


def _public(value: Any) -> Any:
    """``value`` without the private (``_``) keys that carry tensors to the figures."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    return value


def _samples(model: nn.Module, labels: torch.Tensor, seed: int, chunk: int = 500) -> torch.Tensor:
    """One image per label (the label ignored by an unconditional model), drawn with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, len(labels), chunk):
        part = labels[start : start + chunk]
        parts.append(model.sample(len(part), labels=part if model.conditional else None, generator=generator).cpu())
    return torch.cat(parts)


def _distances(extractor: FeatureExtractor, real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict[str, float]:
    """FID and KID (mean and standard deviation over subsets) between two image sets in the extractor's features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    fid = FrechetInceptionDistance(feature=extractor, normalize=True)
    size = min(len(real), len(fake), 1000)
    with warnings.catch_warnings():  # "KID keeps every feature in memory": a few thousand 128-d vectors here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=extractor, subsets=50, subset_size=size, normalize=True)
    for start in range(0, len(real), 500):
        fid.update(real[start : start + 500], real=True)
        kid.update(real[start : start + 500], real=True)
    for start in range(0, len(fake), 500):
        fid.update(fake[start : start + 500], real=False)
        kid.update(fake[start : start + 500], real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    precision, recall = precision_recall(_features(extractor, real), _features(extractor, fake))
    return {
        "fid": round(float(fid.compute()), 4),
        "kid": round(float(kid_mean), 6),
        "kid_std": round(float(kid_std), 6),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
    }


def _features(extractor: FeatureExtractor, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([extractor(images[start : start + 500]) for start in range(0, len(images), 500)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) between two feature sets.

    Each set's manifold is the union of balls around its points reaching their ``k``-th nearest
    neighbour in the same set. Precision: the share of generated points inside the real manifold
    (are the samples realistic?); recall: the share of real points inside the generated manifold
    (do the samples cover the data's variety?). Both in [0, 1].
    """
    real, fake = real.double(), fake.double()
    k_real, k_fake = min(k, len(real) - 1), min(k, len(fake) - 1)
    if k_real < 1 or k_fake < 1:
        return float("nan"), float("nan")
    radius_real = torch.cdist(real, real).kthvalue(k_real + 1, dim=1).values  # + 1: a point is its own nearest
    radius_fake = torch.cdist(fake, fake).kthvalue(k_fake + 1, dim=1).values
    between = torch.cdist(fake, real)  # generated x real
    precision = (between <= radius_real[None, :]).any(1).double().mean()
    recall = (between.transpose(0, 1) <= radius_fake[None, :]).any(1).double().mean()
    return float(precision), float(recall)


@torch.no_grad()
def class_coverage(
    classifier: nn.Module,
    fake: torch.Tensor,
    asked: torch.Tensor | None,
    test_labels: torch.Tensor,
    names: list[str],
    real: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The classifier's label histogram of the samples, the missing classes, and (conditional) agreement.

    Args:
        classifier: the feature classifier.
        fake: generated images.
        asked: the class each image was generated for (conditional models), else None.
        test_labels: the test split's classes (their shares are the reference).
        names: class names.
        real: test images; when given, each class also gets ``test_predicted_share``, the share of these
            images the classifier puts in it: the histogram a perfect generator would get from this
            classifier, which tells its confusions (a shirt read as a coat) from the generator's skew.
    """
    k = len(names)
    predicted = _labels(classifier, fake)
    counts = torch.bincount(predicted, minlength=k)
    reference = torch.bincount(test_labels.long(), minlength=k).double()
    shares = counts.double() / max(len(predicted), 1)
    fair = 1.0 / k
    missing = [names[c] for c in range(k) if shares[c] < MISSING_SHARE * fair]
    classes = [
        {"name": names[c], "samples": int(counts[c]), "share": round(float(shares[c]), 4),
         "test_share": round(float(reference[c] / reference.sum()), 4)}
        for c in range(k)
    ]  # fmt: skip
    if real is not None and len(real):
        read = torch.bincount(_labels(classifier, real), minlength=k).double() / len(real)
        for c in range(k):
            classes[c]["test_predicted_share"] = round(float(read[c]), 4)
    result: dict[str, Any] = {
        "classes": classes,
        "covered": k - len(missing),
        "missing": missing,
        "missing_rule": f"a class is missing when it gets less than {MISSING_SHARE:.0%} of its fair share (1/{k})",
        "agreement": None,
        "_predicted": predicted,
    }
    if asked is not None:
        hit = predicted == asked.long()
        result["agreement"] = round(float(hit.float().mean()), 4)
        for c in range(k):
            mask = asked.long() == c
            classes[c]["agreement"] = round(float(hit[mask].float().mean()), 4) if mask.any() else None
    return result


def _labels(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The classifier's class for each image (on the CPU)."""
    from glassnet.models.outputs import batched_outputs

    return batched_outputs(classifier, images, batch_size=500).argmax(dim=1)


def nearest_distances(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean pixel distance from each query to its nearest image in ``pool``, and that image's index."""
    pool_flat = pool.reshape(len(pool), -1).float()
    best, where = [], []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk].reshape(-1, pool_flat.shape[1]).float()
        distances = torch.cdist(q, pool_flat)
        value, index = distances.min(dim=1)
        best.append(value)
        where.append(index)
    return torch.cat(best), torch.cat(where)


def memorisation_check(fake: torch.Tensor, train: torch.Tensor, test: torch.Tensor, pairs: int = 8) -> dict[str, Any]:
    """Nearest-training-image distances of the samples against those of real test images.

    A sample is a near-copy when it is closer to a training image than ``NEAR_COPY_PERCENTILE``% of
    the test images are to theirs; chance gives about that share, so more than ``NEAR_COPY_WARNING``
    is a warning.
    """
    sample_d, sample_i = nearest_distances(fake, train)
    test_d, _ = nearest_distances(test, train)
    threshold = float(torch.quantile(test_d, NEAR_COPY_PERCENTILE / 100))
    near = sample_d < threshold
    closest = torch.argsort(sample_d)[:pairs]
    return {
        "distance": "Euclidean distance in pixel space to the nearest training image",
        "sample_median": round(float(sample_d.median()), 4),
        "test_median": round(float(test_d.median()), 4),
        "ratio": round(float(sample_d.median() / max(float(test_d.median()), 1e-12)), 4),
        "threshold": round(threshold, 4),
        "threshold_rule": f"the {NEAR_COPY_PERCENTILE:g}st percentile of the test images' nearest-training distances",
        "near_copies": int(near.sum()),
        "near_copy_share": round(float(near.float().mean()), 4),
        "expected_share": NEAR_COPY_PERCENTILE / 100,
        "_pairs": [(int(i), int(sample_i[i]), float(sample_d[i])) for i in closest],
    }


def instability_warnings(
    history: Sequence[dict[str, Any]],
    coverage: dict[str, Any],
    memorisation: dict[str, Any],
    quality: dict[str, Any],
    names: list[str],
) -> list[str]:
    """Plain-word warnings about how training went and what the samples show."""
    warnings = []
    d_losses = [h["train/d_loss"] for h in history if isinstance(h.get("train/d_loss"), (int, float))]
    if d_losses and d_losses[-1] < COLLAPSED_D_LOSS:
        warnings.append(
            f"the discriminator's loss fell to {d_losses[-1]:.3f}: it tells real from generated images almost "
            "perfectly, so the generator gets no useful signal. Lower step.lr_d, keep one discriminator update per "
            "batch (step.d_steps=1) or use a smaller discriminator (model.width)"
        )
    if coverage["missing"]:
        warnings.append(
            f"the samples miss {len(coverage['missing'])} of {len(names)} classes ({', '.join(coverage['missing'])}): "
            "the generator has collapsed onto fewer modes than the data has. Train longer"
            + ("" if coverage.get("agreement") is not None else ", or use the class-conditional cgan")
        )
    agreement = coverage.get("agreement")
    if agreement is not None and agreement < 0.5:
        warnings.append(
            f"the classifier agrees with the class asked for on only {agreement:.0%} of the samples: the generator "
            "largely ignores its class input. Train longer"
        )
    if memorisation["near_copy_share"] > NEAR_COPY_WARNING:
        warnings.append(
            f"{memorisation['near_copy_share']:.0%} of the samples are near-copies of training images (closer than "
            f"99% of real test images are to theirs): the generator memorises. Use more data or train for less long"
        )
    mmd = [(h["epoch"], h["val/mmd"]) for h in history if isinstance(h.get("val/mmd"), (int, float))]
    if len(mmd) >= 3:
        best_epoch, best = min(mmd, key=lambda item: item[1])
        last = mmd[-1][1]
        if best_epoch != mmd[-1][0] and last > 2 * max(best, 0.0) + MMD_NOISE:
            warnings.append(
                f"sample quality got worse late in training: the validation MMD was {best:.4f} at epoch {best_epoch} "
                f"and {last:.4f} at the end (the kept weights are those of the best epoch)"
            )
    ceiling = (quality.get("reference") or {}).get("untrained_generator")
    if ceiling and quality["fid"] >= ceiling["fid"]:
        warnings.append(
            f"the trained generator's FID ({quality['fid']:.2f}) is no better than an untrained one's "
            f"({ceiling['fid']:.2f}): training has not worked"
        )
    return warnings
