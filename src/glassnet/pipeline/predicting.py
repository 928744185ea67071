"""The predict stage: a saved run's predictions for files or for a split of a dataset.

Inputs far outside what the model was trained on get a warning in plain words (a network answers
"benign 1.0" to random numbers as readily as to a patient's measurements; see
``glassnet.data.ranges``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from glassnet.data import load_dataset, split_tensors
from glassnet.data.inputs import read_inputs
from glassnet.data.modality import check_input_range
from glassnet.errors import ConfigError
from glassnet.train import Predictions
from glassnet.train.run import Run, check_compatible
from glassnet.train.tasks import get_task


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
    refused = get_task(spec.task).not_predicted(run.path)
    if refused:
        raise ConfigError(refused)
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
