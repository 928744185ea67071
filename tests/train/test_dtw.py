"""The classical MFCC + connected-word DTW recogniser the speech benchmark measures CTC models against."""

import numpy as np

from glassnet.train import dtw


def _templates(rng):
    return {w: rng.normal(0, 1, (5, 4)) + 3 * k for k, w in enumerate(["one", "two", "three"])}


def test_connected_words_are_found_through_warping_and_silence():
    rng = np.random.default_rng(0)
    words = _templates(rng)
    silence = np.full(4, -5.0)
    stretched = np.repeat(words["two"], 2, axis=0)  # said twice as slowly
    hurried = words["three"][::2]  # said fast: every other frame (the warp may skip one)
    utterance = np.vstack([np.tile(silence, (3, 1)), stretched, np.tile(silence, (2, 1)), hurried, words["one"],
                           np.tile(silence, (4, 1))])  # fmt: skip
    utterance = utterance + rng.normal(0, 0.1, utterance.shape)
    templates = [(w, t) for w, t in words.items()]
    assert dtw.recognise(utterance, templates, penalty=1.0, silence=silence) == ["two", "three", "one"]
    assert dtw.recognise(np.tile(silence, (6, 1)), templates, penalty=1.0, silence=silence) == []
    # without a silence model the pauses must be explained by some word
    assert len(dtw.recognise(utterance, templates, penalty=1.0)) >= 3


def test_the_word_penalty_trades_insertions_for_deletions():
    rng = np.random.default_rng(1)
    words = _templates(rng)
    utterance = np.vstack([words["one"], words["one"]])  # "one one"
    templates = [(w, t) for w, t in words.items()]
    assert dtw.recognise(utterance, templates, penalty=0.0) == ["one", "one"]
    assert dtw.recognise(utterance, templates, penalty=1e6) == ["one"]  # a second word costs more than warping


def test_mfcc_removes_a_constant_colouring_and_trims_silence():
    rng = np.random.default_rng(2)
    log_mel = rng.normal(0, 1, (40, 50))
    coloured = log_mel + np.linspace(-2, 2, 40)[:, None]  # a fixed filter on every frame
    np.testing.assert_allclose(dtw.mfcc(coloured), dtw.mfcc(log_mel), atol=1e-9)
    assert dtw.mfcc(log_mel).shape == (50, 24) and dtw.mfcc(log_mel, n=13, deltas=False).shape == (50, 13)
    quiet = np.full((40, 30), -20.0)
    quiet[:, 10:20] = 0.0
    assert dtw.speech_frames(quiet) == slice(8, 22)


def test_degenerate_inputs_get_clear_errors():
    import pytest

    from glassnet.errors import ConfigError

    assert dtw.mfcc(np.zeros((40, 1))).shape == (1, 24)  # one frame: no difference to take, deltas are 0
    with pytest.raises(ConfigError, match="at least one template, no empty template"):
        dtw.recognise(np.zeros((3, 2)), [], penalty=0.0)
    with pytest.raises(ConfigError, match="at least one template, no empty template"):
        dtw.recognise(np.zeros((3, 2)), [("a", np.zeros((0, 2)))], penalty=0.0)
