"""The predict stage: a saved run's predictions for files or for a split of a dataset."""

from __future__ import annotations

import os
from typing import Any

from glassnet.data import load_dataset
from glassnet.data.inputs import read_inputs
from glassnet.pipeline.loading import load
from glassnet.pipeline.training import check_compatible


def predict(
    run_dir: str | os.PathLike[str],
    inputs: list[str] | None = None,
    data: str | None = None,
    split: str = "test",
    limit: int | None = None,
    onnx: bool | str | os.PathLike[str] = False,
) -> list[dict[str, Any]]:
    """Predict with a saved run.

    Args:
        run_dir: the run directory.
        inputs: files to predict on (``.npy``, ``.csv``, images); see ``glassnet.data.inputs``.
        data: instead of files, a dataset whose ``split`` is predicted (with its true labels); the
            run's own dataset is loaded with the run's data options (``data_args``).
        split: ``train``, ``val`` or ``test``.
        limit: predict only the first ``limit`` examples of the split.
        onnx: serve the predictions from the exported ONNX file with ONNX Runtime instead of
            PyTorch: True for the run's ``compressed/model.onnx`` (``glassnet compress RUN --export
            onnx``), or the path of another ONNX file of this run (e.g. ``compressed/model.int8.onnx``).

    Returns:
        One record per example: ``input``, ``prediction`` (class name or value), ``confidence``
        (classification) and ``true`` (when predicting a dataset split).
    """
    from glassnet.errors import ConfigError

    run = load(run_dir)
    spec = run.spec
    truth = None
    if data is not None:
        if inputs:
            raise ConfigError("give either input files or --data, not both")
        # the run's own dataset is rebuilt with its options, so vocabularies and lengths match the model
        same = run.config is not None and data == run.config.data
        bundle = load_dataset(data, **(run.config.data_args if same else {}))
        check_compatible(spec, bundle)
        x, y = bundle.split(split).tensors
        if limit is not None:
            x, y = x[:limit], y[:limit]
        labels, truth = [f"{data}:{split}[{i}]" for i in range(len(x))], y
    else:
        x, labels = read_inputs(list(inputs or []), spec)
    predictions = _onnx_predictions(run, x, onnx) if onnx else run.predict(x)
    if spec.task == "tag":  # one tag per step, shown as re-cased text (truecase) or tag names
        from glassnet.pipeline.tagging import tag_records

        rows = tag_records(spec, x, predictions.prediction, truth)
        return [{"input": label, **row} for label, row in zip(labels, rows)]
    names = list(spec.class_names)
    records = []
    for i, label in enumerate(labels):
        record: dict[str, Any] = {"input": label}
        if spec.task == "multilabel":  # the names of the labels predicted present (threshold 0.5 each)
            record["prediction"] = _label_names(predictions.prediction[i], names)
            if truth is not None:
                record["true"] = _label_names(truth[i], names)
        elif spec.is_classification:
            k = int(predictions.prediction[i])
            record.update(prediction=names[k] if names else k, confidence=round(float(predictions.confidence[i]), 4))
            if truth is not None:
                record["true"] = names[int(truth[i])] if names else int(truth[i])
        else:
            values = [round(float(v), 4) for v in predictions.prediction[i].reshape(-1)]
            record["prediction"] = values[0] if len(values) == 1 else values
            if truth is not None:
                true_values = [round(float(v), 4) for v in truth[i].reshape(-1)]
                record["true"] = true_values[0] if len(true_values) == 1 else true_values
        records.append(record)
    return records


def _label_names(row: Any, names: list[str]) -> str:
    """``"3 7"``: the labels set in a 0/1 row, by name (index when unnamed); ``-`` for none."""
    present = [names[j] if names else str(j) for j in range(len(row)) if float(row[j]) >= 0.5]
    return " ".join(present) or "-"


def _onnx_predictions(run: Any, inputs: Any, onnx: bool | str | os.PathLike[str]) -> Any:
    """Predictions of the run's ONNX export, decoded by the run's task as PyTorch's are."""
    from pathlib import Path

    from glassnet.compress.export import OnnxModel
    from glassnet.errors import ConfigError
    from glassnet.train import Predictions
    from glassnet.train.tasks import get_task

    path = Path(run.path) / "compressed" / "model.onnx" if onnx is True else Path(onnx)
    if path.suffix != ".onnx":
        raise ConfigError(
            f"--onnx takes an .onnx file (or nothing, for RUN/compressed/model.onnx). Received: --onnx {onnx}; "
            "put input files before --onnx, e.g. `glassnet predict RUN digit.png --onnx`"
        )
    if onnx is not True and not path.is_file() and (Path(run.path) / path).is_file():
        path = Path(run.path) / path  # a path relative to the run, e.g. compressed/model.int8.onnx
    outputs = OnnxModel(path).predict(inputs)
    return Predictions(outputs=outputs, **get_task(run.spec.task).decode(outputs))
