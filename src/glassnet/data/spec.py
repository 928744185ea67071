"""``DataSpec``: what a model needs to know about its data, stored in every run's model.json."""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from dataclasses import dataclass, field
from typing import Any

from glassnet.data.modality import MODALITIES  # the registered modalities (a live view)
from glassnet.errors import DataError

# values in one example (and outputs of one model): 1 GiB of float32, beyond any dataset glassnet
# trains on; a larger shape comes from a damaged or hostile model.json and would exhaust memory
MAX_VALUES = 2**28

TASKS = (
    "classify", "multilabel", "regress", "forecast", "reconstruct", "seq2seq", "language_model", "tag", "control",
    "generate", "contrastive", "segment", "detect", "instances", "transcribe", "synthesize",
)  # fmt: skip


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
            ``seq2seq``, ``language_model``, ``tag`` (one class per time step), ``control``, ``generate``
            (new examples like the data; ``num_outputs`` is 1, the discriminator's "real" logit),
            ``contrastive`` (a representation learnt without labels; ``num_outputs`` is the projection's size),
            ``segment`` (one class per pixel; ``num_outputs`` counts the classes, background included),
            ``detect`` (boxes with a class; ``num_outputs`` counts the object classes, ``extra["max_objects"]``
            the rows of a target: ``class, x1, y1, x2, y2`` as shares of the image's width and height, class -1
            for unused rows).
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
        if not isinstance(self.modality, str) or self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {', '.join(MODALITIES)}. Received: {_short(self.modality)}")
        if not isinstance(self.task, str) or self.task not in TASKS:
            raise DataError(f"task must be one of {', '.join(TASKS)}. Received: {_short(self.task)}")
        shape = _positive_ints(self.input_shape)
        if shape is None or not shape:
            raise DataError(
                f"input_shape must be a non-empty list of positive integers. Received: {_short(self.input_shape)}"
            )
        if math.prod(shape) > MAX_VALUES:
            raise DataError(
                f"input_shape {list(shape)} means {math.prod(shape):,} values per example, above glassnet's limit of "
                f"{MAX_VALUES:,}"
            )
        object.__setattr__(self, "input_shape", shape)
        outputs = _positive_ints([self.num_outputs])
        if outputs is None or outputs[0] > MAX_VALUES:
            raise DataError(
                f"num_outputs must be an integer in [1, {MAX_VALUES:,}]. Received: {_short(self.num_outputs)}"
            )
        object.__setattr__(self, "num_outputs", outputs[0])
        for name in ("class_names", "feature_names", "input_mean", "input_std", "target_mean", "target_std"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
                    raise DataError(f"{name} must be a list. Received: {_short(value)}")
                object.__setattr__(self, name, tuple(value))
        for name in ("input_mean", "input_std", "target_mean", "target_std"):
            value = getattr(self, name)
            if value is not None and not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
                raise DataError(f"{name} must be a list of numbers. Received: {_short(value)}")
        if (
            self.task in ("classify", "segment", "detect", "instances", "transcribe")
            and self.class_names
            and len(self.class_names) != self.num_outputs
        ):
            raise DataError(f"{len(self.class_names)} class names for {self.num_outputs} classes; they must match")
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
            raise DataError(f"unknown data spec keys: {', '.join(map(str, unknown))}")
        # what JSON can hold but a spec written by glassnet never does (names are strings, extra a mapping)
        for name in ("class_names", "feature_names"):
            names = values.get(name, ())
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise DataError(f"{name} must be a list of strings. Received: {_short(names)}")
        if not isinstance(values.get("name", ""), str):
            raise DataError(f"name must be a string. Received: {_short(values['name'])}")
        if not isinstance(values.get("extra", {}), dict):
            raise DataError(f"extra must be a mapping. Received: {_short(values['extra'])}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise DataError(f"incomplete data spec: {exc}") from exc


def _positive_ints(values: Any) -> tuple[int, ...] | None:
    """``values`` as a tuple of positive ints (NumPy ints too), or None if any is not one (floats, bools, text)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        return None
    items = list(values)
    if any(isinstance(v, bool) for v in items):
        return None
    try:
        ints = tuple(operator.index(v) for v in items)
    except TypeError:
        return None
    return ints if all(v >= 1 for v in ints) else None


def _short(value: Any) -> str:
    """``repr(value)`` cut to one readable line (a hostile file may hold a huge value)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
