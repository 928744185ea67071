"""The synthesised ``spoken-digits`` built-in: voices, atomic synthesis, voice-disjoint splits, training."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet
import glassnet.data.spoken_digits as sd
from glassnet.config import RunConfig
from glassnet.data import list_datasets, load_dataset
from glassnet.errors import ConfigError, DataError

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)
SMALL_VOICES = [
    sd.Voice("espeak-en-us", "espeak-ng", "en-us"),
    sd.Voice("espeak-en-gb+f3", "espeak-ng", "en-gb+f3"),
    sd.Voice("espeak-en-gb-scotland+m3", "espeak-ng", "en-gb-scotland+m3"),
    sd.Voice("espeak-de+klatt", "espeak-ng", "de+klatt"),
    sd.Voice("espeak-en-029+f4", "espeak-ng", "en-029+f4"),
    sd.Voice("espeak-fr-fr+m7", "espeak-ng", "fr-fr+m7"),
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_registered_as_an_audio_classification_dataset():
    info = {d.name: d for d in list_datasets()}["spoken-digits"]
    assert info.task == "classify" and info.modality == "audio" and "espeak-ng" in info.source


def test_missing_espeak_says_how_to_install_it(cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"espeak-ng, which is not installed") as info:
        load_dataset("spoken-digits")
    message = str(info.value)
    assert "apt-get install espeak-ng" in message and "brew install espeak-ng" in message
    assert not (cache / "spoken-digits").exists()


def test_voice_split_holds_out_whole_voices_reproducibly():
    voices = [f"v{i:02d}" for i in range(40)]
    train, val, test = sd.voice_split(voices, 0.15, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (26, 6, 8)
    assert not set(train) & set(test) and not set(val) & set(test) and not set(train) & set(val)
    assert sorted(train + val + test) == voices
    assert sd.voice_split(voices, 0.15, 0.2, seed=0) == (train, val, test)
    assert sd.voice_split(voices, 0.15, 0.2, seed=1)[2] != test


def test_voice_split_needs_a_training_voice():
    with pytest.raises(ConfigError, match=r"2 voices cannot give 1 test and 1 validation voices and keep one"):
        sd.voice_split(["a", "b"], 0.15, 0.2, seed=0)
    with pytest.raises(ConfigError, match=r"val_fraction=0.5, test_fraction=0.5"):
        sd.voice_split(["a", "b", "c"], 0.5, 0.5, seed=0)


def test_split_words_cuts_at_long_pauses_only():
    rate = 1000
    word, pause, closure = np.ones(100) * 0.5, np.zeros(300), np.zeros(50)
    recording = np.concatenate([pause, word, closure, word, pause, word, pause])
    words = sd.split_words(recording, rate, 2)
    assert words is not None and [len(w) for w in words] == [250 + 20, 100 + 20]  # 10 ms margins
    assert sd.split_words(recording, rate, 3) is None


@needs_espeak
def test_plan_voices_gives_many_distinct_speakers():
    voices = sd.plan_voices(shutil.which("espeak-ng"), shutil.which("flite"))
    names = [v.name for v in voices]
    assert len(names) == len(set(names)) >= 40
    variants = [v.voice.split("+")[1] for v in voices if "+" in v.voice]
    assert len(variants) == len(set(variants))  # each espeak-ng variant speaks with one accent only
    assert {"espeak-en-us", "espeak-en-gb", "espeak-de"} <= set(names)


@needs_espeak
def test_small_synthesis_gives_voice_disjoint_splits(cache):
    folder = sd.synthesise_spoken_digits(cache / "spoken-digits", voices=SMALL_VOICES, speeds=(175,), pitches=(50,))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["clips"]) == 60 and manifest["skipped"] == {}
    assert "eSpeak" in manifest["engines"]["espeak-ng"] and manifest["speeds"] == [175]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(sd.DIGITS)
    assert not list(cache.glob(".spoken-digits-*"))  # the temporary folder was renamed into place

    bundle = load_dataset("spoken-digits", val_fraction=0.2, test_fraction=0.2)
    spec = bundle.spec
    assert spec.modality == "audio" and spec.input_shape == (1, 40, 101) and spec.class_names == sd.DIGITS
    voices = bundle.info["voices"]
    assert [len(voices[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert not set(voices["test"]) & (set(voices["train"]) | set(voices["val"]))
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [40, 10, 10]
    assert sorted(bundle.test.tensors[1].tolist()) == list(range(10))  # the test voice says every digit
    assert spec.extra["audio"]["sample_rate"] == 16000 and spec.extra["audio"]["duration"] == 1.0

    assert (folder / "features-n40.npy").is_file()  # features are computed once, then read back
    again = load_dataset("spoken-digits", val_fraction=0.2, test_fraction=0.2, n_mels=32)
    assert again.spec.input_shape == (1, 32, 101) and (folder / "features-n32.npy").is_file()


@needs_espeak
def test_a_voice_that_fails_is_skipped_and_recorded(cache):
    voices = [SMALL_VOICES[0], sd.Voice("espeak-nowhere", "espeak-ng", "xx-no-such-voice")]
    folder = sd.synthesise_spoken_digits(cache / "sd", voices=voices, speeds=(175,), pitches=(50,))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["skipped"]) == ["espeak-nowhere"]
    assert "exited with status" in manifest["skipped"]["espeak-nowhere"]
    assert {c["voice"] for c in manifest["clips"]} == {"espeak-en-us"}
    assert not list(folder.glob("*/espeak-nowhere*"))


def test_a_failed_synthesis_leaves_no_folder(cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")

    def fail(*args: object) -> None:
        raise DataError("synthesis broke")

    monkeypatch.setattr(sd, "_synthesise_all", fail)
    with pytest.raises(DataError, match="synthesis broke"):
        sd.synthesise_spoken_digits(cache / "spoken-digits", voices=SMALL_VOICES[:1])
    assert not (cache / "spoken-digits").exists() and list(cache.iterdir()) == []


def test_a_damaged_folder_says_how_to_rebuild_it(cache):
    folder = cache / "spoken-digits"
    (folder / "zero").mkdir(parents=True)
    clip = {"file": "zero/a.wav", "digit": 0, "voice": "v", "speed": 175, "pitch": 50}
    (folder / "manifest.json").write_text(json.dumps({"format": sd.FORMAT, "clips": [clip]}))
    with pytest.raises(
        DataError, match=r"'.*zero/a.wav' listed in .*manifest.json' is missing; delete '.*spoken-digits'"
    ):
        load_dataset("spoken-digits")


@pytest.mark.slow
@needs_espeak
def test_cnn_recognises_digits_spoken_by_unseen_voices(cache, tmp_path):
    start = time.perf_counter()
    bundle = load_dataset("spoken-digits")
    built = time.perf_counter() - start
    assert len(bundle.info["voices"]["test"]) >= 20
    config = RunConfig(
        data="spoken-digits", model="cnn", epochs=3, batch_size=64, model_args={"channels": [8, 16], "hidden": 64}
    )
    run = glassnet.train(config, out=tmp_path / "run")
    accuracy = json.loads((run.path / "results" / "train.json").read_text())["test"]["accuracy"]
    print(f"spoken-digits: built in {built:.0f} s, {time.perf_counter() - start:.0f} s in all, accuracy {accuracy}")
    assert accuracy >= 0.80  # chance is 0.10; measured 0.904, 0.917, 0.922 on unseen voices (seeds 0, 1, 2)
