"""Fixtures of the compression tests: small trained models on scikit-learn data (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassnet.cli import main
from glassnet.data import load_dataset
from glassnet.models import create_model
from glassnet.train import Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The compression tests train and time small models: on a busy machine a second torch thread
    only spins against the first (a tiny LSTM trains 20x slower with two), so they use one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_cnn(digits):
    """A small CNN trained on digits for a few epochs (about 0.95 test accuracy)."""
    model = create_model("cnn", digits.spec, channels=[8, 16], hidden=32)
    Trainer(task="classify", max_epochs=6, device="cpu", seed=0).fit(model, digits)
    return model.eval()


@pytest.fixture(scope="session")
def cancer():
    return load_dataset("breast-cancer")


@pytest.fixture(scope="session")
def cancer_mlp(cancer):
    model = create_model("mlp", cancer.spec, width=32)
    Trainer(task="classify", max_epochs=5, device="cpu", seed=0).fit(model, cancer)
    return model.eval()


def train_run(out: Path, *args: str) -> Path:
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def cancer_run(tmp_path_factory):
    """A breast-cancer mlp run directory (tests that write into a run copy it first)."""
    out = tmp_path_factory.mktemp("compress") / "bc"
    return train_run(out, "--data", "breast-cancer", "--model", "mlp", "--epochs", "3", "model.width=16")


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory):
    """A digits cnn run compressed with int8 quantisation and ONNX export through the CLI."""
    out = tmp_path_factory.mktemp("compress") / "digits"
    train_run(out, "--data", "digits", "--model", "cnn", "epochs=3", "model.channels=[8,16]", "model.hidden=32")
    status = main(["compress", str(out), "--quantize", "int8", "--export", "onnx", "--repeats", "5", "--quiet"])
    assert status == 0
    return out


@pytest.fixture(scope="session")
def tokens(make_key_token_bundle):
    """Texts of random tokens padded at the end; class 1 when token 5 occurs (no downloads)."""
    return make_key_token_bundle(480)


@pytest.fixture(scope="session")
def token_lstm(tokens):
    """A bidirectional LSTM that has learnt the key-token task."""
    import torch

    torch.manual_seed(0)
    model = create_model("lstm", tokens.spec, hidden=16, embedding_dim=12, dropout=0.0)
    Trainer(task="classify", max_epochs=8, lr=1e-2, batch_size=32, device="cpu", seed=0).fit(model, tokens)
    return model.eval()
