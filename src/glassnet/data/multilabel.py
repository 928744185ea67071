"""Multi-label datasets: examples that carry any number of labels at once."""

from __future__ import annotations

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.registry import register_dataset
from glassnet.data.splits import stratified_split
from glassnet.errors import ConfigError

SKLEARN = "scikit-learn digits (bundled with the package, BSD-3), composed in pairs"


@register_dataset(
    "digit-pairs",
    task="multilabel",
    modality="image",
    size="3,594 images, 8x16 grey, 10 labels",
    source=SKLEARN,
    description="two handwritten digits side by side; the labels say which digits 0-9 appear (1 or 2 per image)",
)
def digit_pairs(
    pairs_per_digit: float = 2.0, val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0
) -> DataBundle:
    """Pairs of real handwritten digits as 1x8x16 images in [0, 1], labelled with the digits they show.

    The digits are split into train, validation and test first (stratified, seeded) and pairs are
    composed within each split only, so no handwritten digit of the test split is ever seen in
    training. An image showing the same digit twice has one label.

    Args:
        pairs_per_digit: pairs composed per digit of each split (2.0: about 2,500 training images).
        val_fraction: share of the digits for validation.
        test_fraction: share of the digits for the test split.
        split_seed: seed of the split and of the pairing.

    Raises:
        ConfigError: ``pairs_per_digit`` is not a positive number.
    """
    from sklearn.datasets import load_digits

    if isinstance(pairs_per_digit, bool) or not isinstance(pairs_per_digit, (int, float)) or pairs_per_digit <= 0:
        raise ConfigError(f"pairs_per_digit must be a number > 0. Received: pairs_per_digit={pairs_per_digit!r}")
    raw = load_digits()
    images = (raw.images / 16.0).astype(np.float32)
    splits = stratified_split(raw.target, val_fraction, test_fraction, split_seed, True)
    rng = np.random.default_rng(split_seed)
    composed = [_pairs(images, raw.target, index, pairs_per_digit, rng) for index in splits]
    counts = {
        name: split[1].sum(axis=0).astype(int).tolist() for name, split in zip(("train", "val", "test"), composed)
    }
    return bundle_from_splits(
        *composed,
        name="digit-pairs",
        modality="image",
        task="multilabel",
        class_names=tuple(str(d) for d in range(10)),
        info={
            "source": SKLEARN,
            "description": "two handwritten digits side by side, labelled with the digits present",
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "pairs_per_digit": pairs_per_digit,
            "label_counts": counts,
        },
    )


def _pairs(
    images: np.ndarray, digits: np.ndarray, index: np.ndarray, per_digit: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``N x 1 x 8 x 16`` images of two digits from ``index`` and their ``N x 10`` 0/1 labels."""
    if len(index) == 0:
        return np.zeros((0, 1, 8, 16), np.float32), np.zeros((0, 10), np.float32)
    n = max(1, round(per_digit * len(index)))
    left, right = rng.choice(index, n), rng.choice(index, n)
    x = np.concatenate([images[left], images[right]], axis=2)[:, None]
    y = np.zeros((n, 10), np.float32)
    y[np.arange(n), digits[left]] = 1
    y[np.arange(n), digits[right]] = 1
    return x, y
