"""Fixtures of the explain tests: small models, trained runs and a synthetic text task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from glassnet.cli import main
from glassnet.data import DataBundle, DataSpec
from glassnet.models import create_model
from glassnet.train import Trainer


def train_run(out: Path, *args: str) -> Path:
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A CNN on scikit-learn digits (test accuracy about 0.97, some 30 s on two busy cores)."""
    out = tmp_path_factory.mktemp("explain") / "digits"
    return train_run(
        out, "--data", "digits", "--model", "cnn", "--epochs", "6", "model.channels=[16,32]", "model.hidden=64"
    )


@pytest.fixture(scope="session")
def cancer_run(tmp_path_factory) -> Path:
    """An MLP on scikit-learn breast-cancer (test accuracy about 0.95)."""
    out = tmp_path_factory.mktemp("explain") / "cancer"
    return train_run(out, "--data", "breast-cancer", "--model", "mlp", "--epochs", "20", "model.width=32")


@pytest.fixture
def tiny_cnn(image_bundle) -> tuple[nn.Module, torch.Tensor]:
    """An untrained CNN on 1 x 8 x 8 images and 12 inputs (fast tests of the mechanics)."""
    torch.manual_seed(0)
    model = create_model("cnn", image_bundle.spec, channels=[4, 8], hidden=16, dropout=0.0).eval()
    return model, image_bundle.test.tensors[0][:12]


@pytest.fixture
def tiny_mlp(tabular_bundle) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("mlp", tabular_bundle.spec, width=16, dropout=0.0).eval()
    return model, tabular_bundle.test.tensors[0][:12]


KEY_TOKEN, VOCAB, LENGTH = 5, 30, 12


def token_bundle(n: int = 600, seed: int = 0) -> DataBundle:
    """Texts of random tokens (padded at the end); class 1 when token 5 occurs, else 0."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(6, VOCAB, size=(n, LENGTH))
    lengths = rng.integers(4, LENGTH + 1, size=n)
    y = np.arange(n) % 2
    for i in range(n):
        if y[i]:
            ids[i, rng.integers(0, lengths[i])] = KEY_TOKEN
        ids[i, lengths[i] :] = 0
    vocab = ["<pad>", "<unk>", *[f"w{i}" for i in range(2, VOCAB)]]
    spec = DataSpec(
        modality="text",
        input_shape=(LENGTH,),
        task="classify",
        num_outputs=2,
        class_names=("without", "with"),
        name="tokens",
        extra={"vocab": vocab, "vocab_size": VOCAB, "pad_index": 0, "unk_index": 1},
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
def token_model() -> tuple[nn.Module, DataBundle]:
    """A GRU that has learnt the key-token task (test accuracy checked by the tests that use it)."""
    bundle = token_bundle()
    torch.manual_seed(0)
    model = create_model("gru", bundle.spec, hidden=16, embedding_dim=16, dropout=0.0)
    Trainer(task="classify", max_epochs=15, lr=1e-2, batch_size=32, seed=0).fit(model, bundle)
    return model.eval(), bundle


@pytest.fixture
def untrained_gru() -> tuple[nn.Module, torch.Tensor]:
    """A GRU over tokens, untrained: enough for the checks that refuse a method."""
    bundle = token_bundle(n=40)
    torch.manual_seed(0)
    return create_model("gru", bundle.spec, hidden=8, embedding_dim=8).eval(), bundle.test.tensors[0][:2]
