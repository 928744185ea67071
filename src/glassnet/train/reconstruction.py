"""The ``reconstruct`` task (loss, metrics, VAE ELBO, anomaly detection) and reconstruction bundles.

Reconstruction data are ``(x, x)`` pairs made from classification data: the target is the input,
so the ``supervised`` step and the ``Trainer`` train autoencoders unchanged
(``task.loss(model(inputs), targets)``).

A variational autoencoder returns a structured output, ``VariationalOutput(reconstruction, kl,
decoder_var)`` (see ``glassnet.models.outputs``): its per-example KL divergence from the prior
(nats) and its Gaussian decoder's variance ``s2``. The loss is then ``MSE + 2 * s2 * mean(kl) / D``
(``D`` values per example), which equals ``2 * s2 / D`` times the negative ELBO plus a constant:
the VAE objective, scaled so its first term is the same MSE as every other autoencoder's. The
metrics add ``kl`` and ``elbo`` (nats per example).

A run trained on some classes only (``normal_classes``) is also an anomaly detector: its test
metrics add the AUROC of the reconstruction error, a threshold and its precision and recall.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.bundle import DataBundle, statistic_axes
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models.autoencoder import anomaly_scores
from glassnet.models.outputs import VariationalOutput, batched_outputs, prediction
from glassnet.train.tasks import Task, TaskContext, register_task

THRESHOLD_PERCENTILE = 95
RECONSTRUCTION_EXAMPLES = 8
VAE_SAMPLES = 32


@register_task
class Reconstruction(Task):
    """Reconstruction of the inputs: mean squared error in natural units, plus a VAE's KL term."""

    name = "reconstruct"
    monitor_modes = {"loss": "min", "mae": "min", "kl": "min", "elbo": "max", "auroc": "max"}
    headline_metrics = ("mae", "auroc", "elbo")

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        reconstruction = prediction(outputs)
        mse = F.mse_loss(reconstruction, targets.reshape(reconstruction.shape))
        if not isinstance(outputs, VariationalOutput):
            return mse
        values = reconstruction[0].numel()
        return mse + 2.0 * outputs.decoder_var * outputs.kl.mean() / values

    def metrics(self, outputs: Any, targets: torch.Tensor) -> dict[str, float]:
        reconstruction = prediction(outputs)
        errors = reconstruction.float() - targets.reshape(reconstruction.shape).float()
        result = {"loss": errors.pow(2).mean().item(), "mae": errors.abs().mean().item()}
        if isinstance(outputs, VariationalOutput):
            result["kl"] = outputs.kl.float().mean().item()
            result["elbo"] = elbo(errors, outputs.kl, float(outputs.decoder_var)).mean().item()
        return result

    def decode(self, outputs: Any) -> dict[str, torch.Tensor]:
        return {"prediction": prediction(outputs).float()}

    def evaluate(self, trainer: Any, model: nn.Module, bundle: DataBundle, split: str) -> dict[str, float]:
        """The metrics, plus the anomaly-detection figures on the test split of a ``normal_classes`` run."""
        metrics = trainer.evaluate(model, bundle.split(split))
        if split == "test" and has_anomalies(bundle):
            metrics.update(anomaly_detection(model, bundle)[0])
        return metrics

    def details(self, context: TaskContext) -> None:
        """Anomaly detection (figures and the ``anomaly`` block), example reconstructions, VAE samples."""
        reconstruction_details(context)

    def comparison_metric(self, bundle: DataBundle) -> str:
        """An anomaly detector is compared on the AUROC of its score, a plain autoencoder on its MAE."""
        return "auroc" if has_anomalies(bundle) else "mae"


def elbo(errors: torch.Tensor, kl: torch.Tensor, decoder_var: float) -> torch.Tensor:
    """Per-example evidence lower bound (nats) under a Gaussian decoder of variance ``decoder_var``.

    ``log p(x|z) - KL = -(sum(e^2) / (2 s2) + D/2 log(2 pi s2)) - KL`` for reconstruction errors ``e``.

    Args:
        errors: ``N x ...`` reconstruction minus input, in natural units.
        kl: ``N`` KL divergences in nats.
        decoder_var: the decoder's variance ``s2`` in natural units.
    """
    flat = errors.reshape(len(errors), -1).float()
    log_likelihood = -(
        flat.pow(2).sum(dim=1) / (2 * decoder_var) + 0.5 * flat.shape[1] * math.log(2 * math.pi * decoder_var)
    )
    return log_likelihood - kl.float()


def evaluate_reconstruction(
    model: nn.Module, data: Dataset, batch_size: int = 1024, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """The ``reconstruct`` task's metrics over ``data`` (eval mode, no gradients; a VAE adds ``kl`` and ``elbo``).

    Args:
        model: an autoencoder; its mode is restored afterwards.
        data: a dataset of ``(input, target)`` pairs, e.g. a reconstruction bundle's split.
        batch_size: examples per forward pass.
        device: where the model runs.
    """
    if len(data) == 0:
        raise DataError("cannot evaluate on an empty dataset")
    from glassnet.data.bundle import split_tensors

    inputs, targets = split_tensors(data)
    model.to(device)
    return Reconstruction().metrics(batched_outputs(model, inputs, batch_size, device), targets)


def has_anomalies(bundle: DataBundle) -> bool:
    """Whether ``bundle`` is a reconstruction bundle trained on some classes only."""
    return bundle.info.get("normal_classes") is not None and "test_labels" in bundle.info


def anomaly_detection(model: nn.Module, bundle: DataBundle) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """How well an autoencoder's reconstruction error tells the normal classes from the others.

    On the test split, examples whose class is not in ``bundle.info["normal_classes"]`` are the
    anomalies. The threshold is the 95th percentile of the scores of the validation split (normal
    classes only; the training split when there is no validation split), so about one normal
    example in twenty is flagged; precision and recall are those of ``score > threshold``.

    Args:
        model: a trained autoencoder.
        bundle: a reconstruction bundle made with normal classes (``reconstruction_bundle``).

    Returns:
        ``(metrics, scores, abnormal)``: ``auroc`` (when the test split holds both kinds),
        ``threshold``, ``precision`` and ``recall``; the test scores; the test examples' abnormal mask.
    """
    from sklearn.metrics import roc_auc_score

    labels = torch.as_tensor(bundle.info["test_labels"])
    abnormal = (~torch.isin(labels, torch.as_tensor(bundle.info["normal_classes"]))).numpy()
    scores = anomaly_scores(model, bundle.test.tensors[0]).numpy()
    reference = bundle.val if len(bundle.val) else bundle.train
    threshold = float(np.percentile(anomaly_scores(model, reference.tensors[0]).numpy(), THRESHOLD_PERCENTILE))
    flagged = scores > threshold
    hits = int((flagged & abnormal).sum())
    metrics: dict[str, float] = {}
    if abnormal.any() and not abnormal.all():
        metrics["auroc"] = round(float(roc_auc_score(abnormal, scores)), 6)
    metrics["threshold"] = float(f"{threshold:.6g}")  # significant digits: scores can be tiny
    metrics["precision"] = round(hits / max(int(flagged.sum()), 1), 6)
    metrics["recall"] = round(hits / max(int(abnormal.sum()), 1), 6)
    return metrics, scores, abnormal


def reconstruction_details(context: TaskContext) -> None:
    """Anomaly-detection metrics and figures, example reconstructions and VAE samples (drawn with the seed)."""
    from glassnet.figures import reconstruction as figures

    bundle, model, run, results = context.bundle, context.model, context.run, context.results
    inputs = bundle.test.tensors[0]
    names = bundle.info.get("class_names") or []
    labels = bundle.info.get("test_labels")
    scores = abnormal = None
    if has_anomalies(bundle):
        metrics, scores, abnormal = anomaly_detection(model, bundle)
        results["test"].update(metrics)
        results["anomaly"] = {
            "normal_classes": [names[i] for i in bundle.info["normal_classes"]],
            "threshold_percentile": THRESHOLD_PERCENTILE,
            "threshold_from": "val" if len(bundle.val) else "train",
            "test_normal": int((~abnormal).sum()),
            "test_abnormal": int(abnormal.sum()),
        }
        figures.score_histogram(scores[~abnormal], scores[abnormal], metrics["threshold"], run.figure("anomaly_scores"))
    chosen = _reconstruction_indices(len(inputs), abnormal)
    titles = [
        (names[labels[i]] if names and labels else f"test #{i}")
        + (f"\nscore {scores[i]:.3g}" if scores is not None else "")
        for i in chosen
    ]
    reconstructed = prediction(batched_outputs(model, inputs[chosen]))
    originals, outputs = _display_units(bundle.spec, inputs[chosen], reconstructed)
    figures.reconstruction_pairs(
        originals,
        outputs,
        bundle.spec.modality,
        run.figure("reconstructions"),
        titles=titles,
        ylabel="standardised value" if bundle.spec.modality == "tabular" else "value",
    )
    if callable(getattr(model, "sample", None)) and bundle.spec.modality == "image":
        generator = torch.Generator().manual_seed(context.seed)
        samples = model.sample(VAE_SAMPLES, generator=generator)
        figures.sample_grid(samples.cpu().numpy(), run.figure("vae_samples"))


def _reconstruction_indices(count: int, abnormal: np.ndarray | None) -> list[int]:
    """The first test examples; half of them normal and half abnormal when there are anomalies."""
    if abnormal is None:
        return list(range(min(count, RECONSTRUCTION_EXAMPLES)))
    half = RECONSTRUCTION_EXAMPLES // 2
    picked = np.concatenate([np.flatnonzero(~abnormal)[:half], np.flatnonzero(abnormal)[:half]])
    return sorted(int(i) for i in picked)


def _display_units(spec: DataSpec, originals: torch.Tensor, outputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Natural units, except table columns, standardised so that columns of any scale share one axis."""
    if spec.modality == "tabular" and spec.input_mean is not None and spec.input_std is not None:
        mean, std = torch.tensor(spec.input_mean), torch.tensor(spec.input_std)
        originals, outputs = (originals - mean) / std, (outputs - mean) / std
    return originals.numpy(), outputs.numpy()


def reconstruction_bundle(bundle: DataBundle, normal_classes: Sequence[int | str] | None = None) -> DataBundle:
    """A ``reconstruct`` bundle (targets = inputs) from an in-memory classification bundle.

    For anomaly detection, train and validation keep only ``normal_classes``; the test split keeps
    every example, and its original class indices go to ``info["test_labels"]`` so that anomaly
    scores can be compared with them (e.g. AUROC). Input statistics are refitted on the kept
    training examples.

    Args:
        bundle: a classification bundle whose splits are ``TensorDataset``s of ``(inputs, labels)``.
        normal_classes: class indices or names to train on; None keeps every class.

    Returns:
        A new bundle; its spec is the original with ``task="reconstruct"``, ``num_outputs`` the
        number of values per example, and no class names (they move to ``info["class_names"]``).

    Raises:
        DataError: the bundle is not classification data held in memory, or a kept split is empty.
        ConfigError: a normal class is unknown.
    """
    spec = bundle.spec
    if spec.task != "classify":
        raise DataError(f"reconstruction_bundle needs a classification bundle. Received: task={spec.task!r}")
    splits = {name: _tensors(bundle.split(name), name) for name in ("train", "val", "test")}
    keep = None if normal_classes is None else _class_indices(normal_classes, spec.class_names, spec.num_outputs)
    train_x = _kept(*splits["train"], keep)
    if len(train_x) == 0:
        raise DataError(f"no training examples of the normal classes {list(normal_classes or [])}")
    val_x = _kept(*splits["val"], keep)
    test_x, test_labels = splits["test"]
    new_spec = dataclasses.replace(
        spec,
        task="reconstruct",
        num_outputs=math.prod(spec.input_shape),
        class_names=(),
        target_mean=None,
        target_std=None,
        **_statistics(train_x, spec.modality, spec.input_mean is not None),
    )
    info: dict[str, Any] = {
        **bundle.info,
        "source_task": "classify",
        "class_names": list(spec.class_names),
        "normal_classes": None if keep is None else sorted(keep),
        "test_labels": test_labels.tolist(),
    }
    return DataBundle(
        TensorDataset(train_x, train_x), TensorDataset(val_x, val_x), TensorDataset(test_x, test_x), new_spec, info
    )


def _tensors(dataset: Dataset, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2):
        raise DataError(
            f"reconstruction_bundle needs in-memory splits (TensorDataset of inputs and labels); the {name} "
            f"split is a {type(dataset).__name__}"
        )
    return dataset.tensors[0], dataset.tensors[1]


def _class_indices(classes: Sequence[int | str], names: tuple[str, ...], count: int) -> set[int]:
    indices = set()
    for item in classes:
        if isinstance(item, str) and item in names:
            indices.add(names.index(item))
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < count:
            indices.add(item)
        else:
            raise ConfigError(
                f"normal_classes must be class names ({', '.join(names) or 'none'}) or indices 0..{count - 1}. "
                f"Received: {item!r}"
            )
    return indices


def _kept(inputs: torch.Tensor, labels: torch.Tensor, keep: set[int] | None) -> torch.Tensor:
    if keep is None:
        return inputs
    mask = torch.isin(labels, torch.tensor(sorted(keep), dtype=labels.dtype))
    return inputs[mask]


def _statistics(x: torch.Tensor, modality: str, standardize: bool) -> dict[str, Any]:
    """Input mean/std refitted on the kept training examples (only where the spec had statistics)."""
    if not standardize:
        return {}
    axes = statistic_axes(modality, x.ndim)
    mean = x.float().mean(dim=axes)
    std = x.float().std(dim=axes) if len(x) > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return {"input_mean": tuple(mean.reshape(-1).tolist()), "input_std": tuple(std.reshape(-1).tolist())}
