"""The ``transcripts`` format (WAV files listed with their text) and the transcript helpers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from glassnet.data import load_dataset
from glassnet.data import transcripts as tr
from glassnet.errors import ConfigError, DataError


def write_clip(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wavfile.write(path, rate, (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16))
    return path


def speech_folder(
    root: Path, rows: list[dict[str, str]], seconds: float = 0.5, header: list[str] | None = None
) -> Path:
    """A folder of tone clips and a ``transcripts.csv`` listing them."""
    header = header or list(rows[0])
    root.mkdir(parents=True, exist_ok=True)
    for k, row in enumerate(rows):
        write_clip(root / row[header[0]], seconds + 0.05 * (k % 3), freq=200 + 40 * k)
    with (root / tr.CSV_NAME).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([row.get(h, "") for h in header] for row in rows)
    return root


def rows(n: int, speakers: int = 0) -> list[dict[str, str]]:
    words = ["call home", "turn on the lights", "five five one two", "stop", "play jazz", "it's twenty-one"]
    out = [{"file": f"clips/{k:03d}.wav", "text": words[k % len(words)]} for k in range(n)]
    for k, row in enumerate(out):
        if speakers:
            row["speaker"] = f"s{k % speakers}"
    return out


def test_normalise_keeps_words_and_drops_punctuation():
    assert tr.normalise_transcript("  Call Mum, NOW!  ") == "call mum now"
    assert tr.normalise_transcript("It's twenty-one.") == "it's twenty-one"
    assert tr.normalise_transcript("Ｃａｆé\t42") == "café 42"  # NFKC folds full-width letters
    assert tr.normalise_transcript("Don\u2019t stop - 'now'") == "don't stop now"  # typographic apostrophe


def test_alphabet_puts_blank_and_space_first_and_encoding_round_trips():
    symbols = tr.alphabet(["call home", "stop"])
    assert symbols[:2] == (tr.BLANK, " ") and list(symbols[2:]) == sorted(set("callhomestop"))
    ids = tr.encode_transcripts(["call home", "stop"], symbols)
    assert ids.shape == (2, 9) and ids[1, 4:].tolist() == [0] * 5 and 0 not in ids[0]
    assert [tr.decode_ids(row, symbols) for row in ids] == ["call home", "stop"]
    assert tr.display_names(symbols)[1] == tr.SPACE
    with pytest.raises(DataError, match=r"'x' .* not in the alphabet"):
        tr.encode_transcripts(["x"], symbols)
    with pytest.raises(DataError, match=r"has 9 characters; at most 4 fit"):
        tr.encode_transcripts(["call home"], symbols, length=4)


def test_folder_loads_as_a_transcribe_bundle(tmp_path):
    folder = speech_folder(tmp_path / "speech", rows(20))
    bundle = load_dataset(str(folder))
    spec = bundle.spec
    assert spec.task == "transcribe" and spec.modality == "audio"
    assert spec.extra["alphabet"][:2] == [tr.BLANK, " "] and spec.num_outputs == len(spec.extra["alphabet"])
    assert spec.extra["max_transcript"] == len("turn on the lights")
    assert spec.extra["audio"]["duration"] == 0.75 and spec.extra["audio"]["strict"] is True  # 0.6 s rounded up
    assert spec.input_shape == (1, 40, 76)  # 10 ms hop over 0.75 s
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 20
    utterances = bundle.test.utterances
    assert len(utterances) == len(bundle.test) and Path(utterances[0]["file"]).is_file()
    x, y = bundle.test[0]
    assert tr.decode_ids(y, spec.extra["alphabet"]) == utterances[0]["text"]
    assert bundle.info["split"] == "rows shuffled"


def test_the_csv_itself_and_other_column_names_are_accepted(tmp_path):
    table = [{"path": r["file"], "sentence": r["text"]} for r in rows(9)]
    folder = speech_folder(tmp_path / "speech", table, header=["path", "sentence"])
    bundle = load_dataset(str(folder / tr.CSV_NAME))
    assert bundle.spec.task == "transcribe" and len(bundle.train) + len(bundle.val) + len(bundle.test) == 9


def test_speakers_are_held_out_whole(tmp_path):
    folder = speech_folder(tmp_path / "speech", rows(30, speakers=6))
    bundle = load_dataset(str(folder))
    assert bundle.info["split"] == "whole speakers held out"
    seen = [{u["speaker"] for u in bundle.split(s).utterances} for s in ("train", "val", "test")]
    assert seen[2] and not seen[2] & (seen[0] | seen[1]) and not seen[1] & seen[0]


def test_rows_without_a_speaker_are_split_one_by_one(tmp_path):
    table = rows(20, speakers=3)
    for row in table[6:]:
        row["speaker"] = ""
    bundle = load_dataset(str(speech_folder(tmp_path / "speech", table)))
    sizes = [len(bundle.train), len(bundle.val), len(bundle.test)]
    assert sizes[0] > 10 and all(sizes)  # not the 14 speaker-less rows held out together as one "voice"


def test_empty_validation_or_test_splits_are_refused(tmp_path):
    table = rows(6)
    for row, split in zip(table, ["train", "train", "train", "train", "test", "test"]):
        row["split"] = split
    with pytest.raises(DataError, match=r"no clip is left for validation \(the split column\)"):
        load_dataset(str(speech_folder(tmp_path / "a", table)))
    table[4]["split"] = table[5]["split"] = "val"
    with pytest.raises(DataError, match=r"no clip is left for testing"):
        load_dataset(str(speech_folder(tmp_path / "b", table)))
    small = load_dataset(str(speech_folder(tmp_path / "c", rows(4))))  # 15% of 4 rows rounds to 0: still 1
    assert len(small.val) == 1 and len(small.test) == 1 and small.spec.name == "c"
    assert load_dataset(str(tmp_path / "c" / tr.CSV_NAME)).spec.name == "c"  # the CSV's folder names the data


def test_a_split_column_wins(tmp_path):
    table = rows(6, speakers=3)
    for row, split in zip(table, ["train", "train", "train", "val", "test", "test"]):
        row["split"] = split
    bundle = load_dataset(str(speech_folder(tmp_path / "speech", table)))
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (3, 1, 2)
    table[0]["split"] = "holdout"
    with pytest.raises(DataError, match=r"split column holds 'holdout'"):
        load_dataset(str(speech_folder(tmp_path / "other", table)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: (f / tr.CSV_NAME).write_text("name,words\na.wav,hi\n"), r"needs a file column .* and a text column"),
        (lambda f: (f / "clips" / "001.wav").unlink(), r"line 3: audio file 'clips/001.wav' not found"),
        (lambda f: _edit(f, 2, "text", " "), r"line 4: the text of 'clips/002.wav' is empty"),
        (lambda f: _edit(f, 2, "text", "?!"), r"the transcript of '.*002.wav' is empty"),
        (lambda f: _edit(f, 2, "file", "clips/000.wav"), r"lists '000.wav' twice \(lines 2 and 4\)"),
        (lambda f: (f / tr.CSV_NAME).write_text("file,text\nclips/000.wav,a,b\n"), r"line 2 has 3 fields"),
        (lambda f: (f / tr.CSV_NAME).write_bytes(b"file,text\n\xff\xfe,\x80\n"), r"cannot read .* as UTF-8"),
        (lambda f: (f / "clips" / "001.wav").write_bytes(b"RIFF0000WAVEjunk"), r"001.wav"),
        (lambda f: write_clip(f / "clips" / "001.wav", 61.0), r"lasts 61.0 s; utterances of at most 60 s"),
    ],
)
def test_bad_folders_get_clear_errors(tmp_path, change, message):
    folder = speech_folder(tmp_path / "speech", rows(8))
    change(folder)
    with pytest.raises(DataError, match=message):
        load_dataset(str(folder))


def _edit(folder: Path, row: int, column: str, value: str) -> None:
    path = folder / tr.CSV_NAME
    table = list(csv.DictReader(path.open()))
    table[row][column] = value
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def test_a_clip_longer_than_the_duration_is_refused_not_cut(tmp_path):
    folder = speech_folder(tmp_path / "speech", rows(8))
    with pytest.raises(DataError, match=r"lasts 0.60 s, longer than duration=0.5 s; cutting it would lose words"):
        load_dataset(str(folder), duration=0.5)
    with pytest.raises(ConfigError, match=r"duration must be 'auto' or a number of seconds"):
        load_dataset(str(folder), duration="long")
    assert load_dataset(str(folder), duration=1.0).spec.input_shape == (1, 40, 101)


def test_prediction_refuses_a_clip_longer_than_training_clips(tmp_path):
    from glassnet.data.audio import audio_features

    bundle = load_dataset(str(speech_folder(tmp_path / "speech", rows(8))))
    short, long = write_clip(tmp_path / "short.wav", 0.4), write_clip(tmp_path / "long.wav", 0.9)
    assert audio_features(short, bundle.spec).shape == (1, 40, 76)
    with pytest.raises(DataError, match=r"long.wav' lasts 0.90 s; this model takes clips of at most 0.75 s"):
        audio_features(long, bundle.spec)


def test_too_few_rows_and_missing_csv(tmp_path):
    with pytest.raises(DataError, match=r"a train, validation and test split need at least 3"):
        load_dataset(str(speech_folder(tmp_path / "speech", rows(2))))
    with pytest.raises(DataError, match=r"neither a folder with transcripts.csv nor a CSV file"):
        tr.read_transcripts(tmp_path / "nowhere")
