"""Seeded train/validation/test splits, stratified by class (or by target quantile)."""

from __future__ import annotations

import numpy as np

from glassnet.errors import ConfigError


def stratified_split(
    targets: np.ndarray,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    classification: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split example indices into disjoint train, validation and test index arrays.

    Each class keeps its proportion in every split (regression targets are stratified by
    quantile bins), and the same ``seed`` always gives the same split.

    Args:
        targets: one label (or regression target) per example.
        val_fraction: share of examples for validation, in [0, 1).
        test_fraction: share of examples for testing, in (0, 1).
        seed: seed of the shuffling.
        classification: stratify by label when True, by target quantiles otherwise.

    Returns:
        Sorted ``(train, val, test)`` index arrays.

    Raises:
        ConfigError: the fractions leave no training data or a class is too small to split.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "need 0 < test_fraction < 1, 0 <= val_fraction < 1 and val_fraction + test_fraction < 1. "
            f"Received: val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    targets = np.asarray(targets)
    strata = targets if classification else _quantile_bins(targets)
    index = np.arange(len(targets))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=strata)
        if val_fraction == 0:
            return np.sort(rest), np.array([], dtype=int), np.sort(test)
        train, val = train_test_split(
            rest,
            test_size=val_fraction / (1 - test_fraction),
            random_state=seed + 1,
            stratify=strata[rest],
        )
    except ValueError as exc:
        raise ConfigError(f"cannot make a stratified split with these fractions: {exc}") from exc
    return np.sort(train), np.sort(val), np.sort(test)


def _quantile_bins(values: np.ndarray, bins: int = 5) -> np.ndarray:
    values = values.reshape(len(values), -1)[:, 0]
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, values)
