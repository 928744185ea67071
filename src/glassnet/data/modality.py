"""``Modality``: what explain, attack and serve need to know about one kind of input, in one object.

Each modality (image, tabular, text, sequence, audio) is one registered ``Modality`` whose methods
answer the questions the audit stages would otherwise ask with ``if spec.modality == ...``: the
reference input "with no signal", the perturbation scale, which values form one unit of an
explanation, how a unit is replaced by the baseline, the valid input box of an attack, the global
views of an explanation and which picture draws it. Adding a modality is a subclass registered with
``register_modality``; the stages pick it up through ``get_modality(spec.modality)``.

This module sits at the bottom of the data layer (``DataSpec`` validates its ``modality`` against
``MODALITIES``), so it imports nothing of glassnet but the error types.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import numpy as np
import torch

from glassnet.data import ranges
from glassnet.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec

# token ids of padding and out-of-vocabulary tokens (glassnet.data.text encodes texts with these)
TEXT_PAD, TEXT_UNK = 0, 1
TOP_FEATURES = 5  # features listed per example of a table
TOP_TOKENS = 15  # tokens listed in a text explanation's global view


class Modality:
    """One kind of input and what the audit stages need to know about it.

    Subclasses set ``name`` and override what differs from the defaults, which suit a
    channels-first continuous input (one value per unit, statistics per channel on axis 1).

    Attributes:
        name: the ``DataSpec.modality`` it serves.
        continuous: inputs may move by small amounts (token ids cannot), so infidelity,
            max-sensitivity and box attacks apply.
        not_continuous: why not, when ``continuous`` is false (reported as the skipped checks' reason).
        positional: attributions share a profile over positions that says nothing about the
            example (a recurrence over tokens), removed before the model-randomisation test.
        picture: the kind of picture that draws its explanations (a kind registered in
            ``glassnet.explain.pictures``), or None for none.
    """

    name: ClassVar[str] = ""
    continuous: ClassVar[bool] = True
    not_continuous: ClassVar[str] = ""
    positional: ClassVar[bool] = False
    picture: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # --- statistics and references ----------------------------------------------------------

    def statistic(self, spec: DataSpec, values: Sequence[float]) -> torch.Tensor:
        """Per-channel (or per-feature) training statistics shaped to broadcast over a batch.

        Args:
            spec: the data spec (its ``input_shape``).
            values: one number per channel, e.g. ``spec.input_mean``.

        Returns:
            A float tensor of shape ``1 x C x 1 ...`` (channels first).
        """
        return torch.tensor(values, dtype=torch.float32).reshape(1, -1, *([1] * (len(spec.input_shape) - 1)))

    def baseline(self, spec: DataSpec) -> torch.Tensor:
        """The reference input "with no signal", ``1 x input_shape``: the training mean in natural
        units, or zeros when the spec has no statistics."""
        shape = (1, *spec.input_shape)
        if spec.input_mean is None:
            return torch.zeros(shape)
        return self.statistic(spec, spec.input_mean).expand(shape).contiguous()

    def masking_baseline(self, inputs: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """What masking methods and the deletion curves put in place of a removed unit, the shape of ``inputs``."""
        return baseline.expand_as(inputs)

    def noise_scale(self, spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor:
        """Perturbation scale in natural units: each channel's training std, else the inputs' spread."""
        if spec.input_std is None:
            return _spread(inputs)
        return self.statistic(spec, spec.input_std)

    def per_unit_scale(self, spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor | None:
        """What puts gradients of inputs in different units on one footing before they are ranked
        (broadcastable to the attributions), or None when the inputs share one unit."""
        return None

    # --- units of an explanation ------------------------------------------------------------

    def per_unit(self, values: torch.Tensor) -> torch.Tensor:
        """Attributions per display unit, one example per row, unflattened (default: every value)."""
        return values

    def unit_view(self, values: torch.Tensor) -> torch.Tensor:
        """Attributions per unit, flattened to ``N x U``."""
        return self.per_unit(values).flatten(1)

    def valid_units(self, inputs: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """Units that differ from the baseline (``N x U`` booleans): the only ones an explanation can say
        anything about."""
        return (inputs != baseline.expand_as(inputs)).flatten(1)

    def replace_units(self, inputs: torch.Tensor, baseline: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """``inputs`` with the ``chosen`` units (``N x U`` booleans) set to ``baseline`` (the shape of ``inputs``)."""
        mask = chosen.reshape(inputs.shape)
        return torch.where(mask.to(inputs.device), baseline, inputs)

    def feature_mask(self, shape: tuple[int, ...], device: torch.device | str) -> tuple[torch.Tensor, dict[str, Any]]:
        """The default features of ablation, permutation, LIME and KernelSHAP.

        Args:
            shape: one example's shape.
            device: where the mask is made.

        Returns:
            An integer mask ``1 x shape`` (equal ids form one feature) and the options it implies,
            for the report (e.g. ``{"block": 4}``).
        """
        return torch.arange(math.prod(shape), device=device).reshape(1, *shape), {}

    def occlusion_window(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Occlusion's default window and strides for one example of ``shape`` (default: one value)."""
        ones = tuple(1 for _ in shape)
        return ones, ones

    # --- attacks ------------------------------------------------------------------------------

    def input_box(
        self, spec: DataSpec, reference: torch.Tensor | None = None, inputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """The valid input range: per-feature lower and upper limits and where they come from.

        The default takes each value's range over the training ``reference`` data, widened to hold the
        attacked ``inputs`` so that clean inputs are valid points of the box.

        Raises:
            ConfigError: the inputs are not continuous, or there is no data to take the range from.
        """
        if not self.continuous:
            raise ConfigError(
                f"inputs of modality {self.name!r} are not a continuous range ({self.not_continuous}); "
                "a box attack does not apply to them"
            )
        return _training_range(spec, reference, inputs)

    # --- views of an explanation --------------------------------------------------------------

    def range_check(self, spec: DataSpec, inputs: torch.Tensor) -> ranges.RangeCheck | None:
        """How float ``inputs`` in natural units compare with the training data (``glassnet.data.ranges``);
        None: this modality has no check, every input passes."""
        return None

    def example_view(self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor) -> dict[str, Any]:
        """What a report shows of one explained example beside its picture (default: nothing)."""
        return {}

    def explanation_views(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, shown: int
    ) -> dict[str, Any]:
        """Global views of a batch's attributions (tables, profiles), JSON-ready (default: none).

        Args:
            spec: the data spec (feature names, vocabulary).
            inputs: the explained examples.
            values: their attributions, the shape of ``inputs``.
            shown: how many examples a view may list one by one.
        """
        return {}


# --- registry ------------------------------------------------------------------------------------

_REGISTRY: dict[str, Modality] = {}
_M = TypeVar("_M", bound=Modality)


@overload
def register_modality(modality: type[_M]) -> type[_M]: ...


@overload
def register_modality(modality: _M) -> _M: ...


def register_modality(modality: type[_M] | _M) -> type[_M] | _M:
    """Register a modality under its ``name``; usable as a class decorator.

    Args:
        modality: a ``Modality`` subclass (instantiated without arguments) or instance.

    Returns:
        ``modality`` unchanged.

    Raises:
        TypeError: not a ``Modality``.
        ValueError: it has no name, or its name is registered already.
    """
    instance = modality() if isinstance(modality, type) and issubclass(modality, Modality) else modality
    if not isinstance(instance, Modality):
        raise TypeError(f"register_modality takes a Modality subclass or instance, not {type(modality).__name__}")
    if not instance.name:
        raise ValueError(f"{type(instance).__name__} has no name; set the class attribute `name`")
    if instance.name in _REGISTRY:
        raise ValueError(f"modality {instance.name!r} is registered twice")
    _REGISTRY[instance.name] = instance
    return modality


def get_modality(name: str) -> Modality:
    """The registered modality called ``name``.

    Raises:
        UnknownNameError: no such modality; the message suggests the closest name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("modality", str(name), _REGISTRY) from None


def check_input_range(spec: DataSpec, inputs: torch.Tensor) -> ranges.RangeCheck:
    """Compare inputs in natural units with the model's training data, as ``spec``'s modality does
    (tables and images; the others pass): one flag and one phrase per input.

    Args:
        spec: the model's spec.
        inputs: a batch shaped ``(N, *spec.input_shape)``.
    """
    found = None
    if len(inputs) and inputs.is_floating_point():
        found = get_modality(spec.modality).range_check(spec, inputs.float())
    return found if found is not None else ranges.RangeCheck.passed(len(inputs))


class _Names(Sequence[str]):
    """The registered modality names in registration order; a live view, so code that imported
    ``MODALITIES`` (``DataSpec``'s check among others) sees a modality registered later."""

    def __getitem__(self, index: Any) -> Any:
        return tuple(_REGISTRY)[index]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __eq__(self, other: object) -> bool:
        # equal to the tuple it replaces, so comparisons written against a tuple of names still hold
        return isinstance(other, Sequence) and not isinstance(other, str) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # mutable view

    def __repr__(self) -> str:
        return repr(tuple(self))


MODALITIES: Sequence[str] = _Names()


# --- the built-in modalities, registered in the order of MODALITIES ----------------------------------


class _ChannelsFirst(Modality):
    """Channels x height x width grids (images, spectrograms): the channels of one pixel form one unit."""

    def per_unit(self, values: torch.Tensor) -> torch.Tensor:
        """Channels of a pixel summed (``N x H x W``) for ``N x C x H x W`` attributions."""
        return values.sum(dim=1) if values.dim() == 4 else values

    def valid_units(self, inputs: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """A pixel is valid when any of its channels differs from the baseline."""
        differs = inputs != baseline.expand_as(inputs)
        return (differs.any(dim=1) if inputs.dim() == 4 else differs).flatten(1)

    def replace_units(self, inputs: torch.Tensor, baseline: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Every channel of a chosen pixel is replaced."""
        if inputs.dim() != 4:
            return super().replace_units(inputs, baseline, chosen)
        mask = chosen.reshape(len(inputs), 1, *inputs.shape[2:])
        return torch.where(mask.to(inputs.device), baseline, inputs)

    def feature_mask(self, shape: tuple[int, ...], device: torch.device | str) -> tuple[torch.Tensor, dict[str, Any]]:
        """Square blocks of about an eighth of the shorter side, all channels together."""
        if len(shape) != 3:
            return super().feature_mask(shape, device)
        channels, height, width = shape
        block = max(1, math.ceil(min(height, width) / 8))
        rows = torch.arange(height, device=device) // block
        cols = torch.arange(width, device=device) // block
        ids = rows[:, None] * (int(cols.max()) + 1) + cols[None, :]
        return ids.expand(channels, height, width).unsqueeze(0), {"block": block}

    def occlusion_window(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A square of about a seventh of the shorter side over all channels, moved by half its side."""
        if len(shape) != 3:
            return super().occlusion_window(shape)
        side = max(2, round(min(shape[1:]) / 7))
        return (shape[0], side, side), (shape[0], max(1, side // 2), max(1, side // 2))


@register_modality
class ImageModality(_ChannelsFirst):
    """Images, ``C x H x W`` floats in [0, 1]; black is the absence of signal."""

    name = "image"
    picture = "image"

    def baseline(self, spec: DataSpec) -> torch.Tensor:
        """Black: a mean image would already hold the classes' average shapes."""
        return torch.zeros((1, *spec.input_shape))

    def noise_scale(self, spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor:
        """The spread of the inputs: pixels share one unit whatever the channel statistics."""
        return _spread(inputs)

    def input_box(
        self, spec: DataSpec, reference: torch.Tensor | None = None, inputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Pixels in [0, 1], whatever the data."""
        return torch.zeros(spec.input_shape), torch.ones(spec.input_shape), "pixels in [0, 1]"

    def range_check(self, spec: DataSpec, inputs: torch.Tensor) -> ranges.RangeCheck | None:
        """Pixels outside [0, 1] (8-bit values not divided by 255) or a brightness far from the training images'."""
        return ranges.image_check(spec, inputs) if inputs.dim() >= 3 else None


@register_modality
class TabularModality(Modality):
    """Tables, one float per column in the column's own units."""

    name = "tabular"
    picture = "features"

    def statistic(self, spec: DataSpec, values: Sequence[float]) -> torch.Tensor:
        """One statistic per column: ``1 x input_shape``."""
        return torch.tensor(values, dtype=torch.float32).reshape(1, *spec.input_shape)

    def per_unit_scale(self, spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor | None:
        """Each column's training std: a gradient per unit of a column that spans 0.01 is large in any model."""
        return None if spec.input_std is None else self.noise_scale(spec, inputs)

    def range_check(self, spec: DataSpec, inputs: torch.Tensor) -> ranges.RangeCheck | None:
        """Features far outside their training range (or many standard deviations from the training mean)."""
        return ranges.table_check(spec, inputs.reshape(len(inputs), -1))

    def example_view(self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor) -> dict[str, Any]:
        """The features with the largest attributions, with their values."""
        names = _feature_names(spec, values.numel())
        flat = values.flatten()
        order = flat.abs().argsort(descending=True)[:TOP_FEATURES].tolist()
        return {
            "top_features": [
                {"feature": names[i], "value": float(inputs.flatten()[i]), "attribution": float(flat[i])} for i in order
            ]
        }

    def explanation_views(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, shown: int
    ) -> dict[str, Any]:
        """Every feature's mean and mean absolute attribution, largest first."""
        names = _feature_names(spec, values[0].numel())
        flat = values.flatten(1)
        mean, mean_abs = flat.mean(dim=0), flat.abs().mean(dim=0)
        order = mean_abs.argsort(descending=True).tolist()
        return {
            "features": [
                {
                    "feature": names[i],
                    "mean_attribution": round(float(mean[i]), 6),
                    "mean_abs": round(float(mean_abs[i]), 6),
                }
                for i in order
            ]
        }


@register_modality
class TextModality(Modality):
    """Texts as int64 token ids, padded with ``TEXT_PAD`` at the end."""

    name = "text"
    continuous = False
    not_continuous = "token ids cannot be perturbed by small amounts"
    positional = True

    def baseline(self, spec: DataSpec) -> torch.Tensor:
        """Padding everywhere (gradient methods then see a blank embedding)."""
        return torch.full((1, *spec.input_shape), TEXT_PAD, dtype=torch.long)

    def masking_baseline(self, inputs: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """Real tokens become ``<unk>`` and padding stays: removing a word must not shorten the text."""
        return torch.where(inputs == TEXT_PAD, torch.full_like(inputs, TEXT_PAD), torch.full_like(inputs, TEXT_UNK))

    def input_box(
        self, spec: DataSpec, reference: torch.Tensor | None = None, inputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Refused: token ids have no range.

        Raises:
            ConfigError: always; the message points to the embedding-space attack.
        """
        raise ConfigError(
            f"inputs of modality {self.name!r} are token ids, not a continuous range; "
            "use the embedding-space attack (glassnet.robustness.embedding_pgd)"
        )

    def tokens(self, spec: DataSpec, ids: torch.Tensor) -> list[str]:
        """Token strings of ``ids`` from the spec's vocabulary (``<id>`` beyond it)."""
        vocab = spec.extra.get("vocab") or []
        return [vocab[i] if i < len(vocab) else f"<{i}>" for i in ids.tolist()]

    def example_view(self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor) -> dict[str, Any]:
        """The text's tokens (padding left out) and each token's score."""
        keep = inputs != TEXT_PAD
        return {
            "tokens": self.tokens(spec, inputs[keep]),
            "scores": [round(float(v), 5) for v in values[keep]],
        }

    def explanation_views(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, shown: int
    ) -> dict[str, Any]:
        """The first ``shown`` texts with their token scores, and the tokens with the largest mean attribution."""
        return {
            "examples": [
                {"index": k, **self.example_view(spec, inputs[k], values[k])} for k in range(min(shown, len(values)))
            ],
            "top_tokens": self.top_tokens(spec, inputs, values),
        }

    def top_tokens(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, top: int = TOP_TOKENS
    ) -> list[dict[str, Any]]:
        """Tokens with the largest mean attribution over the examples (at least two occurrences; a
        single occurrence says more about its text than about the token)."""
        totals: dict[int, list[float]] = {}
        for ids, scores in zip(inputs, values, strict=True):
            for token, value in zip(ids.tolist(), scores.tolist(), strict=True):
                if token not in (TEXT_PAD, TEXT_UNK):
                    totals.setdefault(token, []).append(value)
        means = [(np.mean(v), t, len(v)) for t, v in totals.items() if len(v) >= 2]
        means.sort(key=lambda m: -abs(m[0]))
        return [
            {"token": self.tokens(spec, torch.tensor([t]))[0], "mean_attribution": round(float(m), 5), "count": c}
            for m, t, c in means[:top]
        ]


@register_modality
class SequenceModality(Modality):
    """Time series, ``T x C`` floats (time steps by channels), channels last."""

    name = "sequence"
    picture = "series"

    def statistic(self, spec: DataSpec, values: Sequence[float]) -> torch.Tensor:
        """One statistic per channel, on the last axis: ``1 x 1 x C``."""
        return torch.tensor(values, dtype=torch.float32).reshape(1, 1, -1)

    def per_unit_scale(self, spec: DataSpec, inputs: torch.Tensor) -> torch.Tensor | None:
        """Each channel's training std: channels of a series come in units of their own."""
        return None if spec.input_std is None else self.noise_scale(spec, inputs)

    def feature_mask(self, shape: tuple[int, ...], device: torch.device | str) -> tuple[torch.Tensor, dict[str, Any]]:
        """One feature per time step (all channels together)."""
        if len(shape) != 2:
            return super().feature_mask(shape, device)
        steps, channels = shape
        return torch.arange(steps, device=device)[:, None].expand(steps, channels).unsqueeze(0), {}

    def occlusion_window(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A sixteenth of the time steps over all channels, moved by half of it."""
        if len(shape) != 2:
            return super().occlusion_window(shape)
        side = max(1, shape[0] // 16)
        return (side, shape[1]), (max(1, side // 2), shape[1])

    def explanation_views(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, shown: int
    ) -> dict[str, Any]:
        """Mean absolute attribution per time step and per channel."""
        if values.dim() != 3:
            return {}
        names = list(spec.feature_names) or [f"channel {c}" for c in range(values.shape[2])]
        per_channel = values.abs().sum(dim=1).mean(dim=0)
        return {
            "per_time_step": [round(float(v), 6) for v in values.abs().sum(dim=2).mean(dim=0)],
            "per_channel": [{"channel": names[c], "mean_abs": round(float(v), 6)} for c, v in enumerate(per_channel)],
        }


@register_modality
class AudioModality(_ChannelsFirst):
    """Spectrograms, ``C x mel bands x frames`` floats; the training mean is the absence of signal."""

    name = "audio"
    picture = "spectrogram"

    def input_box(
        self, spec: DataSpec, reference: torch.Tensor | None = None, inputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """The training range, or [0, 1] when every value lies there (spectrograms scaled to [0, 1]
        are bounded by construction, not by what the training split happened to hold)."""
        lower, upper, source = _training_range(spec, reference, inputs)
        if float(lower.min()) >= 0 and float(upper.max()) <= 1:
            return torch.zeros(spec.input_shape), torch.ones(spec.input_shape), "values in [0, 1]"
        return lower, upper, source

    def explanation_views(
        self, spec: DataSpec, inputs: torch.Tensor, values: torch.Tensor, shown: int
    ) -> dict[str, Any]:
        """Mean absolute attribution per frequency band and per frame."""
        if values.dim() != 4:
            return {}
        return {
            "per_frequency_band": [round(float(v), 6) for v in values.abs().sum(dim=(1, 3)).mean(dim=0)],
            "per_time_step": [round(float(v), 6) for v in values.abs().sum(dim=(1, 2)).mean(dim=0)],
        }


# --- helpers -------------------------------------------------------------------------------------


def _spread(inputs: torch.Tensor) -> torch.Tensor:
    """The inputs' range as a scalar scale (1 for constant inputs, which have none)."""
    return torch.tensor(float(inputs.max() - inputs.min()) or 1.0)


def _feature_names(spec: DataSpec, count: int) -> list[str]:
    return list(spec.feature_names) or [f"x{i}" for i in range(count)]


def _training_range(
    spec: DataSpec, reference: torch.Tensor | None, inputs: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Each value's range over the training data and the attacked inputs."""
    data = [t for t in (reference, inputs) if t is not None]
    if not data:
        raise ConfigError(f"{spec.modality} inputs need training data to take each feature's valid range from")
    shape = spec.input_shape
    stacked = torch.cat([t.reshape(-1, *shape).float() for t in data])
    return stacked.amin(dim=0), stacked.amax(dim=0), "per-feature range of the training data"
