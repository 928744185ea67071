"""Built-in datasets that install with scikit-learn, so they work offline on any machine."""

from __future__ import annotations

import numpy as np

from glassnet.data.bundle import DataBundle, bundle_from_arrays
from glassnet.data.registry import register_dataset

SKLEARN = "scikit-learn (bundled with the package, BSD-3)"


@register_dataset(
    "digits",
    task="classify",
    modality="image",
    size="1,797 images, 8x8 grey, 10 classes",
    source=SKLEARN,
    description="handwritten digits 0-9 (UCI optical recognition of handwritten digits)",
)
def digits(val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0) -> DataBundle:
    """Handwritten digits as 1x8x8 images in [0, 1] (ink is bright)."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = (raw.images / 16.0).astype(np.float32)[:, None, :, :]
    return bundle_from_arrays(
        images,
        raw.target,
        name="digits",
        modality="image",
        task="classify",
        class_names=tuple(str(d) for d in range(10)),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        info={"source": SKLEARN, "description": "handwritten digits 0-9, 8x8 grey"},
    )


@register_dataset(
    "breast-cancer",
    task="classify",
    modality="tabular",
    size="569 rows x 30 features, 2 classes",
    source=SKLEARN,
    description="Wisconsin diagnostic breast cancer: malignant or benign from cell-nucleus measurements",
)
def breast_cancer(val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0) -> DataBundle:
    """Breast-cancer diagnosis from 30 measurements, kept in their own units."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    return bundle_from_arrays(
        raw.data,
        raw.target,
        name="breast-cancer",
        modality="tabular",
        task="classify",
        class_names=tuple(str(c) for c in raw.target_names),
        feature_names=tuple(str(f) for f in raw.feature_names),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        info={"source": SKLEARN, "description": "Wisconsin diagnostic breast cancer"},
    )


@register_dataset(
    "diabetes",
    task="regress",
    modality="tabular",
    size="442 rows x 10 features, 1 target",
    source=SKLEARN,
    description="disease progression one year after baseline (Efron et al. 2004)",
)
def diabetes(val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0) -> DataBundle:
    """Diabetes progression regression, features in their original units."""
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(scaled=False)
    return bundle_from_arrays(
        raw.data,
        raw.target,
        name="diabetes",
        modality="tabular",
        task="regress",
        feature_names=tuple(str(f) for f in raw.feature_names),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        info={"source": SKLEARN, "description": "diabetes disease progression (regression)"},
    )
