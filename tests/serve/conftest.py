"""Fixtures shared by the serve tests."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

GOOD_WORDS = ["sunny", "bright", "happy", "warm", "glad", "joyful", "lovely", "great"]
BAD_WORDS = ["rainy", "dark", "sad", "cold", "gloomy", "awful", "dreary", "poor"]


@pytest.fixture(scope="session")
def word_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 ``label,text`` rows: two classes of short texts over disjoint vocabularies (good, bad)."""
    path = tmp_path_factory.mktemp("serve-words") / "words.csv"
    rng = random.Random(0)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        for i in range(200):
            label, words = ("good", GOOD_WORDS) if i % 2 else ("bad", BAD_WORDS)
            writer.writerow([label, " ".join(rng.choice(words) for _ in range(rng.randint(3, 6)))])
    return path
