"""``load_dataset``: a registered dataset or user files, with the options that reshape any dataset.

It sits above the registry and the loaders (which register themselves there), so the labelled
subset and unlabelled pool of ``glassnet.data.semi``, which read files through the loaders, are
applied here without an import cycle.
"""

from __future__ import annotations

from glassnet.data.bundle import DataBundle
from glassnet.data.registry import load_named
from glassnet.data.semi import apply_options, split_options
from glassnet.errors import ConfigError


def load_dataset(name: str, **options: object) -> DataBundle:
    """Load a built-in dataset, or user files at a path, as a ``DataBundle``.

    Args:
        name: a name from ``list_datasets()``.
        **options: loader options, e.g. ``val_fraction``, ``test_fraction``, ``split_seed``;
            for a path, ``format`` picks the format (default: detected). On any classification
            dataset, ``labels_per_class=N`` (and ``labels_seed``) keeps N labelled training examples
            per class and makes the rest an unlabelled pool (``glassnet.data.semi``); on image
            classification, training applies ``data.generated=RUN`` itself (a generator run's images join
            the training split; ``glassnet.generate.with_generated`` for a loaded bundle), so ``generated*``
            options are refused here.

    Raises:
        UnknownNameError: ``name`` is neither a built-in dataset nor an existing path.
        DataError: the path does not exist or its format is not supported.
        ConfigError: an option is unknown or has a bad value.
    """
    drawn = sorted(key for key in options if key.startswith("generated"))
    if drawn:  # the generator is a run, which the data layer cannot open; training applies these options
        raise ConfigError(
            f"{', '.join(drawn)} {'is a training option' if len(drawn) == 1 else 'are training options'}: give "
            "data.generated=RUN to `glassnet train` (RunConfig data_args), or call "
            "glassnet.generate.with_generated(bundle, RUN) on the loaded data"
        )
    labels = split_options(options)  # labels_per_class: a labelled subset of any classification dataset
    return apply_options(load_named(name, options), labels)
