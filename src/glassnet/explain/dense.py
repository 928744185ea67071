"""Explaining segmentation and detection runs: which pixels make the model find a class in an image.

A dense model answers with a map, not one score per class, so it is explained through a reading of
it as a classifier of *what the image holds* (``ClassEvidence``), one score per object class:

- segmentation: the log of the class's soft share of the image, ``log mean_pixels p_k`` (how much of
  the image the model gives to the class; the background class, when the first class is named
  ``background``, is left out); instance segmentation likewise, from its class logits;
- detection: the class's strongest heatmap logit over the image (its most confident detection).

The explained class of an image is the one with the highest score (the object the model finds most
of, or detects most surely); its true class is the one covering most pixels of the true mask, or
that of the largest true box. Images without objects are not explained. Every method, trust check
and figure of ``glassnet explain`` then applies unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import DataError

MASK_TASKS = ("segment", "instances")  # one class per pixel (instances: the first channel of the targets)


class ClassEvidence(nn.Module):
    """A segmentation or detection model read as one score per object class (see the module docstring)."""

    def __init__(self, model: nn.Module, task: str, skip_background: bool) -> None:
        super().__init__()
        self.model, self.task, self.skip = model, task, int(skip_background)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x).float()
        if self.task == "instances":  # the class logits; the centre heatmap and offsets come after them
            out = out[:, : out.shape[1] - 3]
        if self.task in MASK_TASKS:
            log_p = out.log_softmax(dim=1).flatten(2)
            scores = torch.logsumexp(log_p, dim=2) - math.log(log_p.shape[2])
        else:
            scores = out[:, : out.shape[1] - 4].flatten(2).amax(dim=2)
        return scores[:, self.skip :]


def evidence_view(model: nn.Module, spec: DataSpec) -> tuple[ClassEvidence, DataSpec]:
    """The classifier reading of a dense model: ``ClassEvidence`` and a ``classify`` spec over its object classes
    (a segmentation's first class left out when it is named ``background``)."""
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    skip = spec.task in MASK_TASKS and names[0].lower() == "background"
    kept = tuple(names[int(skip) :])
    view = dataclasses.replace(spec, task="classify", num_outputs=len(kept), class_names=kept)
    return ClassEvidence(model, spec.task, skip).eval(), view


def dense_view(model: nn.Module, spec: DataSpec, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """The classifier reading of a dense run: ``model`` (``ClassEvidence``), a ``classify`` ``spec`` over the
    object classes, and the test ``inputs`` that hold objects with their ``labels`` (dominant true class).

    Raises:
        DataError: no test image holds an object.
    """
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    skip = spec.task in MASK_TASKS and names[0].lower() == "background"
    kept_names = names[int(skip) :]
    k = len(kept_names)
    if spec.task in MASK_TASKS:
        if spec.task == "instances":
            targets = targets[:, 0]
        valid = (targets >= int(skip)) & (targets < spec.num_outputs)
        flat = torch.where(valid, targets - int(skip), torch.full_like(targets, k)).reshape(len(targets), -1)
        counts = torch.zeros(len(targets), k + 1, dtype=torch.long).scatter_add_(1, flat.long(), torch.ones_like(flat))
        counts = counts[:, :k]
        has = counts.sum(dim=1) > 0
        labels = counts.argmax(dim=1)
    else:
        area = (targets[..., 3] - targets[..., 1]) * (targets[..., 4] - targets[..., 2])
        area = torch.where(targets[..., 0] >= 0, area, torch.full_like(area, -1.0))
        has = area.amax(dim=1) > 0
        labels = targets[torch.arange(len(targets)), area.argmax(dim=1), 0].long()
    if not bool(has.any()):
        raise DataError("no test image holds an object: there is nothing to explain")
    what = (
        "the class the model gives most of the image to (log of its soft pixel share)"
        if spec.task in MASK_TASKS
        else "the class the model detects most surely (its strongest heatmap logit)"
    )
    evidence, view = evidence_view(model, spec)
    return {
        "model": evidence,
        "spec": view,
        "inputs": inputs[has],
        "labels": labels[has],
        "target": what,
    }
