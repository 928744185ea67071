"""Audio folders: WAV reading, resampling, log-mel features in torch, the folder loader and its errors."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

import glassnet
import glassnet.data.audio  # noqa: F401  (registers the "audio" format before the integrator wires it)
from glassnet.cli.main import main
from glassnet.config import RunConfig
from glassnet.data import load_dataset
from glassnet.data.audio import (
    audio_features,
    audio_options,
    files_features,
    fix_length,
    hz_to_mel,
    is_audio_folder,
    load_audio_folder,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    read_wav,
    resample,
)
from glassnet.errors import ConfigError, DataError
from glassnet.models import load_model


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def write(path: Path, rate: int, data: np.ndarray, dtype: str = "int16") -> Path:
    """Write float samples in [-1, 1] (mono, or frames x channels) as a WAV of ``dtype``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.round(data * 32767).astype(np.int16) if dtype == "int16" else data.astype(np.float32)
    wavfile.write(path, rate, samples)
    return path


def make_folder(root: Path, per_class: int = 12, freqs: dict[str, float] | None = None) -> Path:
    """Class folders of noisy tones, mixing 8 kHz int16 mono, 44.1 kHz float32 stereo and 16 kHz clips
    of 0.4 to 1.6 s, so every clip is resampled, padded or cropped on the way."""
    rng = np.random.default_rng(0)
    freqs = freqs or {"high": 2500.0, "low": 300.0}
    formats = [(8000, "int16", 1), (44100, "float32", 2), (16000, "int16", 1)]
    for name, freq in freqs.items():
        for i in range(per_class):
            rate, dtype, channels = formats[i % 3]
            seconds = rng.uniform(0.4, 1.6)
            mono = tone(freq * rng.uniform(0.95, 1.05), rate, seconds, rng.uniform(0.2, 0.6), rng.uniform(0, 6))
            mono = mono + rng.normal(0, 0.01, len(mono))
            data = np.stack([mono, 0.5 * mono], axis=1) if channels == 2 else mono
            write(root / name / f"clip{i:02d}.wav", rate, data, dtype)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "sounds")


# ---------------------------------------------------------------------------------------------
# reading WAV files


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_read_wav_gives_mono_float_in_unit_range(tmp_path, dtype):
    data = tone(440, 8000, 0.25, amplitude=0.5)
    rate_back = read_wav(write(tmp_path / "a.wav", 8000, data, dtype))
    wave_back, rate = rate_back
    assert rate == 8000 and wave_back.dtype == np.float32 and wave_back.shape == (2000,)
    np.testing.assert_allclose(wave_back, data, atol=1e-4)


def test_read_wav_mixes_stereo_to_mono(tmp_path):
    left, right = tone(440, 16000, 0.1, 0.8), np.zeros(1600)
    wave_back, _ = read_wav(write(tmp_path / "st.wav", 16000, np.stack([left, right], axis=1), "float32"))
    np.testing.assert_allclose(wave_back, 0.4 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000), atol=1e-5)


def test_read_wav_scales_8_and_24_bit_pcm(tmp_path):
    data = tone(440, 8000, 0.1, amplitude=0.5)
    wavfile.write(tmp_path / "u8.wav", 8000, np.round(data * 127 + 128).astype(np.uint8))
    with wave.open(str(tmp_path / "b24.wav"), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(3)
        stream.setframerate(8000)
        ints = np.round(data * (2**23 - 1)).astype("<i4")
        stream.writeframes(b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints))
    for name, tolerance in (("u8.wav", 1 / 128), ("b24.wav", 1e-6)):
        got, rate = read_wav(tmp_path / name)
        assert rate == 8000
        np.testing.assert_allclose(got, data, atol=tolerance)


# ---------------------------------------------------------------------------------------------
# resampling, length, mel filters, log-mel


@pytest.mark.parametrize("rate,seconds", [(8000, 0.5), (44100, 1.0), (22050, 0.3)])
def test_resample_gives_the_target_length_and_keeps_the_pitch(rate, seconds):
    out = resample(tone(440, rate, seconds).astype(np.float32), rate, 16000)
    assert len(out) == round(16000 * seconds) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert np.fft.rfftfreq(len(out), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_resample_at_the_same_rate_keeps_the_samples():
    data = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(resample(data, 16000, 16000), data)


def test_fix_length_pads_and_crops_around_the_centre():
    np.testing.assert_array_equal(fix_length(np.array([1.0, 2.0]), 5), [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(10.0), 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(np.arange(4.0), 4), [0, 1, 2, 3])


def test_htk_mel_scale():
    assert float(hz_to_mel(1000.0)) == pytest.approx(1000.0, abs=0.05)  # 1 kHz is ~1000 mel in HTK's scale
    assert float(hz_to_mel(700.0)) == pytest.approx(2595 * np.log10(2))
    assert float(mel_to_hz(hz_to_mel(3456.0))) == pytest.approx(3456.0)


def test_mel_filterbank_is_triangles_peaking_at_evenly_spaced_mel_centres():
    bank = mel_filterbank(40, 512, 16000)
    assert bank.shape == (40, 257) and bank.dtype == torch.float32 and bank.min() >= 0 and bank.max() <= 1
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(8000.0)), 42, dtype=torch.float64))[1:-1].numpy()
    bin_hz = 16000 / 512
    peaks = bank.argmax(dim=1).numpy() * bin_hz
    assert np.all(np.abs(peaks - centres) <= bin_hz)  # each peak is at the FFT bin nearest its centre
    assert np.all(np.diff(peaks) >= 0)
    # neighbouring triangles meet: between two centres the weights of both filters add to 1
    between = (bank[10] > 0) & (bank[11] > 0)
    np.testing.assert_allclose((bank[10] + bank[11])[between], 1.0, atol=1e-5)


def test_too_many_mels_for_the_fft_is_a_config_error():
    with pytest.raises(ConfigError, match=r"n_mels=128 is too many for n_fft=64 .*Lower n_mels or raise n_fft"):
        mel_filterbank(128, 64, 16000)


def test_log_mel_shape_and_silence_floor():
    mels = log_mel(torch.zeros(16000), 16000, n_mels=40, n_fft=512, hop_length=160)
    assert mels.shape == (40, 101) and mels.dtype == torch.float32
    torch.testing.assert_close(mels, torch.full_like(mels, float(np.log(1e-6))))
    batch = log_mel(torch.zeros(3, 8000), 16000, n_mels=20, n_fft=256, hop_length=100)
    assert batch.shape == (3, 20, 81)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_a_pure_tone_lands_in_the_mel_band_centred_nearest_it(freq):
    mels = log_mel(torch.from_numpy(tone(freq, 16000, 1.0)).float(), 16000, n_mels=40, n_fft=512, hop_length=160)
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(8000.0)), 42, dtype=torch.float64))[1:-1]
    loudest = mels[:, 50].argmax().item()
    assert abs(loudest - int((centres - freq).abs().argmin())) <= 1
    assert mels[loudest, 50] - mels[:, 50].median() > 5  # far above the other bands (log scale)


def test_spectrogram_options_are_checked():
    with pytest.raises(ConfigError, match=r"hop_length must be an integer >= 1. Received: hop_length=0"):
        log_mel(torch.zeros(100), 16000, hop_length=0)
    with pytest.raises(ConfigError, match=r"duration must be a number of seconds .* Received: duration=-1"):
        audio_options(duration=-1)


# ---------------------------------------------------------------------------------------------
# the folder format


def test_folder_loads_as_log_mel_spectrograms(folder):
    bundle = load_audio_folder(folder)
    spec = bundle.spec
    assert spec.modality == "audio" and spec.task == "classify" and spec.class_names == ("high", "low")
    assert spec.input_shape == (1, 40, 101)
    x_train, y_train = bundle.train.tensors
    assert x_train.dtype == torch.float32 and torch.isfinite(x_train).all()
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 24
    assert spec.extra["audio"] == {
        "sample_rate": 16000,
        "duration": 1.0,
        "n_mels": 40,
        "n_fft": 512,
        "hop_length": 160,
        "samples": 16000,
        "frames": 101,
        "log_floor": 1e-6,
    }
    # per-channel statistics fitted on the training split only
    assert spec.input_mean[0] == pytest.approx(x_train.mean().item(), rel=1e-4)
    everything = torch.cat([bundle.train.tensors[0], bundle.val.tensors[0], bundle.test.tensors[0]])
    assert spec.input_mean[0] != pytest.approx(everything.mean().item(), rel=1e-6)


def test_options_change_the_feature_shape(folder):
    spec = load_audio_folder(folder, sample_rate=8000, duration=0.5, n_mels=24, n_fft=256, hop_length=80).spec
    assert spec.input_shape == (1, 24, 51)
    assert spec.extra["audio"]["samples"] == 4000


def test_clips_are_padded_or_cropped_to_the_duration(tmp_path):
    short = write(tmp_path / "short.wav", 16000, tone(1000, 16000, 0.2))
    long = write(tmp_path / "long.wav", 16000, tone(1000, 16000, 3.0))
    options = audio_options(duration=1.0)
    features = files_features([short, long], options)
    assert features.shape == (2, 1, 40, 101)
    band = features[:, 0].max(axis=0).argmax(axis=0)[50]  # the tone's band, at the centre frame
    frame_energy = features[:, 0, band, :]
    silence = np.log(1e-6)
    # the 0.2 s clip sits in the middle 20 frames of the window; the 3 s clip fills it
    assert np.all(frame_energy[0, :35] == pytest.approx(silence)) and frame_energy[0, 50] > 0
    assert np.all(frame_energy[1, 2:-2] > 0)


def test_load_dataset_detects_an_audio_folder(folder, tmp_path):
    assert is_audio_folder(folder)
    assert not is_audio_folder(tmp_path / "missing")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "a.png").write_bytes(b"png")
    assert not is_audio_folder(tmp_path / "images")
    bundle = load_dataset(str(folder), duration=0.5)
    assert bundle.spec.modality == "audio" and bundle.spec.input_shape == (1, 40, 51)


def test_audio_features_reproduce_the_training_features_for_prediction(folder):
    spec = load_audio_folder(folder, duration=0.75, n_mels=32).spec
    clip = folder / "low" / "clip01.wav"  # 44.1 kHz float32 stereo
    features = audio_features(clip, spec)
    assert features.shape == spec.input_shape == (1, 32, 76)
    np.testing.assert_array_equal(features, files_features([clip], audio_options(duration=0.75, n_mels=32))[0])


def test_audio_features_refuse_a_model_that_does_not_take_audio(folder, image_bundle):
    with pytest.raises(DataError, match=r"clip00.wav': WAV input needs an audio model; this model takes image data"):
        audio_features(folder / "low" / "clip00.wav", image_bundle.spec)


def test_train_separates_the_tones_end_to_end(tmp_path):
    folder = make_folder(tmp_path / "tones", per_class=14, freqs={"a": 300.0, "b": 1200.0, "c": 4000.0})
    config = RunConfig(
        data=str(folder), model="cnn", epochs=6, batch_size=16, model_args={"channels": [8, 16]}, device="cpu"
    )
    run = glassnet.train(config, out=tmp_path / "run")
    results = json.loads((run.path / "results" / "train.json").read_text())
    assert results["data"]["modality"] == "audio"
    assert results["test"]["accuracy"] >= 0.9
    model, spec = load_model(run.path)
    assert spec.extra["audio"]["n_mels"] == 40
    clip = write(tmp_path / "new.wav", 22050, tone(4000, 22050, 0.8))
    with torch.no_grad():
        scores = model(torch.from_numpy(audio_features(clip, spec))[None])
    assert spec.class_names[int(scores.argmax())] == "c"


# ---------------------------------------------------------------------------------------------
# bad input: each error names the folder or file and what to do


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"audio folder '.*nope' not found; give a folder with one sub-folder"):
        load_audio_folder(tmp_path / "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"audio folder '.*empty' holds no audio; expected one sub-folder of .wav"):
        load_audio_folder(tmp_path / "empty")


def test_wav_files_without_class_folders(tmp_path):
    write(tmp_path / "flat" / "a.wav", 8000, tone(440, 8000, 0.1))
    with pytest.raises(DataError, match=r"holds no audio \(1 .wav files lie directly in it: move them into class"):
        load_audio_folder(tmp_path / "flat")


def test_single_class(tmp_path):
    write(tmp_path / "one" / "dog" / "a.wav", 8000, tone(440, 8000, 0.1))
    write(tmp_path / "one" / "dog" / "b.wav", 8000, tone(440, 8000, 0.1))
    with pytest.raises(DataError, match=r"'.*one' has a single class \('dog'\); classification needs at least two"):
        load_audio_folder(tmp_path / "one")


def test_class_folder_without_wav_files(folder):
    (folder / "quiet").mkdir()
    (folder / "quiet" / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match=r"class folder '.*quiet' holds no .wav files; add clips or remove the folder"):
        load_audio_folder(folder)


def test_text_renamed_to_wav(folder):
    (folder / "low" / "fake.wav").write_text("this is not audio\n")
    with pytest.raises(DataError, match=r"cannot read '.*low/fake.wav' as a WAV file .*Give PCM"):
        load_audio_folder(folder)


def test_zero_sample_wav(folder):
    wavfile.write(folder / "high" / "empty.wav", 16000, np.zeros(0, dtype=np.int16))
    with pytest.raises(DataError, match=r"audio file '.*high/empty.wav' holds no samples \(0 frames\); remove it"):
        load_audio_folder(folder)


def test_truncated_wav(folder):
    good = (folder / "high" / "clip00.wav").read_bytes()
    (folder / "high" / "cut.wav").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"audio file '.*high/cut.wav' is truncated"):
        load_audio_folder(folder)


def test_wav_with_nan_samples(folder):
    data = tone(440, 8000, 0.1).astype(np.float32)
    data[5] = np.nan
    wavfile.write(folder / "high" / "nan.wav", 8000, data)
    with pytest.raises(DataError, match=r"audio file '.*high/nan.wav' contains NaN or infinite samples"):
        load_audio_folder(folder)


def test_command_line_reports_a_bad_file_with_status_2_and_writes_nothing(folder, tmp_path, capsys):
    (folder / "low" / "fake.wav").write_text("not audio")
    out = tmp_path / "run"
    status = main(["train", "--data", str(folder), "--model", "cnn", "--out", str(out), "epochs=1"])
    assert status == 2
    assert "fake.wav' as a WAV file" in capsys.readouterr().err
    assert not out.exists()
