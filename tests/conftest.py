"""Shared fixtures: small generated datasets so the core suite needs no downloads."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.data import DataBundle, bundle_from_arrays


def blobs(n: int = 240, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian clusters in units far from standardised (mean 50, spread 10)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(classes, features))
    y = np.arange(n) % classes
    x = centres[y] + rng.normal(0, 0.5, size=(n, features))
    return (50 + 10 * x).astype(np.float32), y


def key_token_bundle(n: int, length: int = 12, vocab: int = 30, min_length: int = 3, seed: int = 0) -> DataBundle:
    """Texts of random word ids padded at the end (``min_length`` to ``length`` real tokens); class 1 when
    token 5 occurs, else 0. Split 70/15/15 in order."""
    import torch
    from torch.utils.data import TensorDataset

    from glassnet.data import DataSpec

    rng = np.random.default_rng(seed)
    ids = rng.integers(6, vocab, size=(n, length))
    lengths = rng.integers(min_length, length + 1, size=n)
    y = np.arange(n) % 2
    for i in range(n):
        if y[i]:
            ids[i, rng.integers(0, lengths[i])] = 5
        ids[i, lengths[i] :] = 0
    words = ["<pad>", "<unk>", *[f"w{i}" for i in range(2, vocab)]]
    spec = DataSpec(
        modality="text",
        input_shape=(length,),
        task="classify",
        num_outputs=2,
        class_names=("without", "with"),
        name="tokens",
        extra={"vocab": words, "vocab_size": vocab, "pad_index": 0, "unk_index": 1},
    )
    x, t = torch.as_tensor(ids), torch.as_tensor(y)
    cut1, cut2 = int(0.7 * n), int(0.85 * n)
    return DataBundle(
        train=TensorDataset(x[:cut1], t[:cut1]),
        val=TensorDataset(x[cut1:cut2], t[cut1:cut2]),
        test=TensorDataset(x[cut2:], t[cut2:]),
        spec=spec,
    )


@pytest.fixture(scope="session")
def make_key_token_bundle():
    """``key_token_bundle(n, ...)``: the generated key-token text task (see the function)."""
    return key_token_bundle


@pytest.fixture
def tabular_bundle() -> DataBundle:
    x, y = blobs()
    return bundle_from_arrays(
        x, y, name="blobs", modality="tabular", task="classify", class_names=("a", "b", "c"), split_seed=0
    )


@pytest.fixture
def image_bundle() -> DataBundle:
    """Tiny 1x8x8 images whose class is which quadrant is bright."""
    rng = np.random.default_rng(1)
    n = 160
    y = np.arange(n) % 4
    x = rng.uniform(0, 0.2, size=(n, 1, 8, 8)).astype(np.float32)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 0.7
    return bundle_from_arrays(
        x, y, name="quadrants", modality="image", task="classify", class_names=("tl", "tr", "bl", "br")
    )


@pytest.fixture
def regression_bundle() -> DataBundle:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (100 + 20 * (x @ np.array([1.0, -2.0, 0.5, 0.0])) + rng.normal(0, 1, 300)).astype(np.float32)
    return bundle_from_arrays(x, y, name="linear", modality="tabular", task="regress")
