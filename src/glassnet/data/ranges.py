"""How inputs compare with a model's training data: a warning in plain words when they lie far outside it.

A network answers "benign 1.0" to random numbers as readily as to a patient's measurements. A table's
features are compared with their training minimum and maximum (``spec.extra["input_range"]``, or
the training mean and standard deviation for runs that predate it), an image's pixels with [0, 1]
and its mean brightness with the training images'. Each modality runs its own check
(``Modality.range_check``); ``glassnet.data.modality.check_input_range`` is what ``glassnet predict``
and ``glassnet serve`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec

FAR = 1.0  # a feature further outside its training range than the range is wide is far outside it
FAR_SIGMAS = 10.0  # without a recorded range: this many training standard deviations from the mean
PIXEL_TOLERANCE = 1e-3  # pixels may stray this far outside [0, 1] (rounding of resized images)
MEAN_SIGMAS = 2.0  # an image whose channel mean is this many pixel standard deviations off is far out
SHOWN = 3  # features named in a warning


@dataclass
class RangeCheck:
    """How the inputs of a prediction compare with the training data.

    Attributes:
        in_range: one flag per input: False when it lies far outside the training data.
        details: per input, what lies outside (a phrase; empty for inputs in range).
    """

    in_range: list[bool]
    details: list[str]

    @classmethod
    def passed(cls, count: int) -> RangeCheck:
        """``count`` inputs in range (what a modality without a check says)."""
        return cls([True] * count, [""] * count)

    @property
    def all_in_range(self) -> bool:
        return all(self.in_range)

    def sentence(self, index: int) -> str | None:
        """What is wrong with input ``index``, in one sentence, or None when it lies in range."""
        return None if self.in_range[index] else f"{self.details[index]}; the prediction may be meaningless"

    def warning(self, labels: list[str]) -> str | None:
        """One plain sentence about the inputs far outside the training data, or None when there are none."""
        outside = [i for i, flag in enumerate(self.in_range) if not flag]
        if not outside:
            return None
        first = outside[0]
        if len(self.in_range) == 1:
            return self.sentence(first)
        return (
            f"{len(outside)} of {len(self.in_range)} inputs lie far outside the training data, e.g. "
            f"{labels[first]}: {self.details[first]}; their predictions may be meaningless (in_range: false)"
        )


def table_check(spec: DataSpec, x: torch.Tensor) -> RangeCheck:
    """Rows ``(N, features)``: far out when a feature lies further outside its training range than the
    range is wide (or, for runs without a recorded range, more than ``FAR_SIGMAS`` standard deviations
    from the training mean)."""
    names = list(spec.feature_names) if len(spec.feature_names) == x.shape[1] else []
    names = names or [f"feature {i}" for i in range(x.shape[1])]
    recorded = spec.extra.get("input_range") or {}
    if len(recorded.get("min") or ()) == x.shape[1] and len(recorded.get("max") or ()) == x.shape[1]:
        low, high = torch.tensor(recorded["min"]), torch.tensor(recorded["max"])
        width = high - low
        beyond = torch.maximum(low - x, x - high).clamp_min(0)
        outside = beyond > 1e-6 * (1 + low.abs() + high.abs())
        far = outside & (beyond > FAR * width)
        distance = beyond / width.clamp_min(1e-12)

        def shown(i: int, j: int) -> str:
            return f"{names[j]}: {_num(x[i, j])}, trained on {_num(low[j])} to {_num(high[j])}"

    elif spec.input_mean is not None and spec.input_std is not None and len(spec.input_mean) == x.shape[1]:
        mean, std = torch.tensor(spec.input_mean), torch.tensor(spec.input_std)
        distance = (x - mean).abs() / std
        outside = far = distance > FAR_SIGMAS

        def shown(i: int, j: int) -> str:
            return f"{names[j]}: {_num(x[i, j])}, training mean {_num(mean[j])}, sd {_num(std[j])}"

    else:
        return RangeCheck.passed(len(x))
    flags, details = [], []
    for i in range(len(x)):
        flags.append(not bool(far[i].any()))
        if flags[-1]:
            details.append("")
            continue
        columns = outside[i].nonzero().flatten().tolist()
        columns.sort(key=lambda j: -float(distance[i, j]))
        listed = "; ".join(shown(i, j) for j in columns[:SHOWN])
        more = "; ..." if len(columns) > SHOWN else ""
        details.append(f"{len(columns)} of {x.shape[1]} features lie outside the training range ({listed}{more})")
    return RangeCheck(flags, details)


def image_check(spec: DataSpec, x: torch.Tensor) -> RangeCheck:
    """Images ``(N, C, H, W)``: far out when a pixel leaves [0, 1] or a channel's mean is more than
    ``MEAN_SIGMAS`` pixel standard deviations from the training mean."""
    flat = x.reshape(len(x), -1)
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    means = x.reshape(len(x), x.shape[1], -1).mean(dim=2)  # N x C
    off = torch.zeros(len(x), dtype=torch.bool)
    if spec.input_mean is not None and spec.input_std is not None and len(spec.input_mean) == x.shape[1]:
        train_mean, train_std = torch.tensor(spec.input_mean), torch.tensor(spec.input_std)
        off = ((means - train_mean).abs() > MEAN_SIGMAS * train_std).any(dim=1)
    flags, details = [], []
    for i in range(len(x)):
        pixels = bool(low[i] < -PIXEL_TOLERANCE or high[i] > 1 + PIXEL_TOLERANCE)
        flags.append(not (pixels or bool(off[i])))
        if pixels:
            details.append(
                f"pixel values run from {_num(low[i])} to {_num(high[i])}, but glassnet image models take values in "
                "[0, 1] (divide 8-bit images by 255)"
            )
        elif off[i]:
            trained = ", ".join(_num(m) for m in spec.input_mean or ())
            details.append(
                f"its mean brightness ({', '.join(_num(m) for m in means[i])}) is far from the training images' "
                f"({trained})"
            )
        else:
            details.append("")
    return RangeCheck(flags, details)


def _num(value: Any) -> str:
    """A number in a warning: three significant digits, thousands without an exponent."""
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
