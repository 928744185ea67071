"""Sequence-labelling datasets: the truecase scheme, encoding with padding, and the built-ins."""

import os

import pytest
import torch

from glassnet.data import list_datasets, load_dataset
from glassnet.data.tagging import (
    IGNORE_INDEX,
    LOWER,
    OTHER,
    TRUECASE_TAGS,
    UPPER,
    decode_chars,
    encode_tagged,
    recase,
    render_tags,
    rule_baseline,
    sentence_start_rule,
    truecase_tags,
)
from glassnet.errors import ConfigError, DataError

L, U, O = LOWER, UPPER, OTHER  # noqa: E741


# ---------------------------------------------------------------- the truecase scheme


def test_each_character_gets_its_case_as_a_tag():
    lowered, tags = truecase_tags("Hi, NASA 4u")
    assert lowered == "hi, nasa 4u"
    assert tags == [U, L, O, O, U, U, U, U, O, O, L]


def test_a_character_whose_lower_case_is_longer_keeps_its_place():
    lowered, tags = truecase_tags("İa")  # "İ".lower() is two characters
    assert lowered == "İa" and tags == [O, L]


@pytest.mark.parametrize("text", ["Hello World. I'm here!", "ÉCOLE in Zürich", "", "123 ?!"])
def test_recasing_with_the_true_tags_gives_the_original_back(text):
    assert recase(*truecase_tags(text)) == text


def test_recase_leaves_characters_beyond_the_tags_alone():
    assert recase("abc def", [UPPER, LOWER]) == "Abc def"


@pytest.mark.parametrize(
    "text,capitals",
    [
        ("hello world. this is it", "ht"),
        ("what? no! yes.", "wny"),
        ("i think i'm right, said ida", "ii"),  # "i" alone and in "i'm", not in "ida"
        ("version 2.0 is out", "v"),  # no space after the dot: not a sentence end
        ("  #tag. start", "ts"),
    ],
)
def test_the_sentence_start_rule(text, capitals):
    tags = sentence_start_rule(text)
    assert len(tags) == len(text)
    assert "".join(c for c, t in zip(text, tags) if t == UPPER) == capitals
    assert all((t == OTHER) == (not c.isalpha()) for c, t in zip(text, tags))


# ---------------------------------------------------------------- encoding


def test_long_texts_are_cut_into_pieces_and_padding_is_ignored():
    vocab = ["<pad>", "<unk>", "a", "b"]
    x, y = encode_tagged(["abab", "b", ""], [[0, 1, 0, 1], [1], []], vocab, max_length=3)
    assert x.tolist() == [[2, 3, 2], [3, 0, 0], [3, 0, 0]]  # "aba" | "b" | "b"; the empty text gives no row
    assert y.tolist() == [[0, 1, 0], [1, IGNORE_INDEX, IGNORE_INDEX], [1, IGNORE_INDEX, IGNORE_INDEX]]
    assert x.dtype == y.dtype == torch.int64


def test_unknown_characters_become_unk_and_decode_as_a_replacement():
    vocab = ["<pad>", "<unk>", "a"]
    x, _ = encode_tagged(["a?a"], [[0, 2, 0]], vocab, max_length=4)
    assert x.tolist() == [[2, 1, 2, 0]]
    assert decode_chars(x, vocab) == ["a\ufffda"]


def test_one_tag_per_character_is_required():
    with pytest.raises(DataError, match="3 characters has 2 tags"):
        encode_tagged(["abc"], [[0, 0]], ["<pad>", "<unk>", "a"], max_length=4)


# ---------------------------------------------------------------- truecase-generated


@pytest.fixture(scope="module")
def generated():
    return load_dataset("truecase-generated", n=300, max_length=48)


def test_generated_bundle_has_a_tag_spec_and_aligned_padding(generated):
    spec = generated.spec
    assert (spec.task, spec.modality, spec.input_shape, spec.class_names) == ("tag", "text", (48,), TRUECASE_TAGS)
    assert spec.extra["tokenizer"] == "char" and spec.extra["lowercase"] and spec.extra["ignore_index"] == IGNORE_INDEX
    for split in (generated.train, generated.val, generated.test):
        x, y = split.tensors
        assert x.shape == y.shape and len(x) > 0
        assert torch.equal(x == 0, y == IGNORE_INDEX)  # a target is padding exactly where the input is
        assert not (x[:, 0] == 0).any()  # no empty rows


def test_generated_texts_are_truecased_sentences():
    bundle = load_dataset("truecase-generated", n=100, max_length=300)  # one row per text
    x, y = bundle.train.tensors
    texts = render_tags(bundle.spec, x, y)
    assert all(t[0].isupper() and t[-1] in ".!?" for t in texts)
    # every capital the rule asks for (sentence starts, "I") is in the data; the data has more
    rule = rule_baseline(bundle.spec, x)
    assert not ((rule == UPPER) & (y != UPPER)).any()
    assert ((y == UPPER) & (rule != UPPER)).sum() > 0.2 * (y == UPPER).sum()
    counts = bundle.info["tag_counts"]
    assert set(counts) == {"train", "val", "test"} and all(len(c) == 3 for c in counts.values())
    assert sum(counts["train"]) == int((y != IGNORE_INDEX).sum())


def test_the_rule_misses_names_and_acronyms_but_gets_sentence_starts(generated):
    x, y = generated.test.tensors
    rule = rule_baseline(generated.spec, x)
    valid = y != IGNORE_INDEX
    assert torch.equal(rule == IGNORE_INDEX, ~valid)
    upper = valid & (y == UPPER)
    recall = ((rule == UPPER) & upper).sum() / upper.sum()
    assert 0.2 < recall < 0.9  # starts and "I" yes; Paris, NASA no


def test_generated_data_is_reproducible_and_seeded(generated):
    again = load_dataset("truecase-generated", n=300, max_length=48)
    assert torch.equal(again.train.tensors[0], generated.train.tensors[0])
    other = load_dataset("truecase-generated", n=300, max_length=48, seed=1)
    assert not torch.equal(other.train.tensors[0][:5], generated.train.tensors[0][:5])


def test_vocabulary_comes_from_the_training_split_only():
    bundle = load_dataset("truecase-generated", n=40, max_length=300)
    train_chars = {c for t in decode_chars(bundle.train.tensors[0], bundle.spec.extra["vocab"]) for c in t}
    assert set(bundle.spec.extra["vocab"][2:]) == train_chars


@pytest.mark.parametrize(
    "options,fragment",
    [
        ({"n": 1}, "n must be a whole number >= 3"),
        ({"max_length": 0}, "max_length must be a whole number >= 1"),
        ({"val_fraction": 1.5}, "val_fraction must be in [0, 1)"),
        ({"test_fraction": 0}, "test_fraction must be in (0, 1)"),
        ({"n": 4, "val_fraction": 0.5, "test_fraction": 0.5}, "leave none for training"),
    ],
)
def test_bad_options_are_refused_with_the_value(options, fragment):
    with pytest.raises(ConfigError) as info:
        load_dataset("truecase-generated", **options)
    assert fragment in str(info.value)


def test_both_datasets_are_listed_as_tag_tasks():
    listed = {d.name: d for d in list_datasets()}
    assert listed["truecase"].task == listed["truecase-generated"].task == "tag"


# ---------------------------------------------------------------- truecase (real data)


def test_truecase_without_the_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="text/sentiment.csv.*truecase-generated"):
        load_dataset("truecase")


def test_truecase_rejects_a_tiny_max_texts():
    with pytest.raises(ConfigError, match="max_texts must be a whole number >= 3"):
        load_dataset("truecase", max_texts=2)


@pytest.mark.skipif(not os.environ.get("GLASSNET_DATA"), reason="needs text/sentiment.csv: set GLASSNET_DATA")
def test_truecase_on_the_sentiment_corpus():
    bundle = load_dataset("truecase", max_texts=2000)
    assert bundle.info["texts"] == 2000
    x, y = bundle.train.tensors
    assert x.shape[1] == 160 and len(x) >= 0.69 * 2000
    counts = torch.tensor(bundle.info["tag_counts"]["train"], dtype=torch.float64)
    share = counts / counts.sum()
    assert share[LOWER] > 0.5 and 0.03 < share[UPPER] < 0.2  # tweets: mostly lower case, some capitals
    texts = render_tags(bundle.spec, x[:50], y[:50])
    assert any(t[:1].isupper() for t in texts)


def test_other_tag_sets_render_as_tag_names():
    from glassnet.data import DataSpec

    spec = DataSpec(modality="sequence", input_shape=(3, 1), task="tag", num_outputs=2, class_names=("n", "v"))
    tags = torch.tensor([[0, 1, IGNORE_INDEX]])
    assert render_tags(spec, torch.zeros(1, 3, 1), tags) == ["n v -"]
    assert rule_baseline(spec, torch.zeros(1, 3, 1)) is None  # the rule is for truecasing only


def test_truecase_without_its_file_says_where_to_put_it_and_what_needs_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="needs the file 'text/sentiment.csv'.*truecase-generated"):
        load_dataset("truecase")
