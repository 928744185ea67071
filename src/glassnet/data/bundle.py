"""``DataBundle``: the train, validation and test splits of one dataset plus its ``DataSpec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split


@dataclass
class DataBundle:
    """Three splits and the spec that models are built from.

    Attributes:
        train: training split (a torch ``Dataset`` of ``(input, target)`` pairs).
        val: validation split, used for model selection and early stopping.
        test: held-out test split, used once at the end.
        spec: the ``DataSpec`` shared by all splits.
        info: provenance and split options (source, description, seed, fractions).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    spec: DataSpec
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Dataset:
        """Return the split called ``train``, ``val`` or ``test``."""
        from glassnet.errors import UnknownNameError

        if name not in ("train", "val", "test"):
            raise UnknownNameError("split", name, ["train", "val", "test"])
        return getattr(self, name)

    def summary(self) -> dict[str, Any]:
        """Sizes, class counts and provenance, as written into results and the report."""
        splits = {}
        for name in ("train", "val", "test"):
            dataset = getattr(self, name)
            entry: dict[str, Any] = {"size": len(dataset)}
            if self.spec.is_classification and isinstance(dataset, TensorDataset):
                counts = torch.bincount(dataset.tensors[1].long(), minlength=self.spec.num_outputs)
                entry["class_counts"] = counts.tolist()
            splits[name] = entry
        return {
            "name": self.spec.name,
            "modality": self.spec.modality,
            "task": self.spec.task,
            "input_shape": list(self.spec.input_shape),
            "num_outputs": self.spec.num_outputs,
            "class_names": list(self.spec.class_names),
            "splits": splits,
            **self.info,
        }


def bundle_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    modality: str,
    task: str,
    class_names: tuple[str, ...] = (),
    feature_names: tuple[str, ...] = (),
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    info: dict[str, Any] | None = None,
) -> DataBundle:
    """Split in-memory arrays and fit the normalisation statistics on the training split only.

    Args:
        x: inputs in natural units, one example per row (images channels-first).
        y: class indices (classification) or float targets (regression).
        name: dataset name recorded in the spec.
        modality: ``image`` or ``tabular`` (``DataSpec.modality``).
        task: ``classify`` or ``regress``.
        class_names: one name per class.
        feature_names: one name per column (tabular).
        val_fraction: share of examples for validation.
        test_fraction: share of examples for the test split.
        split_seed: seed of the stratified split (independent of the training seed, so the test
            split stays fixed while training seeds vary).
        info: provenance added to ``DataBundle.info``.
    """
    classify = task == "classify"
    train_idx, val_idx, test_idx = stratified_split(y, val_fraction, test_fraction, split_seed, classify)
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64 if classify else np.float32))
    if not classify and y.ndim == 1:
        y = y[:, None]
    x_train = x[train_idx]
    # image statistics per channel, table statistics per column
    dims = [0, *range(2, x.ndim)] if modality == "image" else [0]
    mean, std = x_train.mean(dim=dims), x_train.std(dim=dims)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    target_mean = target_std = None
    if not classify:
        target_mean = tuple(y[train_idx].mean(dim=0).tolist())
        target_std = tuple(y[train_idx].std(dim=0).clamp_min(1e-8).tolist())
    spec = DataSpec(
        modality=modality,
        input_shape=tuple(x.shape[1:]),
        task=task,
        num_outputs=len(class_names) if classify else int(y.shape[1]),
        class_names=class_names,
        feature_names=feature_names,
        input_mean=tuple(mean.tolist()),
        input_std=tuple(std.tolist()),
        target_mean=target_mean,
        target_std=target_std,
        name=name,
    )
    meta = {"val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed}
    meta.update(info or {})
    return DataBundle(
        train=TensorDataset(x_train, y[train_idx]),
        val=TensorDataset(x[val_idx], y[val_idx]),
        test=TensorDataset(x[test_idx], y[test_idx]),
        spec=spec,
        info=meta,
    )
