"""Character-level language modelling: the ``language_model`` task, ``20newsgroups-chars`` and ``char_transformer``."""

import dataclasses
import math
import os
import string
from pathlib import Path

import pandas as pd
import pytest
import torch

import glassnet.data.spec
import glassnet.models.transformer  # noqa: F401  (registers "char_transformer" before the integrator wires it)
from glassnet.data import DataSpec, load_dataset
from glassnet.data import corpus as corpus_module
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model, load_model, save_model
from glassnet.train import Trainer, get_task
from glassnet.train.language_model import sample_text

REAL_DATA = os.environ.get("GLASSNET_DATA")


def make_spec(context=8, chars="abc \n"):
    vocab = ["<pad>", "<unk>", *chars]
    return DataSpec(
        modality="text",
        input_shape=(context,),
        task="language_model",
        num_outputs=len(vocab),
        name="toy-chars",
        extra={"vocab": vocab, "pad_index": 0, "unk_index": 1, "context": context},
    )


def write_corpus(root: Path, train_texts, test_texts):
    """A GLASSNET_DATA folder holding text/20newsgroups-{train,test}.csv.gz (columns label,text)."""
    (root / "text").mkdir(parents=True)
    for split, texts in (("train", train_texts), ("test", test_texts)):
        frame = pd.DataFrame({"label": ["g"] * len(texts), "text": texts})
        frame.to_csv(root / "text" / f"20newsgroups-{split}.csv.gz", index=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run on one thread: on tensors this small, synchronising two threads on a busy machine costs ~10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


# --- task -------------------------------------------------------------------------------------------


def test_uniform_logits_have_perplexity_equal_to_the_vocabulary_size():
    task = get_task("language_model")
    vocab = 7
    targets = torch.tensor([[2, 3, 4], [5, 6, 1]])
    metrics = task.metrics(torch.zeros(2, 3, vocab), targets)
    assert metrics["perplexity"] == pytest.approx(vocab)
    assert metrics["loss"] == pytest.approx(math.log(vocab))
    assert metrics["bits_per_char"] == pytest.approx(math.log2(vocab))
    assert set(task.monitor_modes.values()) == {"min"}
    assert set(task.monitor_modes) == set(metrics)


def test_confident_right_logits_approach_perplexity_one_and_padding_never_counts():
    task = get_task("language_model")
    targets = torch.tensor([[2, 3, 0, 0]])  # the last two positions are padding
    right = torch.nn.functional.one_hot(targets, 5).float() * 20
    wrong_on_padding = right.clone()
    wrong_on_padding[0, 2:, 4] = 50.0  # a very confident mistake, but only where the target is padding
    assert task.metrics(right, targets)["perplexity"] == pytest.approx(1.0, abs=1e-6)
    assert task.loss(wrong_on_padding, targets).item() == pytest.approx(task.loss(right, targets).item())


def test_decode_returns_the_most_likely_next_token_at_every_position():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2], logits[0, 1, 3], logits[0, 2, 1] = 5.0, 5.0, 5.0
    decoded = get_task("language_model").decode(logits)
    assert decoded["prediction"].tolist() == [[2, 3, 1]]
    assert decoded["confidence"].shape == (1, 3)


def test_task_rejects_mismatched_shapes_and_all_padding_targets():
    task = get_task("language_model")
    with pytest.raises(DataError, match="N x T x V"):
        task.loss(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(DataError, match="padding"):
        task.metrics(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long))


# --- data -------------------------------------------------------------------------------------------


def test_windows_shift_targets_by_one_and_drop_the_short_tail():
    inputs, targets = corpus_module.windows(torch.arange(10), context=3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert targets.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_encode_chars_maps_unknown_characters_to_unk():
    vocab = corpus_module.char_vocabulary("ba a")
    assert vocab == ["<pad>", "<unk>", " ", "a", "b"]
    assert corpus_module.encode_chars("ab z", vocab).tolist() == [3, 4, 2, 1]


def test_dataset_builds_windows_and_a_vocabulary_from_training_text_only(toy_data):
    write_corpus(toy_data, ["abc ab", "cab ba", "bbb aaa"], ["abz cab", "zz ab ab"])
    bundle = load_dataset("20newsgroups-chars", context=4, val_fraction=0.25, seed=1)
    spec = bundle.spec
    vocab = spec.extra["vocab"]
    assert vocab == ["<pad>", "<unk>", "\n", " ", "a", "b", "c"]  # "z" is only in the test posts
    assert (spec.modality, spec.task, spec.input_shape, spec.num_outputs) == ("text", "language_model", (4,), 7)
    assert spec.extra["context"] == 4 and spec.extra["pad_index"] == 0 and spec.extra["unk_index"] == 1
    train_chars = bundle.info["characters"]["train"]
    assert train_chars == len("abc ab") + len("cab ba") + len("bbb aaa") + 2  # two document separators
    windows = (train_chars - 1) // 4
    assert len(bundle.train) + len(bundle.val) == windows and len(bundle.val) == round(windows * 0.25)
    x, y = bundle.train.tensors
    assert x.shape[1] == 4 and torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[1:, 0], y[:-1, -1])
    test_x, _ = bundle.test.tensors
    assert (test_x == 1).any()  # the unseen "z" became <unk>


def test_dataset_shuffles_posts_with_the_seed_and_cuts_to_max_chars(toy_data):
    write_corpus(toy_data, [c * 5 for c in "abcdef"], ["abcdef ab"])
    first = load_dataset("20newsgroups-chars", context=2, max_chars=17, seed=0, val_fraction=0.0)
    again = load_dataset("20newsgroups-chars", context=2, max_chars=17, seed=0, val_fraction=0.0)
    other = load_dataset("20newsgroups-chars", context=2, max_chars=17, seed=5, val_fraction=0.0)
    assert first.info["characters"]["train"] == 17
    assert torch.equal(first.train.tensors[0], again.train.tensors[0])
    assert not torch.equal(first.train.tensors[0], other.train.tensors[0])


def test_dataset_without_its_files_says_where_they_must_be(toy_data):
    with pytest.raises(DataError, match=r"text/20newsgroups-train\.csv\.gz.*GLASSNET_DATA"):
        load_dataset("20newsgroups-chars")


@pytest.mark.parametrize("option", [{"context": 0}, {"max_chars": 1}, {"val_fraction": 1.0}, {"seed": "x"}])
def test_dataset_rejects_bad_options_quoting_them(toy_data, option):
    write_corpus(toy_data, ["abc"], ["abc"])
    key = next(iter(option))
    with pytest.raises(ConfigError, match=f"Received: {key}="):
        load_dataset("20newsgroups-chars", **option)


def test_dataset_too_short_for_one_window_says_what_to_change(toy_data):
    write_corpus(toy_data, ["ab"], ["ab"])
    with pytest.raises(DataError, match="max_chars or lower context"):
        load_dataset("20newsgroups-chars", context=8)


@pytest.mark.skipif(not REAL_DATA, reason="GLASSNET_DATA is not set (point it at ../shared/data to test the real file)")
def test_real_20newsgroups_chars_loads():
    if not Path(REAL_DATA, "text", "20newsgroups-train.csv.gz").is_file():
        pytest.skip(f"GLASSNET_DATA={REAL_DATA} holds no text/20newsgroups-train.csv.gz")
    bundle = load_dataset("20newsgroups-chars", context=64, max_chars=20_000, max_test_chars=5_000)
    vocab = bundle.spec.extra["vocab"]
    assert 20 < len(vocab) < 100 and "e" in vocab and "\n" in vocab
    assert bundle.train.tensors[0].shape[1] == 64 and len(bundle.test) == (5_000 - 1) // 64


# --- model ------------------------------------------------------------------------------------------


def test_char_transformer_outputs_next_token_logits_and_round_trips(tmp_path):
    spec = make_spec(context=8)
    torch.manual_seed(0)
    model = create_model("char_transformer", spec, d_model=16, heads=2, layers=1)
    tokens = torch.randint(2, 7, (4, 8))
    out = model(tokens)
    assert out.shape == (4, 8, spec.num_outputs)
    changed = tokens.clone()
    changed[:, 5] = 2 + (tokens[:, 5] - 1) % 5  # a different token at step 5
    torch.testing.assert_close(model.eval()(changed)[:, :5], model(tokens)[:, :5])  # causal: the past is unchanged
    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)


def test_char_transformer_rejects_specs_it_cannot_model():
    spec = make_spec()
    with pytest.raises(ConfigError, match="num_outputs must be 7"):
        create_model("char_transformer", dataclasses.replace(spec, num_outputs=3))
    with pytest.raises(ConfigError, match="input_shape"):
        create_model("char_transformer", dataclasses.replace(spec, input_shape=(8, 2)))
    classify = DataSpec(modality="text", input_shape=(8,), task="classify", num_outputs=2, extra=spec.extra)
    with pytest.raises(ConfigError, match="Models that fit it: .*transformer"):
        create_model("char_transformer", classify)
    with pytest.raises(ConfigError, match="positional"):
        create_model("char_transformer", spec, positional="rotary")


# --- learning and sampling --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained on a repetitive text, with its test metrics."""
    text = (string.ascii_lowercase + "\n") * 60
    bundle = corpus_module.char_corpus_bundle(text, text[:400], context=16, val_fraction=0.1, name="toy", info={})
    torch.manual_seed(0)
    model = create_model("char_transformer", bundle.spec, d_model=32, heads=2, layers=1, dropout=0.0)
    Trainer(task="language_model", max_epochs=5, batch_size=8, lr=1e-2, device="cpu").fit(model, bundle)
    metrics = Trainer(task="language_model", device="cpu").evaluate(model, bundle.test)
    return model, bundle.spec, metrics


def test_tiny_model_learns_a_repetitive_text_far_below_uniform_perplexity(trained):
    model, spec, metrics = trained
    vocab = spec.num_outputs
    assert metrics["perplexity"] < 1.2 < vocab / 20  # every character has one successor: the floor is 1


def test_greedy_sample_continues_the_learned_text(trained):
    model, spec, _ = trained
    assert sample_text(model, spec, "xyz\n", n_chars=30, temperature=0) == "xyz\n" + string.ascii_lowercase + "\nabc"


def test_sample_text_is_reproducible_with_a_seed_and_has_the_asked_length():
    spec = make_spec(context=8)
    torch.manual_seed(0)
    model = create_model("char_transformer", spec, d_model=16, heads=2, layers=1)  # untrained: near uniform
    first = sample_text(model, spec, "ab", n_chars=40, temperature=1.0, seed=3)
    assert first == sample_text(model, spec, "ab", n_chars=40, temperature=1.0, seed=3)
    assert first != sample_text(model, spec, "ab", n_chars=40, temperature=1.0, seed=4)
    assert len(first) == 42 and first.startswith("ab")
    assert model.training  # sampling restores the mode it found


def test_sample_text_rejects_an_empty_prompt_and_a_model_that_cannot_generate():
    spec = make_spec()
    model = create_model("char_transformer", spec, d_model=16, heads=2, layers=1)
    with pytest.raises(ConfigError, match="prompt"):
        sample_text(model, spec, "", n_chars=3)
    with pytest.raises(ConfigError, match="generating model"):
        sample_text(torch.nn.Linear(2, 2), spec, "a", n_chars=3)
