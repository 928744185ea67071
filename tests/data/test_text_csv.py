"""Tests of the text CSV loader (``label,text``) and the ``sentiment`` / ``20newsgroups`` built-ins."""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import glassnet.data.text as text_data
from glassnet.data import DataSpec, load_dataset
from glassnet.data.text import encode_texts, load_text_csv, looks_like_text_csv, sequence_lengths, tokenize
from glassnet.errors import ConfigError, DataError

SHARED = os.environ.get("GLASSNET_DATA")
needs_shared = pytest.mark.skipif(
    not (SHARED and (Path(SHARED) / "text").is_dir()), reason="text CSVs absent: set GLASSNET_DATA to ../shared/data"
)


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, ...] = ("label", "text")) -> Path:
    """Write a CSV (csv module quoting, so texts may hold commas and line breaks)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def unique_word_rows(n: int = 60) -> list[tuple[str, str]]:
    """Rows 'good|bad common wNN': one word shared by all, one word unique to each row."""
    return [("pos" if i % 2 else "neg", f"{'good' if i % 2 else 'bad'} common w{i:02d}") for i in range(n)]


def decode(ids: torch.Tensor, vocab: list[str]) -> list[str]:
    return [vocab[i] for i in ids.tolist() if i != 0]


# --------------------------------------------------------------------------- tokenising


def test_word_tokenizer_lowercases_keeps_apostrophes_and_drops_punctuation():
    assert tokenize("Don't STOP, believing!! 42 times...") == ["don't", "stop", "believing", "42", "times"]
    assert tokenize("Don't STOP", lowercase=False) == ["Don't", "STOP"]
    assert tokenize("?!, ...") == []


def test_char_tokenizer_keeps_every_character():
    assert tokenize("Ab c!", "char") == ["a", "b", " ", "c", "!"]
    assert tokenize("Ab", "char", lowercase=False) == ["A", "b"]


def test_sequence_lengths_count_up_to_the_last_real_token():
    ids = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0], [2, 3, 4, 9], [0, 0, 0, 0]])
    assert sequence_lengths(ids).tolist() == [2, 1, 4, 1]  # all padding -> 1: packing refuses 0
    assert sequence_lengths(torch.tensor([[3, 3, 9]]), pad_index=9).tolist() == [2]


def test_sequence_lengths_reject_one_dimensional_input():
    with pytest.raises(DataError, match=r"shape \(N, L\).*\(4,\)"):
        sequence_lengths(torch.tensor([1, 2, 0, 0]))


# --------------------------------------------------------------------------- loading


def test_bundle_holds_int64_token_ids_with_a_text_spec(tmp_path):
    bundle = load_text_csv(write_csv(tmp_path / "reviews.csv", unique_word_rows()), max_length=5)
    spec = bundle.spec
    assert spec.modality == "text" and spec.task == "classify" and spec.input_shape == (5,)
    assert spec.class_names == ("neg", "pos") and spec.num_outputs == 2 and spec.name == "reviews"
    assert spec.input_mean is None and spec.input_std is None  # token ids are never standardised
    assert spec.extra["pad_index"] == 0 and spec.extra["unk_index"] == 1
    assert spec.extra["vocab"][:2] == ["<pad>", "<unk>"] and spec.extra["tokenizer"] == "word"
    assert spec.extra["max_length"] == 5 and spec.extra["lowercase"] is True
    x, y = bundle.train.tensors
    assert x.dtype == torch.int64 and y.dtype == torch.int64 and x.shape[1] == 5
    assert sum(len(s) for s in (bundle.train, bundle.val, bundle.test)) == 60
    assert bundle.info["format"] == "text" and bundle.info["max_length_from"].startswith("given")


def test_vocabulary_is_built_on_the_training_split_only(tmp_path):
    bundle = load_text_csv(write_csv(tmp_path / "t.csv", unique_word_rows()), min_freq=1)
    vocab = bundle.spec.extra["vocab"]
    train_words = {w for row in bundle.train.tensors[0] for w in decode(row, vocab)}
    assert set(vocab[2:]) == train_words  # every entry comes from a training row ...
    assert len(vocab) == 2 + 3 + len(bundle.train)  # good, bad, common + one unique word per train row
    for split in (bundle.val, bundle.test):
        ids = split.tensors[0]
        assert (ids[:, 2] == 1).all()  # ... so each held-out row's unique word is <unk>
        assert (ids[:, 1] == vocab.index("common")).all()


def test_a_word_only_in_the_test_file_maps_to_unk(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("a", "red apple"), ("b", "blue sky")] * 10)
    test = write_csv(tmp_path / "test.csv", [("a", "red zebra"), ("b", "blue")])
    bundle = load_text_csv(train, test_file=test, max_length=3)
    vocab = bundle.spec.extra["vocab"]
    assert "zebra" not in vocab
    red = vocab.index("red")
    assert bundle.test.tensors[0].tolist() == [[red, 1, 0], [vocab.index("blue"), 0, 0]]


def test_min_freq_drops_rare_tokens(tmp_path):
    rows = [("a", "often often rare"), ("b", "often")] * 1 + [("a", "often"), ("b", "often")] * 10
    path = write_csv(tmp_path / "t.csv", rows)
    kept = load_text_csv(path, min_freq=1, val_fraction=0.0, test_fraction=0.1, split_seed=1)
    dropped = load_text_csv(path, min_freq=2, val_fraction=0.0, test_fraction=0.1, split_seed=1)
    train_has_rare = any("rare" in decode(r, kept.spec.extra["vocab"]) for r in kept.train.tensors[0])
    assert ("rare" in kept.spec.extra["vocab"]) == train_has_rare
    assert "rare" not in dropped.spec.extra["vocab"] and "often" in dropped.spec.extra["vocab"]


def test_vocab_size_caps_the_vocabulary_keeping_the_most_frequent(tmp_path):
    # 'w0' appears in every row, 'w1' in every second, ... so frequency ranks are known.
    rows = [("ab"[i % 2], " ".join(f"w{k}" for k in range(8) if i % (k + 1) == 0)) for i in range(120)]
    bundle = load_text_csv(write_csv(tmp_path / "t.csv", rows), vocab_size=5, min_freq=1)
    assert bundle.spec.extra["vocab"] == ["<pad>", "<unk>", "w0", "w1", "w2"]
    assert bundle.info["vocab_size"] == 5


def test_vocabulary_ties_are_broken_alphabetically(tmp_path):
    rows = [("a", "zeta alpha mid"), ("b", "mid alpha zeta")] * 10
    bundle = load_text_csv(write_csv(tmp_path / "t.csv", rows), min_freq=1)
    assert bundle.spec.extra["vocab"] == ["<pad>", "<unk>", "alpha", "mid", "zeta"]


def test_long_texts_lose_their_end_short_ones_are_padded_empty_ones_get_unk(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("a", "one two three four five"), ("b", "one")] * 10)
    test = write_csv(tmp_path / "test.csv", [("a", "one two three four five"), ("b", "one"), ("a", "!!")])
    bundle = load_text_csv(train, test_file=test, max_length=3)
    vocab = bundle.spec.extra["vocab"]
    x = bundle.test.tensors[0]
    assert decode(x[0], vocab) == ["one", "two", "three"]
    assert x[1].tolist() == [vocab.index("one"), 0, 0]
    assert x[2].tolist() == [1, 0, 0]  # no tokens: one <unk>, so its length is 1, not 0
    assert sequence_lengths(x).tolist() == [3, 1, 1]


def test_default_max_length_is_the_95th_percentile_of_train_lengths_within_8_and_512(tmp_path):
    # With a test file and no validation split, the training split is exactly the first file.
    rows = [("ab"[i % 2], " ".join(["w"] * (10 + i))) for i in range(40)]
    test = write_csv(tmp_path / "test.csv", [("a", " ".join(["w"] * 300))])
    bundle = load_text_csv(write_csv(tmp_path / "t.csv", rows), test_file=test, val_fraction=0.0)
    expected = int(np.ceil(np.percentile(np.arange(10, 50), 95)))  # 48, from training rows only
    assert bundle.spec.input_shape == (expected,) and bundle.spec.extra["max_length"] == expected
    assert bundle.info["max_length_from"].startswith(f"95th percentile of training lengths ({expected})")
    assert bundle.info["truncated_share"] == {"train": 0.025, "val": 0.0, "test": 1.0}
    short = load_text_csv(write_csv(tmp_path / "short.csv", [("a", "x"), ("b", "y y")] * 10))
    assert short.spec.input_shape == (8,)
    long = load_text_csv(write_csv(tmp_path / "long.csv", [("a", "x " * 900), ("b", "y " * 800)] * 10))
    assert long.spec.input_shape == (512,) and long.info["truncated_share"]["train"] == 1.0


def test_char_tokenizer_bundle(tmp_path):
    rows = [("a", "abc"), ("b", "cab!")] * 10
    bundle = load_text_csv(write_csv(tmp_path / "t.csv", rows), tokenizer="char", min_freq=1, max_length=4)
    vocab = bundle.spec.extra["vocab"]
    assert set(vocab[2:]) == {"a", "b", "c", "!"} and bundle.spec.extra["tokenizer"] == "char"
    assert {"".join(decode(r, vocab)) for r in bundle.train.tensors[0]} == {"abc", "cab!"}


def test_encode_texts_with_a_round_tripped_spec_matches_the_loader(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("a", "Red apple, green pear"), ("b", "blue sky today")] * 10)
    raw_test = ["RED apple and a pear", "sky blue!", "", "never seen words"]
    test = write_csv(tmp_path / "test.csv", list(zip("abab", raw_test)))
    bundle = load_text_csv(train, test_file=test, max_length=4)
    spec = DataSpec.from_dict(json.loads(json.dumps(bundle.spec.to_dict())))
    assert torch.equal(encode_texts(raw_test, spec), bundle.test.tensors[0])
    assert encode_texts([], spec).shape == (0, 4)


def test_encode_texts_refuses_a_spec_without_a_vocabulary(tabular_bundle):
    with pytest.raises(DataError, match="modality 'tabular'.*missing vocab, tokenizer, lowercase"):
        encode_texts(["hello"], tabular_bundle.spec)


def test_test_file_is_the_test_split_and_validation_is_stratified_from_the_first_file(tmp_path):
    rows = [("a", f"alpha {i}") for i in range(30)] + [("b", f"beta {i}") for i in range(10)]
    train = write_csv(tmp_path / "train.csv.gz", rows)
    test = write_csv(tmp_path / "test.csv", [("b", "beta"), ("a", "alpha"), ("b", "beta")])
    bundle = load_text_csv(train, test_file=test, val_fraction=0.25, test_fraction=0.5)
    assert len(bundle.train) + len(bundle.val) == 40 and len(bundle.test) == 3
    assert torch.bincount(bundle.val.tensors[1]).tolist() == [8, 2]  # 3:1, like the file
    assert bundle.test.tensors[1].tolist() == [1, 0, 1]  # in file order
    assert bundle.info["test_file"] == str(test) and bundle.info["test_fraction"] is None
    no_val = load_text_csv(train, test_file=test, val_fraction=0.0)
    assert len(no_val.train) == 40 and len(no_val.val) == 0


def test_same_options_give_the_same_bundle_and_another_seed_another_split(tmp_path):
    path = write_csv(tmp_path / "t.csv", unique_word_rows())
    a, b, c = load_text_csv(path), load_text_csv(path), load_text_csv(path, split_seed=1)
    assert a.spec.to_dict() == b.spec.to_dict()
    assert torch.equal(a.test.tensors[0], b.test.tensors[0]) and torch.equal(a.train.tensors[1], b.train.tensors[1])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_quoted_commas_line_breaks_extra_columns_and_blank_rows_are_read(tmp_path):
    path = tmp_path / "t.csv"
    body = 'id,text,label\n1,"hello, world",x\n\n2,"two\nlines",y\n,,\n' + "3,more,x\n4,text,y\n" * 5
    path.write_text(body, encoding="utf-8")
    rows = text_data.read_text_csv(path)
    assert rows.labels[:2] == ["x", "y"] and rows.texts[:2] == ["hello, world", "two\nlines"]
    assert rows.lines[:3] == [2, 4, 7] and len(rows.labels) == 12


def test_detection_and_load_dataset_by_path(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", unique_word_rows())
    gz = write_csv(tmp_path / "reviews.csv.gz", unique_word_rows())
    table = write_csv(tmp_path / "table.csv", [("a", "1")], header=("label", "x"))
    (tmp_path / "notes.txt").write_text("label,text\n")
    assert looks_like_text_csv(path) and looks_like_text_csv(gz)
    assert not looks_like_text_csv(table) and not looks_like_text_csv(tmp_path / "notes.txt")
    assert not looks_like_text_csv(tmp_path)
    assert load_dataset(str(path)).spec.modality == "text"  # detected
    bundle = load_dataset(str(gz), format="text", max_length=3, tokenizer="char")
    assert bundle.spec.input_shape == (3,) and bundle.spec.name == "reviews"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("missing, header", [("label", ("category", "text")), ("text", ("label", "Text"))])
def test_a_missing_column_is_named_with_the_columns_that_exist(tmp_path, missing, header):
    path = write_csv(tmp_path / "t.csv", [("a", "x"), ("b", "y")], header=header)
    with pytest.raises(DataError, match=f"has no '{missing}' column") as info:
        load_text_csv(path)
    message = str(info.value)
    assert str(path) in message and all(f"'{c}'" in message for c in header)
    if missing == "text":
        assert "Did you mean 'Text'" in message


def test_a_row_without_a_label_is_named_by_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('label,text\na,"two\nlines"\nb,fine\n  ,orphan text\na,x\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 5: the 'label' column is empty") as info:
        load_text_csv(path)
    assert str(path) in str(info.value)


def test_a_row_with_extra_fields_is_named_by_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,text\na,fine\nb,hello, world\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: 3 fields, but the header has 2.*Quote texts") as info:
        load_text_csv(path)
    assert str(path) in str(info.value)


def test_a_single_class_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", [("pos", "good"), ("pos", "fine")] * 5)
    with pytest.raises(DataError, match=r"single class \('pos' on all 10 rows\).*at least two labels") as info:
        load_text_csv(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_an_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"empty.csv' is empty.*header row 'label,text'"):
        load_text_csv(path)


def test_a_header_without_rows_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", [])
    with pytest.raises(DataError, match=r"t.csv' has a header \(label, text\) but no rows"):
        load_text_csv(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("label,text\na,fine\nb,caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv' is not UTF-8 text: byte 0xe9 on line 3.*iconv"):
        load_text_csv(path)


def test_binary_garbage_and_a_corrupt_gzip_are_refused(tmp_path):
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(DataError, match="image.csv' is not UTF-8 text"):
        load_text_csv(binary)
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes(gzip.compress(b"label,text\n" + b"a,x\n" * 100)[:30])
    with pytest.raises(DataError, match=r"cannot read '.*t.csv.gz'.*complete file"):
        load_text_csv(truncated)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"text CSV '.*nowhere.csv' not found"):
        load_text_csv(tmp_path / "nowhere.csv")


def test_unknown_tokenizer_lists_the_tokenizers(tmp_path):
    path = write_csv(tmp_path / "t.csv", unique_word_rows())
    with pytest.raises(
        ConfigError,
        match=r"unknown tokenizer 'words'. Did you mean 'word'\? Available: char, minilm, word; or give a pretrained",
    ):
        load_text_csv(path, tokenizer="words")
    with pytest.raises(ConfigError, match="unknown tokenizer 'bpe'"):
        tokenize("x", "bpe")


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_max_length_below_one_or_not_whole_is_refused(tmp_path, value):
    path = write_csv(tmp_path / "t.csv", unique_word_rows())
    with pytest.raises(ConfigError, match=rf"max_length must be a whole number >= 1.*Received: {value!r}"):
        load_text_csv(path, max_length=value)


@pytest.mark.parametrize("option, value", [("vocab_size", 2), ("min_freq", 0), ("lowercase", "yes")])
def test_other_bad_options_are_refused(tmp_path, option, value):
    path = write_csv(tmp_path / "t.csv", unique_word_rows())
    with pytest.raises(ConfigError, match=rf"{option} must be .*Received: {value!r}"):
        load_text_csv(path, **{option: value})


def test_a_class_too_small_to_split_is_named(tmp_path):
    path = write_csv(tmp_path / "t.csv", [("a", "x")] * 20 + [("rare", "y")] * 2)
    with pytest.raises(DataError, match=r"class 'rare' has 2 row\(s\).*at least 3 per class"):
        load_text_csv(path)


def test_a_test_file_label_unknown_to_the_first_file_is_named(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("a", "x"), ("b", "y")] * 10)
    test = write_csv(tmp_path / "test.csv", [("a", "x"), ("c", "z")])
    with pytest.raises(DataError, match=r"test.csv', line 3: label 'c' does not occur in .*train.csv'.*a, b"):
        load_text_csv(train, test_file=test)


@pytest.mark.parametrize("name, missing", [("sentiment", "text/sentiment.csv"), ("20newsgroups", "text/20newsgroups")])
def test_builtins_absent_say_where_to_put_the_files(tmp_path, monkeypatch, name, missing):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=f"needs the file '{missing}") as info:
        load_dataset(name)
    message = str(info.value)
    assert "Set GLASSNET_DATA" in message and "../shared/data" in message and str(tmp_path / "cache") in message


def test_builtins_are_listed_and_newsgroups_has_no_test_fraction():
    from glassnet.data import list_datasets

    infos = {d.name: d for d in list_datasets()}
    assert infos["sentiment"].modality == "text" and infos["20newsgroups"].task == "classify"
    with pytest.raises(ConfigError, match="has no option 'test_fraction'"):
        load_dataset("20newsgroups", test_fraction=0.2)


# --------------------------------------------------------------------------- shared data


@needs_shared
def test_sentiment_loads_with_the_readme_label_counts():
    bundle = load_dataset("sentiment")
    assert bundle.spec.class_names == ("negative", "neutral", "positive")
    labels = torch.cat([bundle.split(s).tensors[1] for s in ("train", "val", "test")])
    assert len(labels) == 38158 and torch.bincount(labels).tolist() == [16186, 15018, 6954]
    assert len(bundle.test) == pytest.approx(0.15 * 38158, abs=2)
    assert 8 <= bundle.spec.input_shape[0] <= 512 and bundle.info["unk_share"]["test"] < 0.15


@needs_shared
def test_20newsgroups_loads_with_its_official_test_split():
    bundle = load_dataset("20newsgroups", max_length=64)
    assert bundle.spec.num_outputs == 20 and len(bundle.spec.class_names) == 20
    assert len(bundle.train) + len(bundle.val) == 11293 and len(bundle.test) == 7528
    assert bundle.spec.class_names[0] == "alt.atheism" and len(bundle.spec.extra["vocab"]) == 20000
    assert bundle.train.tensors[0].shape == (len(bundle.train), 64)
    assert set(torch.bincount(bundle.test.tensors[1]).tolist()) != {0}
