"""Speech synthesis: CTC forced alignment to durations, the vocoder, the ``synthesize`` task and command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glassnet.errors import ConfigError, DataError, RunError
from glassnet.train import synthesis as sy


def peaked_log_probs(path: list[int], vocab: int = 4) -> np.ndarray:
    """``T x V`` log-probabilities that favour ``path[t]`` at frame t."""
    log_probs = np.full((len(path), vocab), -6.0)
    log_probs[np.arange(len(path)), path] = -0.01
    return log_probs


def test_forced_alignment_follows_the_likely_path_of_the_transcript():
    # frames say: blank blank a a blank b b blank blank a blank (a = 1, b = 2)
    log_probs = peaked_log_probs([0, 0, 1, 1, 0, 2, 2, 0, 0, 1, 0])
    assert sy.forced_alignment(log_probs, [1, 2, 1]).tolist() == [-1, -1, 0, 0, -1, 1, 1, -1, -1, 2, -1]
    # a transcript the frames do not favour is still aligned: every symbol gets a frame, in order
    forced = sy.forced_alignment(log_probs, [2, 2])
    assert sorted(set(forced.tolist()) - {-1}) == [0, 1] and np.all(np.diff(forced[forced >= 0]) >= 0)
    # a repeated symbol needs a blank between its two frames
    with pytest.raises(ValueError, match="cannot be aligned"):
        sy.forced_alignment(peaked_log_probs([1, 1]), [1, 1])


def test_durations_give_silences_to_start_and_end_and_share_the_gaps():
    positions = np.array([-1, -1, 0, 0, -1, 1, 1, -1, -1, 2, -1])
    owners = sy.symbol_owners(positions, 3)
    assert owners.tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4]
    durations = sy.durations_from_owners(owners, 3, frame_times=(np.arange(11) + 1) * 3.0, frames=35)
    assert durations.tolist() == [6, 6, 12, 6, 5] and durations.sum() == 35  # the last symbol takes the rest
    # nothing emitted: the whole clip is the start symbol's
    assert sy.symbol_owners(np.array([-1, -1]), 2).tolist() == [0, 0]


def test_text_is_read_as_the_voice_reads_it():
    symbols = sy.synthesis_symbols(["call five five", "zero one two three"])
    assert sy.spoken_text("Call 555-0123!") == "call five five five zero one two three"
    ids = sy.encode_text("call 5", symbols)
    assert ids[0] == symbols.index("^") and ids[-1] == symbols.index("$")
    assert "".join(symbols[i] for i in ids[1:-1]) == "call five"
    with pytest.raises(ConfigError, match="never trained on 'k', 'q', 'u'"):
        sy.encode_text("quick", symbols)
    with pytest.raises(ConfigError, match="nothing to say"):
        sy.encode_text("?!", symbols)


def test_griffin_lim_inverts_a_log_mel_spectrogram():
    from glassnet.data.audio import griffin_lim, log_mel, mel_to_magnitude

    rate, t = 16000, np.arange(16000) / 16000
    wave = torch.tensor(0.4 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t) ** 2, dtype=torch.float32)
    mels = log_mel(wave, rate, 80, 512, 160)
    magnitude = mel_to_magnitude(mels, rate, 512)
    rebuilt = griffin_lim(magnitude, 512, 160, iterations=40, length=len(wave))
    error = (log_mel(rebuilt, rate, 80, 512, 160) - mels).abs()
    loud = mels > mels.max() - 8  # where there is sound (silence at the floor is not compared)
    assert float(error[loud].mean()) < 0.5  # measured 0.16; a random-phase waveform is off by about 2
    assert torch.equal(rebuilt, griffin_lim(magnitude, 512, 160, iterations=40, length=len(wave)))  # seeded
    with pytest.raises(ConfigError, match="257 bins"):
        griffin_lim(magnitude[:100], 512, 160)


def test_mel_cepstral_distortion_is_zero_for_the_same_speech_and_ignores_timing():
    mels = torch.randn(80, 40)
    assert sy.mcd_dtw(mels, mels) == 0.0
    slower = mels.repeat_interleave(2, dim=1)  # the same frames, each held twice
    assert sy.mcd_dtw(slower, mels) == pytest.approx(0.0, abs=1e-9)
    assert sy.mcd_dtw(torch.randn(80, 40), mels) > 5.0


def test_the_task_scores_spectrogram_and_durations_on_real_frames_only():
    task = sy.Synthesis()
    mels = 3
    targets = torch.full((1, mels + 1, 6), sy.LOG_FLOOR)
    targets[0, :mels, :4] = 1.0
    targets[0, mels] = torch.tensor([1.0, 3.0, -1, -1, -1, -1])  # two symbols, four frames
    outputs = torch.full((1, mels + 1, 5), sy.LOG_FLOOR)
    outputs[0, :mels, :4] = 1.5  # every real frame off by 0.5; the padding is not scored
    outputs[0, mels, :2] = torch.log1p(torch.tensor([1.0, 3.0]))
    scores = task.metrics(outputs, targets)
    assert scores["mel_l1"] == pytest.approx(0.5) and scores["duration_mae"] == 0.0
    assert scores["loss"] == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(DataError, match="synthesize needs"):
        task.loss(outputs[:, :2], targets)


def test_the_model_regulates_length_with_given_or_predicted_durations():
    from glassnet.data.spec import DataSpec
    from glassnet.models import create_model

    spec = DataSpec(
        modality="audio", input_shape=(2, 6), task="synthesize", num_outputs=9,
        extra={"symbols": ["<pad>", "^", "$", " ", "a", "b"], "n_mels": 8, "max_frames": 50},
    )  # fmt: skip
    model = create_model("fastspeech", spec, width=16, encoder_layers=1, decoder_layers=2).eval()
    x = torch.tensor([[[1, 4, 5, 2, 0, 0], [2, 3, 1, 4, 0, 0]], [[1, 4, 2, 0, 0, 0], [1, 2, 1, 0, 0, 0]]])
    out = model(x)
    assert out.shape == (2, 9, 50)  # every batch as wide as the longest training clip (max_frames)
    assert torch.all(out[0, :8, 10:] == sy.LOG_FLOOR) and not torch.all(out[0, :8, 9] == sy.LOG_FLOOR)  # 2+3+1+4
    assert torch.all(out[1, :8, 4:] == sy.LOG_FLOOR)  # past the second utterance's 4 frames: silence
    free = x.clone()
    free[:, 1] = -1  # durations to predict
    assert model(free).shape[:2] == (2, 9)
    with pytest.raises(ConfigError, match="takes audio data for synthesize"):
        create_model(
            "fastspeech", DataSpec(modality="audio", input_shape=(1, 40, 100), task="transcribe", num_outputs=5)
        )


# ---------------------------------------------------------------------------------------------
# end to end on the tone language: a recogniser aligns one speaker's clips, fastspeech learns to say them


def test_a_voice_learns_to_say_new_sentences_that_its_recogniser_understands(voice_run):
    import glassnet as gn

    run, aligner, _ = voice_run
    result = json.loads((run.path / "results" / "train.json").read_text())
    free = result["test"]["free_running"]
    assert free["judge"] == str(aligner.path) and free["sentences"] >= 5
    judged = free["all"]
    # the recogniser itself hears the recordings well; the synthesised sentences it hears nearly as well
    assert judged["recorded"]["cer"] <= 0.15
    assert judged["synthesised"]["cer"] <= 0.3, judged  # measured 0.04-0.05; silence or noise scores about 1
    assert 0 < free["mcd_dtw"] < 20
    assert set(judged["word_concatenation"]) == {"cer", "wer"} and judged["word_concatenation_mcd_dtw"] > 0
    for sample in free["samples"]:
        assert (run.path / sample["synthesised"]).is_file() and (run.path / sample["recorded"]).is_file()
    html = gn.report(run.path).read_text()
    section = html[html.index("<h2>Speech synthesis</h2>") :]
    assert "<h3>Intelligibility</h3>" in section
    assert section.count('<audio controls preload="none" src="data:audio/wav;base64,') == 2 * len(free["samples"])


def test_synthesize_writes_a_wav_that_says_the_text(voice_run, tmp_path, capsys):
    from scipy.io import wavfile

    from glassnet.cli import main
    from glassnet.train.run import Run

    run, aligner, _ = voice_run
    assert main(["evaluate", str(run.path)]) == 0  # batches of every length concatenate
    assert "mel_l1" in capsys.readouterr().out
    out = tmp_path / "said.wav"
    assert main(["synthesize", str(run.path), "abc d", "--out", str(out)]) == 0
    assert "synthesized: 'abc d'" in capsys.readouterr().out
    rate, samples = wavfile.read(out)
    assert rate == 16000 and samples.dtype == np.int16 and 0.2 < len(samples) / rate < 3
    heard = sy.recognise(Run.open(aligner.path), [samples.astype(np.float32) / 32767], rate)
    assert heard == ["abc d"]
    slow, _ = sy.synthesize(run.path, "abc d", speed=0.5)
    assert len(slow) > 1.6 * len(samples)


def test_synthesize_refuses_what_it_cannot_say(voice_run, tmp_path, capsys):
    from glassnet.cli import main

    run, aligner, _ = voice_run
    assert main(["synthesize", str(run.path), "xyz", "--out", str(tmp_path / "x.wav")]) == 2
    assert "never trained on 'x'" in capsys.readouterr().err
    assert main(["synthesize", str(aligner.path), "abc", "--out", str(tmp_path / "x.wav")]) == 2
    assert "speech comes from a synthesize run" in capsys.readouterr().err
    assert main(["synthesize", str(run.path), "abc", "--out", str(tmp_path / "x.mp3")]) == 2
    assert not (tmp_path / "x.wav").exists()
    # predict, which takes inputs of the data's kind, points to synthesize instead
    assert main(["predict", str(run.path), str(tmp_path / "x.wav")]) == 2
    assert f"use glassnet synthesize {run.path}" in capsys.readouterr().err


def test_the_server_speaks_a_text_as_a_wav_file(voice_run):
    import io

    from fastapi.testclient import TestClient
    from scipy.io import wavfile

    from glassnet.serve.app import create_app

    run, aligner, _ = voice_run
    with TestClient(create_app(run.path)) as client:
        answer = client.post("/synthesize", json={"text": "abc d", "speed": 1.0})
        assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
        rate, samples = wavfile.read(io.BytesIO(answer.content))
        from glassnet.train.run import Run

        assert sy.recognise(Run.open(aligner.path), [samples.astype(np.float32) / 32767], rate) == ["abc d"]
        refused = client.post("/synthesize", json={"text": "xyz"})
        assert refused.status_code == 400 and "never trained on 'x'" in refused.json()["error"]
        assert client.post("/synthesize", json={"words": "abc"}).status_code == 400
        assert client.post("/synthesize", json={"text": "a" * 5000}).status_code == 400
        assert client.post("/predict", json={"inputs": [[0]]}).status_code == 404
        page = client.get("/").text
        assert 'id="speech"' in page and ">Speak</button>" in page
    with pytest.raises(ConfigError, match="backend torch"):
        create_app(run.path, backend="onnx")


def test_synthesis_data_needs_an_aligner_and_one_voice(voice_run):
    import glassnet as gn
    from glassnet.config import RunConfig

    _, aligner, data = voice_run
    for data_args, message in (
        ({}, "data.aligner=runs/asr"),
        ({"aligner": str(aligner.path)}, "has 5 speakers"),
        ({"aligner": str(aligner.path), "speaker": "nobody"}, "speaker 'nobody' says 0 clips"),
        ({"aligner": str(data)}, "is not a complete run"),
    ):
        with pytest.raises((ConfigError, DataError, RunError), match=message):
            gn.train(RunConfig(data=str(data), model="fastspeech", epochs=1, data_args=data_args))


def test_word_concatenation_joins_recorded_words_and_spells_unknown_ones():
    symbols = sy.synthesis_symbols(["ab b"])  # <pad> ^ $ space a b
    ids = [1, 4, 5, 3, 5, 2]  # ^ a b space b $
    durations = [2, 1, 2, 3, 4, 1]
    inputs = torch.zeros(1, 2, 8, dtype=torch.int64)
    inputs[0, 0, :6], inputs[0, 1, :6] = torch.tensor(ids), torch.tensor(durations)
    frames = sum(durations)
    targets = torch.full((1, 3, 16), sy.LOG_FLOOR)
    targets[0, 0, :frames] = torch.arange(frames, dtype=torch.float32)  # band 0 numbers the frames
    concatenation = sy.WordConcatenation(inputs, targets, symbols)
    said = concatenation.speak("b ab")[0].tolist()
    # start (frames 0-1), "b" (8-11), pause (5-7), "ab" (2-4), end (12)
    assert said == [0, 1, 8, 9, 10, 11, 5, 6, 7, 2, 3, 4, 12]
    # "ba" was never said: spelt from letters, each the recording of median length (b: 8-11 of 3-4 and 8-11)
    assert concatenation.speak("ba")[0].tolist() == [0, 1, 8, 9, 10, 11, 2, 12]
