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
            targets = dataset.tensors[1] if isinstance(dataset, TensorDataset) else getattr(dataset, "targets", None)
            if self.spec.is_classification and isinstance(targets, torch.Tensor):
                entry["class_counts"] = torch.bincount(targets.long(), minlength=self.spec.num_outputs).tolist()
            elif self.spec.task in ("segment", "instances") and isinstance(targets, torch.Tensor):
                if self.spec.task == "instances":  # the semantic mask; the instance map is the second channel
                    targets = targets[:, 0]
                labelled = targets[(targets >= 0) & (targets < self.spec.num_outputs)].long()
                entry["pixel_counts"] = torch.bincount(labelled, minlength=self.spec.num_outputs).tolist()
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

    def _repr_html_(self) -> str:
        """A notebook's view: the spec and the split sizes (Jupyter shows it for a bundle)."""
        from glassnet.notebook import facts_table, shorten

        spec = self.spec
        sizes = " · ".join(f"{name} {len(getattr(self, name)):,}" for name in ("train", "val", "test"))
        rows = [
            ("modality", spec.modality),
            ("task", spec.task),
            ("input shape", " x ".join(str(n) for n in spec.input_shape)),
            ("splits", sizes),
            ("classes" if spec.class_names else "outputs", shorten(spec.class_names) or spec.num_outputs),
            ("features", shorten(spec.feature_names) if spec.feature_names else None),
            ("source", self.info.get("description") or self.info.get("source")),
        ]
        return facts_table(f"DataBundle {spec.name or ''}".strip(), rows)


Split = tuple[Any, Any]


def split_tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's inputs and targets as two tensors (in memory already, or read item by item).

    Raises:
        DataError: the split is empty.
    """
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0], dataset.tensors[1]
    if len(dataset) == 0:
        from glassnet.errors import DataError

        raise DataError("the split is empty")
    pairs = [dataset[i] for i in range(len(dataset))]
    return torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.stack([torch.as_tensor(p[1]) for p in pairs])


def split_targets(dataset: Dataset) -> torch.Tensor:
    """A split's targets, without decoding its inputs where the dataset can say them."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1]
    if isinstance(getattr(dataset, "targets", None), torch.Tensor):
        return dataset.targets
    return torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])


def bundle_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    info: dict[str, Any] | None = None,
    **spec_fields: Any,
) -> DataBundle:
    """Split in-memory arrays (stratified, seeded) and build a bundle with ``bundle_from_splits``.

    Args:
        x: inputs in natural units, one example per row.
        y: class indices (classification) or float targets (regression).
        val_fraction: share of examples for validation.
        test_fraction: share of examples for the test split.
        split_seed: seed of the stratified split (independent of the training seed, so the test
            split stays fixed while training seeds vary).
        info: provenance added to ``DataBundle.info``.
        **spec_fields: ``name``, ``modality``, ``task``, ``class_names`` ... as for
            ``bundle_from_splits``.
    """
    classify = spec_fields.get("task") == "classify"
    y = np.asarray(y)
    train, val, test = stratified_split(y, val_fraction, test_fraction, split_seed, classify)
    meta = {"val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed, **(info or {})}
    x = np.asarray(x)
    return bundle_from_splits((x[train], y[train]), (x[val], y[val]), (x[test], y[test]), info=meta, **spec_fields)


def bundle_from_splits(
    train: Split,
    val: Split,
    test: Split,
    *,
    name: str,
    modality: str,
    task: str,
    class_names: tuple[str, ...] = (),
    feature_names: tuple[str, ...] = (),
    standardize: bool = True,
    extra: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> DataBundle:
    """Build a bundle from ready splits, fitting every statistic on the training split only.

    Inputs are kept in natural units; their mean and standard deviation (per channel for images
    and audio, ``C x ...``; per channel on the last axis for sequences, ``T x C``; per column for
    tables) go into the spec and become the model's first layer. Regression and forecasting
    targets get per-output statistics so that heads predict in natural units.

    Args:
        train: ``(inputs, targets)`` arrays or tensors of the training split; likewise ``val``
            and ``test`` (``val`` may be empty).
        name: dataset name recorded in the spec.
        modality: ``DataSpec.modality``.
        task: ``DataSpec.task``; classification targets are class indices.
        class_names: one name per class (classification).
        feature_names: one name per input column (tabular) or channel (sequence).
        standardize: fit input statistics (False for token ids and other integer inputs).
        extra: ``DataSpec.extra`` (e.g. the vocabulary of a text model). Tables also get
            ``input_range``: each column's minimum and maximum on the training split, which
            ``glassnet predict`` compares new inputs with.
        info: provenance for ``DataBundle.info``.
    """
    # class indices: one per example, one per pixel, or a transcript's symbol ids
    classify = task in ("classify", "segment", "instances", "transcribe")
    integer_inputs = not standardize

    def tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(np.asarray(split[0]), dtype=torch.int64 if integer_inputs else torch.float32)
        y = torch.as_tensor(np.asarray(split[1]), dtype=torch.int64 if classify else torch.float32)
        if not classify and y.ndim == 1:
            y = y[:, None]
        return x, y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = tensors(train), tensors(val), tensors(test)
    if len(x_train) == 0:
        from glassnet.errors import DataError

        raise DataError(f"dataset {name!r} has no training examples")
    mean = std = None
    extra = dict(extra or {})
    if standardize:
        mean, std = _input_statistics(x_train, modality)
        if modality == "tabular" and x_train.ndim == 2 and "input_range" not in extra:
            extra["input_range"] = {"min": x_train.amin(dim=0).tolist(), "max": x_train.amax(dim=0).tolist()}
    target_mean = target_std = None
    if not classify and task != "detect":  # boxes are pixel coordinates with a class column, never standardised
        flat = y_train.reshape(len(y_train), -1)
        target_mean = tuple(flat.mean(dim=0).tolist())
        target_std = tuple(flat.std(dim=0).nan_to_num(1.0).clamp_min(1e-8).tolist())
    spec = DataSpec(
        modality=modality,
        input_shape=tuple(x_train.shape[1:]),
        task=task,
        num_outputs=len(class_names) if classify or task == "detect" else int(y_train[0].numel()),
        class_names=tuple(class_names),
        feature_names=tuple(feature_names),
        input_mean=mean,
        input_std=std,
        target_mean=target_mean,
        target_std=target_std,
        name=name,
        extra=extra,
    )
    return DataBundle(
        train=TensorDataset(x_train, y_train),
        val=TensorDataset(x_val, y_val),
        test=TensorDataset(x_test, y_test),
        spec=spec,
        info=dict(info or {}),
    )


def statistic_axes(modality: str, ndim: int) -> list[int]:
    """Axes of a batch (``N x example``) that input statistics average over, for a modality."""
    if modality in ("image", "audio"):
        return [0, *range(2, ndim)]  # per channel: N x C x ...
    if modality == "sequence":
        return list(range(ndim - 1))  # per channel on the last axis: N x T x C
    return [0]  # per column: N x F


def _input_statistics(x: torch.Tensor, modality: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    axes = statistic_axes(modality, x.ndim)
    mean = x.mean(dim=axes)
    std = x.std(dim=axes) if len(x) > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return tuple(mean.reshape(-1).tolist()), tuple(std.reshape(-1).tolist())
