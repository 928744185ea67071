"""Data layer: ``DataSpec``, ``DataBundle``, ``Modality``, splits, built-in datasets and user-file formats.

Importing the loader modules registers their datasets and formats. ``load_dataset(path)`` takes
the first format whose detection claims the path; the tabular format is a fallback for any CSV,
tried after the formats with a recognisable header (text, time series).
"""

from glassnet.data import annotated as _annotated  # noqa: F401  (images/ + masks/ folders; before "images")
from glassnet.data import audio as _audio  # noqa: F401  (audio folders)
from glassnet.data import builtin as _builtin  # noqa: F401  (digits, breast-cancer, diabetes)
from glassnet.data import corpus as _corpus  # noqa: F401  (20newsgroups-chars)
from glassnet.data import fashion_mnist as _fashion_mnist  # noqa: F401  (fashion-mnist)
from glassnet.data import images as _images  # noqa: F401  (image folders)
from glassnet.data import multilabel as _multilabel  # noqa: F401  (digit-pairs)
from glassnet.data import one_voice as _one_voice  # noqa: F401  (one-voice)
from glassnet.data import scenes as _scenes  # noqa: F401  (digits-scenes, fashion-scenes)
from glassnet.data import spoken_digits as _spoken_digits  # noqa: F401  (spoken-digits)
from glassnet.data import spoken_sentences as _spoken_sentences  # noqa: F401  (spoken-numbers, spoken-commands)
from glassnet.data import strings as _strings  # noqa: F401  (reverse-strings, digits-to-words)
from glassnet.data import tabular as _tabular  # noqa: F401  (any other CSV: the fallback)
from glassnet.data import tagging as _tagging  # noqa: F401  (truecase, truecase-generated)
from glassnet.data import text as _text  # noqa: F401  (text CSV; sentiment, 20newsgroups)
from glassnet.data import timeseries as _timeseries  # noqa: F401  (time-series CSV; sunspots, co2, ecg)
from glassnet.data import transcripts as _transcripts  # noqa: F401  (WAV files + transcripts.csv)
from glassnet.data.bundle import DataBundle, bundle_from_arrays, bundle_from_splits, split_targets, split_tensors
from glassnet.data.loading import load_dataset
from glassnet.data.modality import MODALITIES, Modality, get_modality, register_modality
from glassnet.data.registry import (
    DatasetInfo,
    FormatInfo,
    list_datasets,
    list_formats,
    register_dataset,
    register_format,
)
from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split

__all__ = [
    "DataBundle",
    "DataSpec",
    "DatasetInfo",
    "FormatInfo",
    "MODALITIES",
    "Modality",
    "bundle_from_arrays",
    "bundle_from_splits",
    "get_modality",
    "list_datasets",
    "list_formats",
    "load_dataset",
    "register_dataset",
    "register_format",
    "register_modality",
    "split_targets",
    "split_tensors",
    "stratified_split",
]
