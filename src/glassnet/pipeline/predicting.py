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
) -> list[dict[str, Any]]:
    """Predict with a saved run.

    Args:
        run_dir: the run directory.
        inputs: files to predict on (``.npy``, ``.csv``, images); see ``glassnet.data.inputs``.
        data: instead of files, a dataset whose ``split`` is predicted (with its true labels).
        split: ``train``, ``val`` or ``test``.
        limit: predict only the first ``limit`` examples of the split.

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
        bundle = load_dataset(data)
        check_compatible(spec, bundle)
        x, y = bundle.split(split).tensors
        if limit is not None:
            x, y = x[:limit], y[:limit]
        labels, truth = [f"{data}:{split}[{i}]" for i in range(len(x))], y
    else:
        x, labels = read_inputs(list(inputs or []), spec)
    predictions = run.predict(x)
    names = list(spec.class_names)
    records = []
    for i, label in enumerate(labels):
        record: dict[str, Any] = {"input": label}
        if spec.is_classification:
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
