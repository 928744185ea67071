"""The ``transcribe`` task: CTC loss, greedy and beam-search decoding, error rates, baselines."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glassnet.errors import DataError
from glassnet.train import transcription as tx
from glassnet.train.tasks import get_task

# alphabet of these tests: 0 blank, 1 space, 2 "a", 3 "b", 4 "c"


def peaked(path: list[int], vocab: int = 5, sure: float = 8.0) -> torch.Tensor:
    """``T x V`` logits that favour ``path[t]`` at frame t."""
    logits = torch.zeros(len(path), vocab)
    logits[torch.arange(len(path)), torch.tensor(path)] = sure
    return logits


def test_greedy_merges_repeats_and_drops_blanks():
    outputs = torch.stack([peaked([2, 2, 0, 2, 3, 1, 1, 4, 0]), peaked([0, 0, 0, 0, 0, 0, 0, 0, 0])])
    assert tx.greedy_decode(outputs) == [[2, 2, 3, 1, 4], []]
    # a space separated from another by a blank, or at either end, is not a word boundary of its own
    stray = peaked([1, 0, 2, 1, 0, 1, 3, 1, 0])
    assert tx.greedy_decode(stray[None]) == [[2, 1, 3]]
    assert tx.error_rates(tx.greedy_decode(stray[None]), [[2, 1, 3]])["cer"] == 0
    assert tx.padded([[2, 3], []]).tolist() == [[2, 3], [0, 0]]


def test_loss_is_torch_ctc_and_falls_as_the_path_gets_likelier():
    task = get_task("transcribe")
    targets = torch.tensor([[2, 3, 0], [4, 4, 2]])
    outputs = torch.randn(2, 10, 5)
    frames, lengths = torch.tensor([10, 10]), torch.tensor([2, 3])
    expected = F.ctc_loss(outputs.log_softmax(2).transpose(0, 1), targets, frames, lengths, blank=0)
    torch.testing.assert_close(task.loss(outputs, targets), expected)
    good = torch.stack([peaked([2, 0, 3, 0, 0, 0, 0, 0, 0, 0]), peaked([4, 0, 4, 2, 0, 0, 0, 0, 0, 0])])
    assert task.loss(good, targets) < 0.01 < task.loss(outputs, targets)
    metrics = task.metrics(good, targets)
    assert metrics["wer"] == 0 and metrics["cer"] == 0 and metrics["sentence_accuracy"] == 1


def test_targets_are_checked_against_the_outputs():
    task = get_task("transcribe")
    with pytest.raises(DataError, match=r"N x T x V logits and N x L symbol ids"):
        task.loss(torch.randn(2, 5), torch.tensor([[1], [2]]))
    with pytest.raises(DataError, match=r"symbol ids must be in 0..4. Received ids from 0 to 7"):
        task.loss(torch.randn(1, 6, 5), torch.tensor([[7, 0]]))
    with pytest.raises(DataError, match=r"a transcript needing 4 output frames .* cannot be read from 3"):
        task.loss(torch.randn(1, 3, 5), torch.tensor([[2, 3, 2, 3]]))
    # "aa" needs a blank between its letters: 3 frames, not 2 (CTC would silently give it a zero loss)
    with pytest.raises(DataError, match=r"needing 3 output frames .* cannot be read from 2"):
        task.loss(torch.randn(1, 2, 5), torch.tensor([[2, 2]]))
    assert torch.isfinite(task.loss(torch.randn(1, 3, 5), torch.tensor([[2, 2]])))


def test_error_rates_count_words_and_characters():
    # reference "ab c" vs hypothesis "ab b": one word of two wrong, one character of four
    scores = tx.error_rates([[2, 3, 1, 3]], [[2, 3, 1, 4]])
    assert scores == {"wer": 0.5, "cer": 0.25, "sentence_accuracy": 0.0}
    assert tx.error_rates([[2, 3]], [[2, 3]])["sentence_accuracy"] == 1.0


def test_beam_search_sums_the_paths_of_one_text():
    # frame-wise probabilities where the single best path is blank-blank but "a" wins summed over paths:
    # P(blank, blank) = 0.36; P("a") = 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64 (paths a-a, a-blank, blank-a)
    probs = torch.tensor([[0.6, 0.0, 0.4, 0.0, 0.0], [0.6, 0.0, 0.4, 0.0, 0.0]]).clamp_min(1e-12)
    log_probs = probs.log()
    assert tx.greedy_decode(log_probs[None]) == [[]]
    assert tx.beam_search(log_probs) == [2]


def test_beam_search_agrees_with_greedy_on_clear_outputs():
    logits = peaked([2, 0, 3, 3, 1, 4, 0, 4])
    assert tx.beam_search(logits.log_softmax(1)) == tx.greedy_decode(logits[None])[0] == [2, 3, 1, 4, 4]


def test_word_list_turns_a_near_miss_into_a_listed_word():
    # frames spell "ab" then "cb" unsure of the "c" (0.45 c, 0.35 a): the list holds "ab" and "ab a"-style words only
    probs = torch.full((5, 5), 1e-6)
    probs[0, 2], probs[1, 3], probs[2, 1] = 0.99, 0.99, 0.99
    probs[3, 4], probs[3, 2], probs[3, 0] = 0.45, 0.35, 0.2
    probs[4, 3] = 0.99
    log_probs = (probs / probs.sum(1, keepdim=True)).log()
    assert tx.beam_search(log_probs) == [2, 3, 1, 4, 3]  # "ab cb"
    assert tx.beam_search(log_probs, words=[[2, 3]]) == [2, 3, 1, 2, 3]  # "ab ab": only listed words
    assert tx.beam_search(log_probs, words=[[4]]) == [4, 1, 4]  # "c c": the likeliest text of listed words only


def test_beam_search_adds_a_text_with_and_without_its_trailing_space():
    # "a" is spelled by a-blank and a-space (0.6 x 0.45 + 0.6 x 0.3 = 0.45); "b" only by b-b and b-blank (0.28)
    probs = torch.tensor([[1e-9, 1e-9, 0.6, 0.4, 1e-9], [0.45, 0.3, 1e-9, 0.25, 1e-9]])
    assert tx.beam_search(probs.log()) == [2]


def test_a_word_list_survives_a_frame_sure_of_an_unlisted_symbol():
    sure = torch.full((4, 5), 1e-4)
    for t, s in enumerate([2, 0, 4, 0]):  # "a", then a confident "c": "ac" is not listed, "ab" is
        sure[t, s] = 0.9996
    assert tx.beam_search(sure.log()) == [2, 4]
    assert tx.beam_search(sure.log(), words=[[2, 3]]) == [2, 3]  # "ab", not an empty transcript


def test_training_words_are_the_distinct_words():
    targets = torch.tensor([[2, 3, 1, 4, 0], [4, 1, 2, 3, 0], [3, 0, 0, 0, 0]])
    assert tx.training_words(targets) == [[2, 3], [3], [4]]


def test_baselines_predict_transcripts():
    from glassnet.data import DataSpec
    from glassnet.train.baselines import _CANDIDATES

    torch.manual_seed(0)
    spec = DataSpec(
        modality="audio", input_shape=(1, 8, 12), task="transcribe", num_outputs=5, name="speech",
        class_names=("<blank>", "<space>", "a", "b", "c"), extra={"alphabet": ["<blank>", " ", "a", "b", "c"]},
    )  # fmt: skip
    x = torch.randn(12, 1, 8, 12)
    y = torch.tensor([[2, 3, 0]] * 6 + [[4, 4, 4]] * 6)
    x[6:] += 3.0  # the "ccc" clips are louder
    found = {b.name: b for b in _CANDIDATES["transcribe"](spec, None)}
    assert set(found) == {"most_common", "nearest_utterance"}
    nearest = found["nearest_utterance"].fit(x, y)
    assert found["nearest_utterance"].score(nearest, x + 0.01, y)["wer"] == 0
    common = found["most_common"].fit(x, y)
    assert found["most_common"].score(common, x, y)["wer"] == pytest.approx(0.5)
    assert math.isfinite(found["most_common"].score(common, x, y)["cer"])


def test_beam_search_never_doubles_a_space():
    # "a", a long pause with the space spread thinly over it (blank wins each frame), then "b"
    probs = torch.full((8, 5), 1e-6)
    probs[0, 2] = probs[7, 3] = 0.99
    for t in range(1, 7):
        probs[t, 0], probs[t, 1] = 0.7, 0.3
    log_probs = (probs / probs.sum(1, keepdim=True)).log()
    assert tx.greedy_decode(log_probs[None]) == [[2, 3]]  # the best path never leaves the blank
    assert tx.beam_search(log_probs) == [2, 1, 3]  # "a b": the space's spread-out probability adds up, once


# ---------------------------------------------------------------------------------------------
# end to end on a generated "tone language": each letter a tone, words separated by short pauses


def test_a_recogniser_learns_the_tone_language_and_reports_it(tone_run):
    import json

    import glassnet as gn

    run, _ = tone_run
    result = json.loads((run.path / "results" / "train.json").read_text())
    test = result["test"]
    # measured 0.0 from epoch 3 to 5 of 10 (seeds 0-2); the nearest-utterance baseline scores about 0.8
    assert test["wer"] <= 0.2 and test["beam_search"]["free"]["wer"] <= 0.2
    assert result["baseline"]["comparison"]["verdict"] == "beats"
    assert set(test["per_speaker"]) and set(test["per_speaker"]) <= {f"s{k}" for k in range(5)}
    listened = [u for u in test["worst"] + test["typical"] if u.get("audio")]
    assert listened and all((run.path / u["audio"]).is_file() for u in listened)
    assert (run.path / "figures" / "alignment.png").is_file()

    html = gn.report(run.path).read_text()
    section = html[html.index("<h2>Speech recognition</h2>") :]
    assert "beam search, training words only" in section and "<h3>Per speaker</h3>" in section
    assert section.count('<audio controls preload="none" src="data:audio/wav;base64,') == len(listened)
    assert "media-src data:" in html


def test_predict_prints_the_transcript_of_a_clip(tone_run, capsys):
    from glassnet.cli import main

    run, data = tone_run
    assert main(["predict", str(run.path), str(data / "clips" / "000.wav")]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1].split()[1:4] == ["cb", "a", "a"]  # the first clip says "cb a a"


def test_predict_refuses_a_clip_longer_than_the_model_hears(tone_run, tmp_path, capsys):
    import numpy as np
    from scipy.io import wavfile

    from glassnet.cli import main

    run, _ = tone_run
    wavfile.write(tmp_path / "long.wav", 8000, np.zeros(8000 * 5, dtype=np.int16))
    assert main(["predict", str(run.path), str(tmp_path / "long.wav")]) != 0
    assert "this model takes clips of at most" in capsys.readouterr().err


def test_compressed_recognisers_are_judged_by_word_error_rate(tone_run):
    import json

    from glassnet.cli import main

    run, _ = tone_run
    assert main(["compress", str(run.path), "--quantize", "int8", "--export", "onnx", "--quiet"]) == 0
    result = json.loads((run.path / "results" / "compress.json").read_text())
    assert result["metric"] == "wer"  # not the CTC loss: what a user of a recogniser compares
    names = {v["name"] for v in result["variants"]}
    assert {"fp32", "int8-torch-dynamic", "onnx-fp32"} <= names
    fp32 = next(v for v in result["variants"] if v["name"] == "fp32")["wer"]
    for variant in result["variants"]:
        assert variant["wer"] <= fp32 + 0.05, variant["name"]  # int8 keeps the tone recogniser's WER
        assert variant["worse"] == (variant["wer"] > fp32)


def test_attacks_raise_the_word_error_rate_with_eps(tone_run, capsys):
    import json

    import glassnet as gn
    from glassnet.cli import main

    run, _ = tone_run
    assert main(["attack", str(run.path), "--quiet"]) == 0
    assert "eps=0.05 sd" in capsys.readouterr().out
    result = json.loads((run.path / "results" / "robustness.json").read_text())
    assert result["metric"] == "wer" and result["mode"] == "min" and result["eps"] == [0.02, 0.05, 0.1, 0.2]
    from glassnet.stages.robustness import headline

    assert headline(result).startswith(f"wer {max(p['wer'] for p in result['curves']['pgd']):.4f} under PGD")
    assert result["units"].startswith("standard deviations of the training split's inputs")
    pgd, noise = [p["wer"] for p in result["curves"]["pgd"]], [p["wer"] for p in result["curves"]["random"]]
    # measured: PGD 0.08, 0.43, 0.96, 1.03 against noise 0, 0, 0, 0 (clean 0)
    assert pgd[-1] > max(noise[-1], result["clean"]["wer"]) + 0.3 and pgd == sorted(pgd)
    html = gn.report(run.path).read_text()
    assert "eps 0.2 sd" in html and "test examples when each is perturbed" in html


def test_explain_finds_each_word_in_its_own_frames(tone_run, capsys):
    import json

    import glassnet as gn
    from glassnet.cli import main

    run, _ = tone_run
    assert main(["explain", str(run.path), "--n", "12", "--steps", "16"]) == 0
    printed = capsys.readouterr().out
    assert "of a word's attribution lies in its own frames" in printed and "of the words are faithful" in printed
    result = json.loads((run.path / "results" / "explain.json").read_text())
    s = result["summary"]
    assert result["kind"] == "transcription" and result["examples"] == 12 and s["words"] >= 12
    # measured: a median 84% of the attribution in frames covering 14% of the clip; completeness error < 0.5%
    assert s["median_inside_share"] > 3 * s["median_span_share"] and s["local_words"] >= 0.8
    assert s["median_completeness_error"] < 0.05 and result["warnings"] == []
    # the deletion check: a word's top-attributed frames matter more than as many random frames
    assert s["median_deletion_drop"] > 2 * s["median_random_drop"] and s["faithful_words"] >= 0.8, s
    assert (run.path / "figures" / "explain_words.png").is_file()
    html = gn.report(run.path).read_text()
    assert "The least local words" in html and "decoded words of" in html and "Deletion check" in html
    assert main(["explain", str(run.path), "--method", "saliency"]) != 0
    assert "explained with integrated_gradients" in capsys.readouterr().err


def test_decoded_words_and_their_attributions_are_complete():
    from glassnet.explain.transcription import decoded_words, word_attributions

    log_probs = peaked([2, 2, 0, 3, 1, 1, 4, 0, 4]).log_softmax(1)
    words = decoded_words(log_probs)
    assert words == [{"symbols": [2, 3], "frames": [0, 3]}, {"symbols": [4, 4], "frames": [6, 8]}]

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(2 * 9, 9 * 5), torch.nn.Unflatten(1, (9, 5)))
    x = torch.randn(1, 1, 2, 9)
    attributions, errors = word_attributions(model, x, words, steps=64)
    assert attributions.shape == (2, 2, 9) and float(errors.max()) < 0.01  # integrated gradients' completeness
