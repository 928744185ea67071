"""Data layer: ``DataSpec``, ``DataBundle``, splits and the built-in datasets."""

from glassnet.data import builtin as _builtin  # noqa: F401  (registers the built-in datasets)
from glassnet.data.bundle import DataBundle, bundle_from_arrays
from glassnet.data.registry import DatasetInfo, list_datasets, load_dataset, register_dataset
from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split

__all__ = [
    "DataBundle",
    "DataSpec",
    "DatasetInfo",
    "bundle_from_arrays",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "stratified_split",
]
