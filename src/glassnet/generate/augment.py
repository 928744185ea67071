"""Generated images as extra training data: ``data.generated=RUN`` on an image classification dataset.

A class-conditional generator (``cgan``) trained on the same kind of images draws
``generated_per_class`` images of every class (seeded); they join the training split with the class
they were drawn for. The validation and test splits stay real, so whatever the generated images do
to the classifier shows in its real test accuracy. The run's ``results/train.json`` records the
generator run, the count and the seed under ``data.generated``.

``glassnet train --data fashion-mnist --model cnn data.labels_per_class=100 data.generated=runs/cgan``
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import TensorDataset

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.errors import ConfigError, DataError
from glassnet.generate.drawing import MAX_IMAGES, draw, require_generative

OPTIONS = ("generated", "generated_per_class", "generated_seed")
MAX_PER_CLASS = 20_000


def split_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the generated-data options of ``options``."""
    return {key: options.pop(key) for key in OPTIONS if key in options}


def apply_options(bundle: DataBundle, options: dict[str, Any], open_run: Callable[[Any], Any]) -> DataBundle:
    """``bundle`` with generated training images when ``options`` (from ``split_options``) name a run.

    ``open_run`` opens the run that ``generated`` names (``Run.open``: the training layer passes it,
    so that this module does not import the ``Run`` that imports it).

    Raises:
        ConfigError: ``generated_per_class`` or ``generated_seed`` without ``generated``, or bad values.
        RunError: the run is missing or not generative.
    """
    if not options:
        return bundle
    if options.get("generated") is None:
        raise ConfigError(
            "data.generated_per_class and data.generated_seed need the generator: data.generated=RUN "
            "(a run trained with --model cgan on images like these)"
        )
    check_values(options.get("generated_per_class"), options.get("generated_seed", 0))
    return add_generated(
        bundle,
        require_generative(open_run(options["generated"])),
        options.get("generated_per_class"),
        options.get("generated_seed", 0),
    )


def check_values(per_class: Any, seed: Any) -> None:
    """``ConfigError`` unless ``per_class`` is None or a whole number in range and ``seed`` a whole number >= 0."""
    whole = isinstance(per_class, int) and not isinstance(per_class, bool)
    if per_class is not None and (not whole or not 1 <= per_class <= MAX_PER_CLASS):
        raise ConfigError(
            f"data.generated_per_class must be a whole number in [1, {MAX_PER_CLASS:,}]. "
            f"Received: data.generated_per_class={per_class!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"data.generated_seed must be a whole number >= 0. Received: data.generated_seed={seed!r}")


def add_generated(bundle: DataBundle, source: Any, per_class: int | None = None, seed: int = 0) -> DataBundle:
    """Append ``per_class`` generated images of every class to the training split.

    Args:
        bundle: an image classification bundle (its labelled training split is what grows).
        source: an opened class-conditional generative ``Run`` (``cgan``) with the same image shape and
            classes (``glassnet.generate.with_generated`` takes its directory).
        per_class: images drawn per class; None: as many as the training split holds per class on
            average (doubling it).
        seed: seeds the generator's noise.

    Raises:
        ConfigError: the data is not image classification, ``per_class`` or ``seed`` is not a whole
            number in range, or the run is unconditional.
        DataError: the run's images or classes do not match the data's.
        RunError: ``run`` is missing or not generative.
    """
    spec = bundle.spec
    if spec.task != "classify" or spec.modality != "image":
        raise ConfigError(
            f"data.generated adds generated images to an image classification dataset; {spec.name or 'this dataset'!r} "
            f"is {spec.modality} data for {spec.task}. Remove data.generated"
        )
    images, labels = split_tensors(bundle.train)
    if per_class is None:
        per_class = max(1, round(len(images) / spec.num_outputs))
    check_values(per_class, seed)
    source = require_generative(source)
    if tuple(source.spec.input_shape) != tuple(spec.input_shape):
        raise DataError(
            f"generator run '{source.path}' makes {list(source.spec.input_shape)} images; this data's are "
            f"{list(spec.input_shape)}. Train the generator on images of this size and channels"
        )
    if tuple(source.spec.class_names) != tuple(spec.class_names):
        raise DataError(
            f"generator run '{source.path}' draws the classes {list(source.spec.class_names)}; this data has "
            f"{list(spec.class_names)}. Train the generator on this dataset"
        )
    if not getattr(source.model, "conditional", False):
        raise ConfigError(
            f"generator run '{source.path}' is unconditional: its images have no class to train a classifier "
            "with. Train a class-conditional generator (--model cgan)"
        )
    if per_class * spec.num_outputs > MAX_IMAGES:
        raise ConfigError(
            f"data.generated_per_class={per_class} draws {per_class * spec.num_outputs:,} images; at most "
            f"{MAX_IMAGES:,} are drawn for a run"
        )
    classes = torch.arange(spec.num_outputs).repeat_interleave(per_class)
    drawn, drawn_labels = draw(source, len(classes), classes.tolist(), seed=seed)
    assert drawn_labels is not None
    train = TensorDataset(
        torch.cat([images, drawn.to(images.dtype)]), torch.cat([labels, drawn_labels.to(labels.dtype)])
    )
    info = {
        **bundle.info,
        "generated": {"run": str(source.path), "per_class": per_class, "images": len(drawn), "seed": seed},
    }
    return dataclasses.replace(bundle, train=train, info=info)
