import numpy as np
import pytest

from glassnet.data import stratified_split
from glassnet.errors import ConfigError


def labels(n=1000, classes=(0.6, 0.3, 0.1), seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(len(classes), size=n, p=classes)


def test_splits_are_disjoint_and_cover_everything():
    y = labels()
    train, val, test = stratified_split(y, 0.15, 0.15, seed=0)
    together = np.concatenate([train, val, test])
    assert len(together) == len(y) == len(set(together.tolist()))
    assert len(test) == pytest.approx(150, abs=1) and len(val) == pytest.approx(150, abs=1)


def test_splits_keep_class_proportions():
    y = labels()
    overall = np.bincount(y) / len(y)
    for part in stratified_split(y, 0.15, 0.15, seed=3):
        share = np.bincount(y[part], minlength=3) / len(part)
        np.testing.assert_allclose(share, overall, atol=0.015)


def test_same_seed_same_split_other_seed_other_split():
    y = labels()
    a, b = stratified_split(y, seed=7), stratified_split(y, seed=7)
    c = stratified_split(y, seed=8)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


def test_regression_targets_are_stratified_by_quantile():
    y = np.linspace(0, 100, 500)
    train, val, test = stratified_split(y, 0.2, 0.2, seed=0, classification=False)
    assert len(set(train) | set(val) | set(test)) == 500
    # every fifth of the range is represented in the test split
    assert len(np.unique(np.searchsorted([20, 40, 60, 80], y[test]))) == 5


def test_zero_validation_fraction_gives_an_empty_validation_split():
    train, val, test = stratified_split(labels(), 0.0, 0.2)
    assert len(val) == 0 and len(train) + len(test) == 1000


@pytest.mark.parametrize("val,test", [(0.5, 0.5), (0.1, 0.0), (-0.1, 0.2), (0.2, 1.0)])
def test_bad_fractions_are_rejected(val, test):
    with pytest.raises(ConfigError, match="test_fraction"):
        stratified_split(labels(), val, test)
