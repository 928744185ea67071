"""Fixtures shared by the command-line tests: small trained runs and a scratch working folder."""

from pathlib import Path

import pytest

from glassnet.cli import main

TABULAR = ["--data", "breast-cancer", "--model", "mlp"]


def train_quietly(out, *args):
    """Train into ``out`` in-process (fixtures cannot use capsys)."""
    assert main(["train", *map(str, args), "--out", str(out), "--quiet"]) == 0
    return Path(out)


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Nothing a command writes by default (runs/...) lands in the repository; tables are as wide as in a
    100-column terminal, whatever terminal runs the tests."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory):
    """An mlp on breast-cancer, 2 epochs. Tests that damage a run work on a copy of it."""
    return train_quietly(tmp_path_factory.mktemp("cli") / "bc", *TABULAR, "--epochs", "2", "model.width=16")


@pytest.fixture(scope="session")
def image_run(tmp_path_factory):
    """A small cnn on digits, 1 epoch."""
    out = tmp_path_factory.mktemp("cli") / "digits"
    return train_quietly(out, "--data", "digits", "--model", "cnn", "epochs=1", "model.channels=[8]", "model.hidden=16")
