"""Generative models' own workflow: their data, the ``generate`` task, sampling and the honest evaluation.

``gn.generate(run, n, classes=..., seed=...)`` draws images from a run trained with ``dcgan`` or
``cgan``; the evaluation that every such run gets after training (FID and KID in the features of
a classifier trained on the same data, class coverage, memorisation, instability warnings) is
``glassnet.generate.evaluation``. The models are ``glassnet.models.gan``, the training step
``glassnet.train.steps.gan``. Names load on first use, so that ``glassnet.generate.data`` can be
imported by the learning layer without importing the rest.
"""

from __future__ import annotations

from glassnet.lazy import lazy_exports

_HOMES = {
    "generate": "glassnet.generate.sampling",
    "write_samples": "glassnet.generate.sampling",
    "with_generated": "glassnet.generate.sampling",
    "evaluate_generator": "glassnet.generate.evaluation",
    "GenerationReport": "glassnet.generate.evaluation",
    "generation_bundle": "glassnet.generate.data",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
