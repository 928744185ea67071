"""The predict stage: a saved run's predictions for files or for a split of a dataset.

Inputs far outside what the model was trained on get a warning in plain words (a network answers
"benign 1.0" to random numbers as readily as to a patient's measurements): a table's features are
compared with their training minimum and maximum (``spec.extra["input_range"]``, or the training
mean and standard deviation for runs that predate it), an image's pixels with [0, 1] and its mean
brightness with the training images'.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from glassnet.data import DataSpec, load_dataset, split_tensors
from glassnet.data.inputs import read_inputs
from glassnet.errors import ConfigError
from glassnet.train import Predictions
from glassnet.train.run import Run, check_compatible
from glassnet.train.tasks import get_task

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

    @property
    def all_in_range(self) -> bool:
        return all(self.in_range)

    def warning(self, labels: list[str]) -> str | None:
        """One plain sentence about the inputs far outside the training data, or None when there are none."""
        outside = [i for i, flag in enumerate(self.in_range) if not flag]
        if not outside:
            return None
        first = outside[0]
        if len(self.in_range) == 1:
            return f"{self.details[first]}; the prediction may be meaningless"
        return (
            f"{len(outside)} of {len(self.in_range)} inputs lie far outside the training data, e.g. "
            f"{labels[first]}: {self.details[first]}; their predictions may be meaningless (in_range: false)"
        )


def predict(
    run: Run | str | os.PathLike[str],
    inputs: list[str] | None = None,
    data: str | None = None,
    split: str = "test",
    limit: int | None = None,
    onnx: bool | str | os.PathLike[str] = False,
) -> list[dict[str, Any]]:
    """Predict with a saved run.

    Args:
        run: a ``Run`` or a run directory.
        inputs: files to predict on (``.npy``, ``.csv``, images, texts, series, WAV); see
            ``glassnet.data.inputs``.
        data: instead of files, a dataset whose ``split`` is predicted (with its true labels); the
            run's own dataset is rebuilt as it was trained (same options, vocabulary and splits).
        split: ``train``, ``val`` or ``test``.
        limit: predict only the first ``limit`` examples of the split.
        onnx: serve the predictions from the exported ONNX file with ONNX Runtime instead of
            PyTorch: True for the run's ``compressed/model.onnx`` (``glassnet compress RUN --export
            onnx``), or the path of another ONNX file of this run (e.g. ``compressed/model.int8.onnx``).

    Returns:
        One record per example: ``input``, then what the task reports (``prediction``, and
        ``confidence`` for classes), and ``true`` when predicting a dataset split. When some
        inputs lie far outside the training data (tables and images), a ``UserWarning`` says so
        and every record gets ``in_range`` (False for those inputs).
    """
    run = Run.open(run)
    spec = run.spec
    truth = None
    if data is not None:
        if inputs:
            raise ConfigError("give either input files or --data, not both")
        same = run.config is not None and data == run.config.data
        bundle = run.data() if same else load_dataset(data)
        check_compatible(spec, bundle)
        x, y = split_tensors(bundle.split(split))
        if limit is not None:
            x, y = x[:limit], y[:limit]
        labels, truth = [f"{data}:{split}[{i}]" for i in range(len(x))], y
    else:
        x, labels = read_inputs(list(inputs or []), spec)
    check = check_input_range(spec, x)
    message = check.warning(labels)
    if message:
        warnings.warn(message, UserWarning, stacklevel=2)
    predictions = _onnx_predictions(run, x, onnx) if onnx else run.predict(x)
    rows = get_task(spec.task).records(spec, x, predictions, truth)
    records = [{"input": label, **row} for label, row in zip(labels, rows)]
    if not check.all_in_range:
        for record, flag in zip(records, check.in_range):
            record["in_range"] = flag
    return records


def check_input_range(spec: DataSpec, inputs: torch.Tensor) -> RangeCheck:
    """Compare inputs in natural units with the model's training data (tables and images; others pass).

    A table row is far out when a feature lies further outside its training range than the range
    is wide (or, for runs without a recorded range, more than ``FAR_SIGMAS`` standard deviations
    from the training mean). An image is far out when a pixel leaves [0, 1] or a channel's mean
    is more than ``MEAN_SIGMAS`` pixel standard deviations from the training mean.

    Args:
        spec: the model's spec.
        inputs: a batch shaped ``(N, *spec.input_shape)``.

    Returns:
        A ``RangeCheck`` with one flag and one phrase per input.
    """
    if len(inputs) and spec.modality == "tabular" and inputs.is_floating_point():
        return _table_check(spec, inputs.float().reshape(len(inputs), -1))
    if len(inputs) and spec.modality == "image" and inputs.is_floating_point() and inputs.dim() >= 3:
        return _image_check(spec, inputs.float())
    return RangeCheck([True] * len(inputs), [""] * len(inputs))


def _table_check(spec: DataSpec, x: torch.Tensor) -> RangeCheck:
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
        return RangeCheck([True] * len(x), [""] * len(x))
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


def _image_check(spec: DataSpec, x: torch.Tensor) -> RangeCheck:
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


def _onnx_predictions(run: Run, inputs: torch.Tensor, onnx: bool | str | os.PathLike[str]) -> Predictions:
    """Predictions of the run's ONNX export, decoded by the run's task as PyTorch's are."""
    from glassnet.compress.export import OnnxModel

    path = run.path / "compressed" / "model.onnx" if onnx is True else Path(onnx)
    if path.suffix != ".onnx":
        raise ConfigError(
            f"--onnx takes an .onnx file (or nothing, for RUN/compressed/model.onnx). Received: --onnx {onnx}; "
            "put input files before --onnx, e.g. `glassnet predict RUN digit.png --onnx`"
        )
    if onnx is not True and not path.is_file() and (run.path / path).is_file():
        path = run.path / path  # a path relative to the run, e.g. compressed/model.int8.onnx
    outputs = OnnxModel(path).predict(inputs)
    return Predictions(outputs=outputs, **get_task(run.spec.task).decode(outputs), spec=run.spec)
