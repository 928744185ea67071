"""Fixtures of the reliability tests: a small trained run, a one-line-error check and file snapshots.

These tests keep the promises of docs/reliability.md; they live together so that the set can be run
and counted alone: ``pytest tests/reliability``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from glassnet.cli import main

sys.path.insert(0, str(Path(__file__).parent))  # the tests import reliability_checks


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Nothing a command writes by default (runs/...) lands in the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """An mlp on breast-cancer, 2 epochs, with its report. Tests that change a run work on a copy."""
    out = tmp_path_factory.mktemp("reliability") / "bc"
    args = ["train", "--data", "breast-cancer", "--model", "mlp", "--epochs", "2", "model.width=16", "--quiet"]
    assert main([*args, "--out", str(out), "--report"]) == 0
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A fresh copy of ``trained_run`` for a test to damage."""
    return Path(shutil.copytree(trained_run, tmp_path / "run", symlinks=True))
