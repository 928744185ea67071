"""``describe``: build a registered model for a dataset and measure its layers, FLOPs and memory."""

from __future__ import annotations

from typing import Any

from glassnet.data.spec import DataSpec
from glassnet.models.registry import create_model
from glassnet.models.summary import measure_memory, summarize


def describe(name: str, spec: DataSpec, *, batch_size: int = 64, **hparams: Any) -> dict[str, Any]:
    """Build model ``name`` for ``spec`` and measure it (what ``glassnet models --describe`` prints).

    Args:
        name: a registered model name.
        spec: the data the model is built for.
        batch_size: examples in the batch whose forward-pass memory is measured.
        **hparams: hyper-parameter overrides (the rest keep their defaults).

    Returns:
        ``name``, ``hparams`` (all of them, resolved), ``data`` (the spec's name), ``input_shape``;
        from ``summarize``: ``layers`` (name, type, per-example output shape, parameters, FLOPs),
        ``parameters``, ``trainable_parameters``, ``flops`` (one forward pass of one example); from
        ``measure_memory``: ``batch_size``, ``activation_bytes``, ``saved_for_backward_bytes``,
        ``parameter_bytes``, ``buffer_bytes``. All values are JSON-ready.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a hyper-parameter or ``batch_size`` is invalid, or the model does not fit the data
            (the message names the models that do).
    """
    model = create_model(name, spec, **hparams)
    return {
        "name": name,
        "hparams": _json_ready(model.glassnet_arch["hparams"]),
        "data": spec.name,
        "input_shape": list(spec.input_shape),
        **summarize(model, spec),
        **measure_memory(model, spec, batch_size),
    }


def _json_ready(hparams: dict[str, Any]) -> dict[str, Any]:
    # defaults such as channels=(32, 64) are tuples; JSON and the printed table show lists
    return {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()}
