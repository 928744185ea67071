"""Self-supervised pretraining by contrast (SimCLR): the ``contrastive`` task.

A contrastive run learns a representation from images alone: two random views of each image
(crop and resize, flip, brightness and contrast) go through the network, and the NT-Xent loss
(Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", 2020) pulls
the two views of an image together and pushes the other images of the batch away. The network is
an ordinary registry model (``cnn``, ``resnet``, ``mobilenet_v2``) whose head is sized to the
projection (``num_outputs`` = the projection's dimension, 128 by default), so a later run loads
every layer but that head with ``pretrained=RUN`` and fine-tunes it on the labels there are
(docs/transfer.md).

Labels are never used to train. They are used to *measure*: the representation is the input of
the model's last linear layer (what a fine-tuned head will see), and ``knn_accuracy`` is the
accuracy of a 20-nearest-neighbour vote (cosine similarity, temperature-weighted, the monitor of
Wu et al. 2018 and of the SimCLR/DINO code bases) of a split's representations against those of
(a sample of) the training split. ``loss`` is the NT-Xent loss of two seeded views of the split.
The run keeps the epoch with the lowest validation loss unless ``monitor=val/knn_accuracy``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.errors import ConfigError, DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.tasks import Task, register_task

PROJECTION_DIM = 128
VALIDATION_IMAGES = 1024  # views scored for the validation loss
BANK_IMAGES = 5000  # training images whose representations the nearest-neighbour vote uses
NEIGHBOURS = 20
VOTE_TEMPERATURE = 0.07
VIEW_SEED = 4321


def contrastive_bundle(bundle: DataBundle, dim: int = PROJECTION_DIM) -> DataBundle:
    """The ``contrastive`` bundle of an image bundle: same splits (labels kept for measuring), ``dim`` outputs.

    Raises:
        DataError: the data is not ``C x H x W`` images.
        ConfigError: ``dim`` is not a positive integer.
    """
    spec = bundle.spec
    if spec.modality != "image" or len(spec.input_shape) != 3:
        raise DataError(
            f"contrastive pretraining (step.name=simclr) learns from C x H x W images; dataset "
            f"{spec.name or '(unnamed)'!r} is {spec.modality} data of shape {list(spec.input_shape)}"
        )
    if isinstance(dim, bool) or not isinstance(dim, int) or not 2 <= dim <= 4096:
        raise ConfigError(f"step.dim must be an integer in [2, 4096]. Received: step.dim={dim!r}")
    names = spec.class_names if spec.task == "classify" else ()
    new_spec = dataclasses.replace(spec, task="contrastive", num_outputs=dim, class_names=names)
    train, info = bundle.train, {**bundle.info, "source_task": spec.task}
    pool = getattr(bundle, "unlabelled", None)
    if pool is not None and len(pool):  # data.labels_per_class / data.unlabelled: every image pretrains
        images, labels = split_tensors(train)
        extra = split_tensors(pool)[0].to(images.dtype)
        unknown = torch.full((len(extra),), -1, dtype=labels.dtype)  # held back: never in the k-NN bank
        train = torch.utils.data.TensorDataset(torch.cat([images, extra]), torch.cat([labels, unknown]))
        info["pretrained_on"] = {"labelled": len(images), "unlabelled": len(extra)}
    return DataBundle(train, bundle.val, bundle.test, new_spec, info)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The normalised temperature-scaled cross-entropy of SimCLR for two views ``N x D`` of N images.

    Each of the 2N projections must pick its partner view among the 2N - 1 others (cosine
    similarity divided by ``temperature``); the loss is the mean cross-entropy of that choice.
    Its floor is 0 and a random representation scores about ``log(2N - 1)``.
    """
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


class ContrastiveView(nn.Module):
    """SimCLR's augmentation for any ``N x C x H x W`` batch in [0, 1], on the batch's device.

    Each image gets its own random resized crop (area ``crop_scale`` to 1 of the image, aspect
    3/4 to 4/3; the whole image when such a crop does not fit), a horizontal flip with probability
    ``hflip``, and with probability 0.8 a brightness and contrast jitter of up to ``jitter``.
    """

    def __init__(self, crop_scale: float = 0.3, hflip: float = 0.5, jitter: float = 0.4) -> None:
        super().__init__()
        self.crop_scale, self.hflip, self.jitter = crop_scale, hflip, jitter

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, device = len(images), images.device

        def uniform(low: float, high: float) -> torch.Tensor:
            return (low + (high - low) * torch.rand(n, generator=generator)).to(device)

        area = uniform(self.crop_scale, 1.0)
        aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
        width, height = (area * aspect).sqrt(), (area / aspect).sqrt()
        too_big = (width > 1) | (height > 1)  # a crop that does not fit: the whole image, as torchvision does
        width, height = torch.where(too_big, 1.0, width), torch.where(too_big, 1.0, height)
        centre_x, centre_y = (uniform(-1, 1) * (1 - width)), (uniform(-1, 1) * (1 - height))
        flip = torch.where(uniform(0, 1) < self.hflip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 0, 2] = width * flip, centre_x
        theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        views = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if self.jitter > 0:
            apply = (uniform(0, 1) < 0.8).float().view(n, 1, 1, 1)
            brightness = 1 + apply * uniform(-self.jitter, self.jitter).view(n, 1, 1, 1)
            contrast = 1 + apply * uniform(-self.jitter, self.jitter).view(n, 1, 1, 1)
            mean = views.mean(dim=(1, 2, 3), keepdim=True)
            views = ((views * brightness - mean) * contrast + mean).clamp(0, 1)
        return views.to(images.dtype)


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (its head): its input is the representation a fine-tuned head sees."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(model).__name__} has no linear head to take the representation before")
    return linears[-1]


@torch.no_grad()
def representations(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """L2-normalised inputs of the model's last linear layer for ``images`` (eval mode), on the CPU."""
    head, captured = last_linear(model), []
    handle = head.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().float().cpu()))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return F.normalize(torch.cat(captured).flatten(1), dim=1)


def knn_accuracy(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    labels: torch.Tensor,
    k: int = NEIGHBOURS,
    temperature: float = VOTE_TEMPERATURE,
    classes: int | None = None,
) -> float:
    """Accuracy of a weighted k-nearest-neighbour vote (cosine similarity) of ``queries`` among ``bank``."""
    classes = classes or int(max(bank_labels.max(), labels.max())) + 1
    k = min(k, len(bank))
    correct = 0
    for start in range(0, len(queries), 1024):
        similarity = queries[start : start + 1024] @ bank.T
        weights, index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(index), classes).scatter_add_(1, bank_labels[index], (weights / temperature).exp())
        correct += int((votes.argmax(dim=1) == labels[start : start + 1024]).sum())
    return correct / max(len(queries), 1)


class ContrastiveValidation:
    """The per-epoch measure of a contrastive run: NT-Xent of two seeded views, and the k-NN accuracy.

    Args:
        images, labels: the split that is measured.
        bank_images, bank_labels: training images the nearest-neighbour vote searches.

    The NT-Xent temperature and the views are the training step's (``trainer.step``), so the
    validation loss is the training objective on held-out images; without a trainer, SimCLR's
    defaults.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        bank_images: torch.Tensor,
        bank_labels: torch.Tensor | None,
    ) -> None:
        self.images, self.labels = images.float(), labels
        self.bank_images, self.bank_labels = bank_images.float(), bank_labels

    def __call__(self, trainer: Any, model: nn.Module) -> dict[str, float]:
        step = getattr(trainer, "step", None)
        temperature = getattr(step, "temperature", 0.5)
        view = getattr(step, "view", None) or ContrastiveView()
        device = next(model.parameters()).device
        scored = self.images[:VALIDATION_IMAGES]
        generator = torch.Generator().manual_seed(VIEW_SEED)
        first, second = view(scored, generator), view(scored, generator)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                z1 = torch.cat([model(first[i : i + 512].to(device)).float() for i in range(0, len(first), 512)])
                z2 = torch.cat([model(second[i : i + 512].to(device)).float() for i in range(0, len(second), 512)])
        finally:
            model.train(was_training)
        scores = {"loss": float(nt_xent(z1, z2, temperature))}
        if self.labels is not None and self.bank_labels is not None:
            bank = representations(model, self.bank_images)
            queries = representations(model, self.images)
            scores["knn_accuracy"] = knn_accuracy(bank, self.bank_labels, queries, self.labels)
        return scores


def _labels_if_classes(labels: torch.Tensor, bundle: DataBundle) -> torch.Tensor | None:
    return labels.long() if bundle.spec.class_names and labels.dim() == 1 else None


@register_task
class Contrastive(Task):
    """A representation learnt from unlabelled images (SimCLR), measured by a nearest-neighbour vote."""

    name = "contrastive"
    default_step = "simclr"
    monitor_modes = {"loss": "min", "knn_accuracy": "max"}
    headline_metrics = ("knn_accuracy", "loss")

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise ConfigError(
            "a contrastive run has no per-example loss: it compares two views of each image (step.name=simclr)"
        )

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        raise ConfigError("a contrastive run is measured by ContrastiveValidation (NT-Xent and k-NN accuracy)")

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The L2-normalised projection of each image: an embedding for search and clustering."""
        return {"prediction": F.normalize(outputs.float().flatten(1), dim=1)}

    def shown(self, spec: Any, value: torch.Tensor) -> Any:
        if not value.is_floating_point() and spec.class_names:
            return spec.class_names[int(value)]
        return [round(float(v), 5) for v in value.reshape(-1)]

    def _measure(self, bundle: DataBundle, images: torch.Tensor, labels: torch.Tensor) -> ContrastiveValidation:
        bank, bank_labels = split_tensors(bundle.train)
        if bank_labels.dim() == 1:  # images of the unlabelled pool (label -1) pretrain but never vote
            bank, bank_labels = bank[bank_labels >= 0], bank_labels[bank_labels >= 0]
        chosen = torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:BANK_IMAGES]
        return ContrastiveValidation(
            images, _labels_if_classes(labels, bundle), bank[chosen], _labels_if_classes(bank_labels[chosen], bundle)
        )

    def validation(self, bundle: DataBundle) -> ContrastiveValidation:
        """The per-epoch validation on the validation split (a sample of the training split when it has none)."""
        if len(bundle.val):
            return self._measure(bundle, *split_tensors(bundle.val))
        images, labels = split_tensors(bundle.train)
        if labels.dim() == 1 and bool((labels >= 0).any()):
            images, labels = images[labels >= 0], labels[labels >= 0]
        chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))[:VALIDATION_IMAGES]
        return self._measure(bundle, images[chosen], labels[chosen])

    def evaluate(self, trainer: Any, model: nn.Module, bundle: DataBundle, split: str) -> dict[str, float]:
        """NT-Xent of two seeded views of the split and its k-NN accuracy against the training split."""
        if not len(bundle.split(split)):
            return {}
        model.to(trainer.device if trainer is not None else "cpu")
        return self._measure(bundle, *split_tensors(bundle.split(split)))(trainer, model)


def _pixel_knn(components: int | None) -> Baseline:
    """k-NN with the same vote on standardised pixels (or their first principal components)."""

    def fit(x: torch.Tensor, y: torch.Tensor) -> Any:
        x, y = x[y >= 0], y[y >= 0]  # the unlabelled pool's images have no label to vote with
        flat = x.reshape(len(x), -1).double()
        mean, std = flat.mean(dim=0), flat.std(dim=0).clamp_min(1e-6)
        basis = None
        if components is not None:
            centred = (flat - mean) / std
            basis = torch.linalg.svd(centred[:BANK_IMAGES], full_matrices=False).Vh[: min(components, flat.shape[1])].T

        def features(images: torch.Tensor) -> torch.Tensor:
            z = (images.reshape(len(images), -1).double() - mean) / std
            return F.normalize((z @ basis if basis is not None else z).float(), dim=1)

        chosen = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:BANK_IMAGES]
        bank, bank_labels = features(x[chosen]), y[chosen].long()
        return lambda images: (features(images), bank, bank_labels)

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        queries, bank, bank_labels = predict(x)
        return {"knn_accuracy": knn_accuracy(bank, bank_labels, queries, y.long())}

    if components is None:
        return Baseline("knn_pixels", "the same 20-nearest-neighbour vote on standardised pixels", fit, score=score)
    return Baseline(
        f"knn_pca{components}",
        f"the same 20-nearest-neighbour vote on the first {components} principal components of the pixels",
        fit,
        score=score,
    )


@register_baselines("contrastive")
def _contrastive(spec: Any, bundle: DataBundle) -> list[Baseline]:
    """What a learnt representation must beat: nearest neighbours in pixel space (labelled data only)."""
    if not spec.class_names:
        return []
    return [_pixel_knn(None), _pixel_knn(64)]
