"""Fixtures of the robust tests: a small trained image classifier and a tabular one (module-scoped, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.data import bundle_from_arrays


def quadrant_images(n: int = 240, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """1x8x8 images whose class is the bright quadrant (as tests/conftest.py's image_bundle)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.uniform(0, 0.2, size=(n, 1, 8, 8)).astype(np.float32)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 0.7
    return x, y


@pytest.fixture(scope="session")
def quadrants():
    x, y = quadrant_images()
    return bundle_from_arrays(
        x, y, name="quadrants", modality="image", task="classify", class_names=("a", "b", "c", "d")
    )


@pytest.fixture(scope="session")
def image_model(quadrants):
    """A trained cnn that classifies the quadrant images (almost) perfectly."""
    torch.manual_seed(0)
    model = gn.create_model("cnn", quadrants.spec, channels=[8], hidden=16, dropout=0.0)
    gn.Trainer(task="classify", max_epochs=15, lr=1e-2, seed=0).fit(model, quadrants)
    return model.eval()


@pytest.fixture(scope="session")
def blobs_bundle():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 5))
    y = np.arange(240) % 3
    x = (50 + 10 * (centres[y] + rng.normal(0, 0.5, size=(240, 5)))).astype(np.float32)
    return bundle_from_arrays(x, y, name="blobs", modality="tabular", task="classify", class_names=("a", "b", "c"))


@pytest.fixture(scope="session")
def tabular_model(blobs_bundle):
    torch.manual_seed(0)
    model = gn.create_model("mlp", blobs_bundle.spec, width=16)
    gn.Trainer(task="classify", max_epochs=20, lr=1e-2, seed=0).fit(model, blobs_bundle)
    return model.eval()


@pytest.fixture(scope="session")
def digits_model():
    """An undefended cnn on scikit-learn's 8x8 digits (no GLASSNET_DATA needed; ~7 s), with 128 test examples."""
    bundle = gn.load_dataset("digits")
    torch.manual_seed(0)
    model = gn.create_model("cnn", bundle.spec)
    gn.Trainer(task="classify", max_epochs=10, batch_size=64, seed=0).fit(model, bundle.train)
    x, y = bundle.test.tensors
    return model.eval(), x[:128], y[:128]


def _random_text_model(classes: int = 2):
    """An untrained GRU over 12 word ids (the last 3 padding) and the classes it predicts for 40 random texts."""
    torch.manual_seed(0)
    vocab = ["<pad>", "<unk>", *[f"w{i}" for i in range(30)]]
    spec = gn.DataSpec(
        modality="text",
        input_shape=(12,),
        task="classify",
        num_outputs=classes,
        extra={"vocab": vocab, "tokenizer": "word", "lowercase": True, "pad_index": 0, "max_length": 12},
    )
    model = gn.create_model("gru", spec).eval()
    tokens = torch.randint(2, 32, (40, 12))
    tokens[:, 9:] = 0  # padding
    with torch.no_grad():
        y = model(tokens).argmax(1)  # the model is right by construction
    return model, spec, tokens, y


@pytest.fixture
def make_text_model():
    """``make_text_model(classes)`` -> ``(model, spec, tokens, y)``: a fresh random text classifier."""
    return _random_text_model
