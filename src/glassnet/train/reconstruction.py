"""The ``reconstruct`` task (loss, metrics, VAE ELBO) and reconstruction bundles made from classification data.

Reconstruction data are ``(x, x)`` pairs: the target is the input, so ``SupervisedStep`` and the
``Trainer`` train autoencoders unchanged (``task.loss(model(inputs), targets)``).

Variational autoencoders add a KL term. The task sees only outputs and targets, so a VAE attaches
two attributes to the reconstruction tensor it returns (see ``glassnet.models.autoencoder``):

- ``kl``: per-example KL divergence of the posterior from the prior, in nats (with gradients);
- ``decoder_var``: the variance ``s2`` of its Gaussian decoder, in natural units.

The loss is then ``MSE + 2 * s2 * mean(kl) / D`` (``D`` values per example), which equals
``2 * s2 / D`` times the negative ELBO plus a constant: the VAE objective, scaled so its first term
is the same MSE as every other autoencoder's. The metrics add ``kl`` and ``elbo`` (nats per
example) when the outputs carry them. ``Trainer.evaluate`` concatenates per-batch outputs, which
drops the attributes; ``evaluate_reconstruction`` evaluates batch by batch and keeps them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from glassnet.data.bundle import DataBundle, statistic_axes
from glassnet.errors import ConfigError, DataError
from glassnet.train.tasks import Task, register_task


@register_task
class Reconstruction(Task):
    """Reconstruction of the inputs: mean squared error in natural units, plus a VAE's KL term."""

    name = "reconstruct"
    monitor_modes = {"loss": "min", "mae": "min", "kl": "min", "elbo": "max"}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mse = F.mse_loss(outputs, targets.reshape(outputs.shape))
        kl = getattr(outputs, "kl", None)
        if kl is None:
            return mse
        values = outputs[0].numel()
        return mse + 2.0 * outputs.decoder_var * kl.mean() / values

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        kl = getattr(outputs, "kl", None)
        errors = outputs.float() - targets.reshape(outputs.shape).float()
        result = {"loss": errors.pow(2).mean().item(), "mae": errors.abs().mean().item()}
        if kl is not None:
            result["kl"] = kl.float().mean().item()
            result["elbo"] = elbo(errors, kl, outputs.decoder_var).mean().item()
        return result

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prediction": outputs.float()}


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
    """The task's metrics over ``data``, evaluated batch by batch so a VAE's ``kl`` and ``elbo`` survive.

    Args:
        model: an autoencoder; it runs in eval mode without gradients (its mode is restored).
        data: a dataset of ``(input, target)`` pairs, e.g. a reconstruction bundle's split.
        batch_size: examples per forward pass.
        device: where the model runs.

    Returns:
        Example-weighted means of ``loss``, ``mae`` and, for VAEs, ``kl`` and ``elbo``.
    """
    if len(data) == 0:
        raise DataError("cannot evaluate on an empty dataset")
    task, totals, count = Reconstruction(), {}, 0
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            for inputs, targets in _batches(data, batch_size):
                batch = task.metrics(model(inputs.to(device)), targets.to(device))
                for key, value in batch.items():
                    totals[key] = totals.get(key, 0.0) + value * len(inputs)
                count += len(inputs)
    finally:
        model.train(was_training)
    return {key: value / count for key, value in totals.items()}


def _batches(data: Dataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, TensorDataset):  # slicing in-memory tensors avoids per-example collation
        inputs, targets = data.tensors[:2]
        for begin in range(0, len(inputs), batch_size):
            yield inputs[begin : begin + batch_size], targets[begin : begin + batch_size]
        return
    yield from DataLoader(data, batch_size=batch_size)


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
