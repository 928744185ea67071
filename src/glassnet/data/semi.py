"""Few labels and an unlabelled pool: ``data.labels_per_class=N`` on any classification dataset.

``with_labels_per_class(bundle, N, seed)`` keeps a seeded, stratified subset of ``N`` examples of
each class of the training split as the labelled training split and moves the rest of the training
split into ``bundle.unlabelled``, an unlabelled pool. The validation and test splits do not change.

The pool is a ``TensorDataset`` of ``(inputs, held-back labels)``. The labels are kept only so that
a run can measure how accurate its pseudo-labels are; the batch source of the semi-supervised steps
(``glassnet.train.semi.SemiSupervisedSource``) takes the pool's inputs alone, so no held-back label
can reach a loss.

``load_dataset(name, labels_per_class=N, labels_seed=S)`` (``data.labels_per_class=N`` on the
command line) applies it to any built-in dataset or user file with a classification task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.errors import ConfigError

OPTIONS = ("labels_per_class", "labels_seed", "unlabelled")
UNKNOWN = -1  # the held-back label of a pool example whose label nobody knows (a user's unlabelled files)
MAX_POOL_FILES = 1_000_000


@dataclass
class SemiSupervisedBundle(DataBundle):
    """A ``DataBundle`` whose training split is a labelled subset, with the rest of it as an unlabelled pool.

    Attributes:
        unlabelled: the pool, a ``TensorDataset`` of ``(inputs, held-back labels)``; the labels are for
            measuring pseudo-labels only, never for training.
    """

    unlabelled: Dataset | None = None


def split_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the labelled-subset options (``labels_per_class``, ``labels_seed``) of ``options``."""
    return {key: options.pop(key) for key in OPTIONS if key in options}


def apply_options(bundle: DataBundle, options: dict[str, Any]) -> DataBundle:
    """``bundle`` with the labelled subset that ``options`` (from ``split_options``) ask for; unchanged without.

    Raises:
        ConfigError: ``labels_seed`` without ``labels_per_class``, or a bad value (see ``with_labels_per_class``).
    """
    if not options:
        return bundle
    if options.get("labels_per_class") is not None:
        bundle = with_labels_per_class(bundle, options["labels_per_class"], options.get("labels_seed", 0))
    elif "labels_seed" in options:
        raise ConfigError(
            "labels_seed chooses which examples keep their labels, so it needs labels_per_class: "
            "e.g. data.labels_per_class=40 data.labels_seed=1"
        )
    if options.get("unlabelled") is not None:
        bundle = with_unlabelled(bundle, options["unlabelled"])
    return bundle


def with_unlabelled(bundle: DataBundle, source: Any) -> SemiSupervisedBundle:
    """Add a user's unlabelled examples to the pool (``data.unlabelled=PATH``).

    ``source`` is a folder (every file in it and its subfolders that the data's modality reads:
    images, ``.txt``/``.csv`` texts, ``.csv`` tables, ``.wav`` sounds, ``.npy`` arrays; class
    subfolders are ignored) or one such file. Each example is read as ``glassnet predict`` reads it
    for this data (images converted to the data's channels and size, texts encoded with its
    vocabulary), so the pool fits the labelled examples. Their labels are unknown
    (``UNKNOWN``): the pseudo-label monitor measures coverage on them, and accuracy only on pool
    examples whose labels were held back (``labels_per_class``).

    Raises:
        ConfigError: the data is not a classification dataset, or ``source`` is not a path.
        DataError: ``source`` is missing, holds no file this data's modality reads, or a file does
            not fit (another modality, a wrong shape: the message names the file).
    """
    from pathlib import Path

    from glassnet.data.inputs import read_inputs
    from glassnet.errors import DataError

    spec = bundle.spec
    if spec.task != "classify":
        raise ConfigError(
            f"data.unlabelled adds examples to learn from without labels beside a classification dataset; "
            f"{spec.name or 'this dataset'!r} is for {spec.task}. Remove data.unlabelled"
        )
    if not isinstance(source, (str, Path)) or not str(source):
        raise ConfigError(f"data.unlabelled must be a folder or a file. Received: data.unlabelled={source!r}")
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"unlabelled data '{path}' not found (data.unlabelled takes a folder or a file)")
    files = _pool_files(path)
    if not files:
        raise DataError(
            f"unlabelled folder '{path}' holds no files (images, .txt, .csv, .wav or .npy) to read for this "
            f"{spec.modality} data"
        )
    try:
        inputs, _ = read_inputs(files, spec)
    except DataError as exc:
        raise DataError(f"unlabelled data: {exc}") from exc
    inputs = inputs.to(split_tensors(bundle.train)[0].dtype)
    unknown = torch.full((len(inputs),), UNKNOWN, dtype=torch.long)
    existing = getattr(bundle, "unlabelled", None)
    if isinstance(existing, TensorDataset) and len(existing):
        inputs = torch.cat([existing.tensors[0], inputs])
        unknown = torch.cat([existing.tensors[1].long(), unknown])
    info = {
        **bundle.info,
        "unlabelled": len(inputs),
        "unlabelled_source": str(path),
        "unlabelled_files": len(files),
        "unlabelled_with_held_back_labels": int((unknown != UNKNOWN).sum()),
    }
    return SemiSupervisedBundle(
        train=bundle.train,
        val=bundle.val,
        test=bundle.test,
        spec=spec,
        info=info,
        unlabelled=TensorDataset(inputs, unknown),
    )


def _pool_files(path: Any) -> list[str]:
    """The files of a folder (recursively, hidden ones skipped, sorted), or the one file given."""
    import os

    from glassnet.errors import DataError

    if path.is_file():
        return [str(path)]
    files: list[str] = []
    for root, folders, names in os.walk(path):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        if len(files) > MAX_POOL_FILES:
            raise DataError(f"unlabelled folder '{path}' holds more than {MAX_POOL_FILES:,} files")
    return files


def with_labels_per_class(bundle: DataBundle, labels_per_class: int, seed: int = 0) -> SemiSupervisedBundle:
    """Keep ``labels_per_class`` labelled training examples per class; the rest become the unlabelled pool.

    Args:
        bundle: a classification bundle.
        labels_per_class: labelled examples kept of each class (the same number for every class).
        seed: which examples are kept (independent of the training seed and of the data's split seed).

    Returns:
        A ``SemiSupervisedBundle`` with the same spec, validation and test splits.

    Raises:
        ConfigError: the task is not classification, ``labels_per_class`` is not a whole number >= 1,
            or a class has fewer training examples than that.
    """
    if bundle.spec.task != "classify":
        raise ConfigError(
            f"data.labels_per_class needs a classification dataset (labels are counted per class); "
            f"{bundle.spec.name or 'this dataset'!r} is for {bundle.spec.task}. Remove data.labels_per_class"
        )
    whole = isinstance(labels_per_class, (int, np.integer)) and not isinstance(labels_per_class, bool)
    if not whole or labels_per_class < 1:
        raise ConfigError(
            f"data.labels_per_class must be a whole number >= 1 (labelled examples kept per class). "
            f"Received: data.labels_per_class={labels_per_class!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"data.labels_seed must be a whole number. Received: data.labels_seed={seed!r}")
    inputs, targets = split_tensors(bundle.train)
    labelled, pool = choose_labelled(targets, int(labels_per_class), int(seed), bundle.spec.class_names)
    info = {
        **bundle.info,
        "labels_per_class": int(labels_per_class),
        "labels_seed": int(seed),
        "labelled": len(labelled),
        "unlabelled": len(pool),
        "unlabelled_class_counts": torch.bincount(targets[pool].long(), minlength=bundle.spec.num_outputs).tolist(),
    }
    return SemiSupervisedBundle(
        train=TensorDataset(inputs[labelled], targets[labelled]),
        val=bundle.val,
        test=bundle.test,
        spec=bundle.spec,
        info=info,
        unlabelled=TensorDataset(inputs[pool], targets[pool]),
    )


def choose_labelled(
    targets: torch.Tensor, per_class: int, seed: int, class_names: tuple[str, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``per_class`` seeded examples of every class, and of the others (both sorted).

    Raises:
        ConfigError: a class has fewer than ``per_class`` examples (it names the class and its count).
    """
    targets = torch.as_tensor(targets).long()
    classes = max(len(class_names), int(targets.max()) + 1 if len(targets) else 0)
    counts = torch.bincount(targets, minlength=classes)
    smallest = int(counts.argmin())
    if int(counts[smallest]) < per_class:
        name = class_names[smallest] if smallest < len(class_names) else str(smallest)
        raise ConfigError(
            f"data.labels_per_class={per_class} is more than the training split holds of class {name!r} "
            f"({int(counts[smallest])} examples; the smallest class). "
            f"Use data.labels_per_class <= {int(counts[smallest])}"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(classes):
        members = torch.nonzero(targets == label).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    labelled = torch.cat(chosen).sort().values
    keep = torch.ones(len(targets), dtype=torch.bool)
    keep[labelled] = False
    return labelled, torch.nonzero(keep).flatten()
