"""``DataSpec``: what a model needs to know about its data, stored in every run's model.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from glassnet.data.modality import MODALITIES  # the registered modalities (a live view)
from glassnet.errors import DataError

TASKS = ("classify", "multilabel", "regress", "forecast", "reconstruct", "seq2seq", "language_model", "tag", "control")


@dataclass(frozen=True)
class DataSpec:
    """Shape and meaning of a dataset's inputs and targets.

    Inputs are in natural units (images in [0, 1], table columns in their own units); the
    normalisation statistics below, fitted on the training split only, become the model's first
    layer, so explanations and attacks work on the same inputs as the user.

    Attributes:
        modality: a registered modality (``glassnet.data.modality.MODALITIES``): ``image``,
            ``tabular``, ``text``, ``sequence``, ``audio`` and any registered since.
        input_shape: shape of one example, e.g. ``(1, 8, 8)`` (channels first) or ``(30,)``.
        task: one of ``classify``, ``multilabel``, ``regress``, ``forecast``, ``reconstruct``,
            ``seq2seq``, ``language_model``, ``tag`` (one class per time step).
        num_outputs: classes for classification, target dimensions otherwise.
        class_names: one name per class (classification).
        feature_names: one name per input column (tabular).
        input_mean: per-channel (image) or per-feature (tabular) training mean.
        input_std: matching standard deviations (never zero).
        target_mean: regression target means (training split), so heads predict natural units.
        target_std: regression target standard deviations.
        name: dataset name, for summaries.
        extra: modality-specific facts a model needs to rebuild its input side (e.g. vocab size).
    """

    modality: str
    input_shape: tuple[int, ...]
    task: str
    num_outputs: int
    class_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {', '.join(MODALITIES)}. Received: {self.modality!r}")
        if self.task not in TASKS:
            raise DataError(f"task must be one of {', '.join(TASKS)}. Received: {self.task!r}")
        shape = tuple(int(d) for d in self.input_shape)
        if not shape or any(d < 1 for d in shape):
            raise DataError(f"input_shape must be non-empty and positive. Received: {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        if self.num_outputs < 1:
            raise DataError(f"num_outputs must be >= 1. Received: {self.num_outputs}")
        if self.task == "classify" and self.class_names and len(self.class_names) != self.num_outputs:
            raise DataError(f"{len(self.class_names)} class names for {self.num_outputs} classes; they must match")
        for name in ("class_names", "feature_names", "input_mean", "input_std", "target_mean", "target_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.input_std is not None and any(s <= 0 for s in self.input_std):
            raise DataError("input_std must be positive everywhere")

    @property
    def is_classification(self) -> bool:
        return self.task == "classify"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        """Rebuild a spec from ``to_dict()`` output.

        Raises:
            DataError: a key is unknown or missing, or a value is invalid.
        """
        if not isinstance(values, dict):
            raise DataError(f"a data spec must be a mapping, not {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown data spec keys: {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise DataError(f"incomplete data spec: {exc}") from exc
