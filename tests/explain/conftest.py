"""Fixtures of the explain tests: small models, trained runs and a synthetic text task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from glassnet.cli import main
from glassnet.data import DataBundle
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


@pytest.fixture(scope="session")
def token_model(make_key_token_bundle) -> tuple[nn.Module, DataBundle]:
    """A GRU that has learnt the key-token task (test accuracy checked by the tests that use it)."""
    bundle = make_key_token_bundle(600, min_length=4)
    torch.manual_seed(0)
    model = create_model("gru", bundle.spec, hidden=16, embedding_dim=16, dropout=0.0)
    Trainer(task="classify", max_epochs=15, lr=1e-2, batch_size=32, seed=0).fit(model, bundle)
    return model.eval(), bundle


@pytest.fixture
def untrained_gru(make_key_token_bundle) -> tuple[nn.Module, torch.Tensor]:
    """A GRU over tokens, untrained: enough for the checks that refuse a method."""
    bundle = make_key_token_bundle(40, min_length=4)
    torch.manual_seed(0)
    return create_model("gru", bundle.spec, hidden=8, embedding_dim=8).eval(), bundle.test.tensors[0][:2]
