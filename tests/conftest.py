"""Shared fixtures: small generated datasets so the core suite needs no downloads."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from glassnet.data import DataBundle, DataSpec, bundle_from_arrays
from glassnet.models import create_model


def pytest_configure(config: pytest.Config) -> None:
    """Under ``pytest -n N`` (``make test``), each worker process gets one torch thread and a cache of its own.

    One thread: N workers already keep N cores busy, and an OpenMP team per worker would spin for cores
    it does not get; ``GLASSNET_THREADS=1`` fixes it for the commands a test runs as well, so two runs
    compared bit for bit never differ by a thread count chosen from the other worker's load. A cache
    per worker: datasets synthesised on first use (spoken digits, one voice) are never built by two
    workers into one folder at the same time.
    """
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is None:
        return
    torch.set_num_threads(1)
    os.environ["GLASSNET_THREADS"] = "1"  # commands run in and by this worker too, whatever the load
    from glassnet.data.locate import cache_dir

    os.environ["GLASSNET_CACHE"] = str(cache_dir() / "pytest-workers" / worker)


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


# --- a tiny BERT encoder in the Hugging Face layout (tests of pretrained text encoders) -----------

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["good", "great", "bad", "awful", "movie", "film", "it", "was", "a", "the", "very", "##s", "##ly", "!", ","]
SIZES = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
CONFIG = {"model_type": "bert", "hidden_act": "gelu", "max_position_embeddings": 32, "type_vocab_size": 2, **SIZES}


def text_spec(vocab: list[str], length: int = 12, classes: int = 2) -> DataSpec:
    return DataSpec(
        name="tiny-text",
        modality="text",
        task="classify",
        input_shape=(length,),
        num_outputs=classes,
        class_names=tuple(f"c{i}" for i in range(classes)),
        extra={"vocab": vocab, "pad_index": 0},
    )


def _write_encoder(directory: Path, seed: int = 0, config: dict | None = None) -> Path:
    """``config.json``, ``vocab.txt`` and ``model.safetensors`` (random weights under BERT's names, with
    the pooler and position-id buffer a Hugging Face checkpoint carries)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIALS + WORDS
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (directory / "config.json").write_text(json.dumps(config or CONFIG))
    torch.manual_seed(seed)
    model = create_model(
        "bert", text_spec(vocab), width=16, layers=2, heads=2, ff=32, max_positions=32
    )  # sizes of CONFIG
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("head.")}
    state["pooler.dense.weight"] = torch.randn(16, 16)
    state["pooler.dense.bias"] = torch.zeros(16)
    state["embeddings.position_ids"] = torch.arange(32)[None]
    save_file(state, str(directory / "model.safetensors"))
    return directory


def _write_reviews(path: Path, rows: int = 40) -> Path:
    good = ["good movie", "a great film", "it was very good", "great great film !"]
    bad = ["bad movie", "an awful film", "it was very bad", "awful , bad film"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        for i in range(rows):
            writer.writerow(["pos", good[i % 4]] if i % 2 else ["neg", bad[i % 4]])
    return path


@pytest.fixture
def tiny_encoder(tmp_path):
    """A directory holding a tiny random BERT: ``config.json``, ``vocab.txt``, ``model.safetensors``."""
    return _write_encoder(tmp_path / "tiny-bert")


@pytest.fixture
def write_encoder():
    """``write_encoder(directory, seed=0, config=None)``: the tiny BERT directory, written where asked."""
    return _write_encoder


@pytest.fixture
def reviews_csv(tmp_path):
    """A ``label,text`` CSV of 40 short reviews in the tiny encoder's words."""
    return _write_reviews(tmp_path / "reviews.csv")


@pytest.fixture
def write_mask_folder():
    """``write(root, n=20, size=(12, 10), palette=False, classes=None, unlabelled=True)``: a ``masks``-format
    folder of ``n`` grey images with a bright square whose mask holds class 1 or 2 (and 255 at one corner)."""
    return _mask_folder


def _mask_folder(root, n=20, size=(12, 10), palette=False, classes=None, unlabelled=True):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros(size, np.uint8)
        mask[2:6, 2:6] = 1 + i % 2
        if unlabelled:
            mask[0, 0] = 255
        image = (mask > 0) * 200 + rng.integers(0, 30, size)
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"s{i:02d}.png")
        picture = Image.fromarray(mask)
        if palette:
            picture = picture.convert("P")
        picture.save(root / "masks" / f"s{i:02d}.png")
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


TONES = {"a": 300.0, "b": 700.0, "c": 1300.0, "d": 2500.0}


def tone_speech(root, n: int = 400, seed: int = 0, rate: int = 8000, speakers: int = 5):
    """A ``transcripts`` folder of a tone language: ``n`` clips of 1 to 3 words of 1 to 3 letters, each letter a
    tone (``TONES``, each occurrence off by up to 3%), the clips named as said by ``speakers`` speakers in turn."""
    from scipy.io import wavfile

    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True)
    rows = []
    for k in range(n):
        words = ["".join(rng.choice(list(TONES), size=rng.integers(1, 4))) for _ in range(rng.integers(1, 4))]
        parts = [np.zeros(int(0.05 * rate))]
        for w, word in enumerate(words):
            if w:
                parts.append(np.zeros(int(rng.uniform(0.05, 0.09) * rate)))
            for letter in word:
                t = np.arange(int(rng.uniform(0.06, 0.1) * rate)) / rate
                parts += [
                    0.5 * np.sin(2 * np.pi * TONES[letter] * rng.uniform(0.97, 1.03) * t),
                    np.zeros(int(0.03 * rate)),
                ]
        wave = np.concatenate(parts)
        wave = wave + rng.normal(0, 0.01, len(wave))
        wavfile.write(root / f"clips/{k:03d}.wav", rate, (wave * 32767).astype(np.int16))
        rows.append([f"clips/{k:03d}.wav", " ".join(words), f"s{k % speakers}"])
    with (root / "transcripts.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["file", "text", "speaker"], *rows])
    return root


@pytest.fixture(scope="session")
def make_tone_speech():
    """``tone_speech(root, n=400, seed=0, rate=8000, speakers=5)``: write a tone-language ``transcripts`` folder."""
    return tone_speech


@pytest.fixture(scope="session")
def tone_run(tmp_path_factory):
    """A ``speech_ctc`` recogniser of the tone language (10 epochs on 400 clips) and its data folder."""
    import glassnet as gn
    from glassnet.config import RunConfig

    root = tmp_path_factory.mktemp("tones")
    data = tone_speech(root / "data")
    config = RunConfig(
        data=str(data), model="speech_ctc", epochs=10, batch_size=4, lr=0.005,
        model_args={"channels": 8, "hidden": 64, "layers": 1, "dropout": 0.0},
    )  # fmt: skip
    return gn.train(config, out=root / "run"), data


@pytest.fixture(scope="session")
def voice_run(tmp_path_factory, tone_run):
    """A ``fastspeech`` voice of one tone-language speaker (20 epochs, aligned by ``tone_run``), its aligner
    and the aligner's data folder."""
    import glassnet as gn
    from glassnet.config import RunConfig

    aligner, many_voices = tone_run
    root = tmp_path_factory.mktemp("voice")
    data = tone_speech(root / "data", n=200, seed=1, speakers=1)
    config = RunConfig(
        data=str(data), model="fastspeech", epochs=20, batch_size=8, lr=0.003,
        data_args={"aligner": str(aligner.path), "mel_bands": 40},
        model_args={"width": 64, "encoder_layers": 2, "decoder_layers": 3},
    )  # fmt: skip
    return gn.train(config, out=root / "voice"), aligner, many_voices
