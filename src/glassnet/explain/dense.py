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
and figure of ``glassnet explain`` then applies unchanged. Each task gives its own reading
(``Task.class_evidence``, ``Task.main_class``, ``Task.background_classes``), so a new dense task is
explained without a change here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import DataError
from glassnet.train.tasks import Task, get_task


class ClassEvidence(nn.Module):
    """A segmentation or detection model read as one score per object class: its task's ``class_evidence``
    of the model's outputs, the task's background classes left out (see the module docstring)."""

    def __init__(self, model: nn.Module, task: Task, skip: int) -> None:
        super().__init__()
        self.model, self.task, self.skip = model, task, skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.class_evidence(self.model(x).float())[:, self.skip :]


def evidence_view(model: nn.Module, spec: DataSpec) -> tuple[ClassEvidence, DataSpec]:
    """The classifier reading of a dense model: ``ClassEvidence`` and a ``classify`` spec over its object classes
    (a mask task's first class left out when it is named ``background``)."""
    task = get_task(spec.task)
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    skip = task.background_classes(spec)
    kept = tuple(names[skip:])
    view = dataclasses.replace(spec, task="classify", num_outputs=len(kept), class_names=kept)
    return ClassEvidence(model, task, skip).eval(), view


def dense_view(model: nn.Module, spec: DataSpec, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """The classifier reading of a dense run: ``model`` (``ClassEvidence``), a ``classify`` ``spec`` over the
    object classes, and the test ``inputs`` that hold objects with their ``labels`` (the task's ``main_class``).

    Raises:
        DataError: no test image holds an object.
    """
    evidence, view = evidence_view(model, spec)
    labels = evidence.task.main_class(targets, spec)
    has = labels >= 0
    if not bool(has.any()):
        raise DataError("no test image holds an object: there is nothing to explain")
    return {
        "model": evidence,
        "spec": view,
        "inputs": inputs[has],
        "labels": labels[has] - evidence.skip,
        "target": evidence.task.evidence,
    }
