"""The data of a generative run: a classification image bundle whose task becomes ``generate``.

A GAN learns the distribution of the training images; their classes stay beside them (a
conditional model draws an image of a class, and the evaluation counts which classes the samples
look like), so the splits keep their ``(image, class)`` pairs and only the spec changes:
``task="generate"``, one output (the discriminator's "real" logit), the same class names.
"""

from __future__ import annotations

import dataclasses

from glassnet.data.bundle import DataBundle
from glassnet.errors import DataError


def generation_bundle(bundle: DataBundle) -> DataBundle:
    """The ``generate`` bundle of an image classification bundle (same splits and classes).

    Args:
        bundle: a classification bundle of ``C x H x W`` images (a built-in dataset or an image folder).

    Returns:
        A bundle with the same splits; its spec has ``task="generate"`` and ``num_outputs=1``.

    Raises:
        DataError: the data is not images, or not labelled with classes.
    """
    spec = bundle.spec
    if spec.modality != "image" or len(spec.input_shape) != 3:
        raise DataError(
            f"generative models learn C x H x W images; dataset {spec.name or '(unnamed)'!r} is {spec.modality} data "
            f"of shape {list(spec.input_shape)}"
        )
    if spec.task != "classify":
        raise DataError(
            f"generative models train on labelled image data (an image classification dataset or folder); "
            f"dataset {spec.name or '(unnamed)'!r} is for {spec.task}"
        )
    names = spec.class_names or tuple(str(i) for i in range(spec.num_outputs))
    new_spec = dataclasses.replace(spec, task="generate", num_outputs=1, class_names=names)
    return DataBundle(bundle.train, bundle.val, bundle.test, new_spec, {**bundle.info, "source_task": "classify"})
