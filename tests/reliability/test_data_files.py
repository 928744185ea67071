"""Issue 18, items 4, 10 and 14: folders with link loops or linked copies, decompression bombs and
damaged inputs given to predict, text files whose texts are empty, and the line of a non-UTF-8 byte."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from reliability_checks import cli, refused

from glassnet.cli import main
from glassnet.data.audio import scan_audio_folder
from glassnet.data.images import load_image_folder
from glassnet.data.text import read_text_csv

TINY_MLP = ["--model", "mlp", "--epochs", "1", "model.width=8", "--quiet"]


def image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6) -> Path:
    """``root/<class>/<i>.png``: 8x8 RGB images, a different grey per class and image."""
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * c + 10 * i, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def split_files(root: Path) -> dict[str, list[str]]:
    """The files of each split, as the streaming loader lists them."""
    bundle = load_image_folder(root, in_memory=False)
    return {split: getattr(bundle, split).files for split in ("train", "val", "test")}


def assert_each_file_once(files: dict[str, list[str]], count: int) -> None:
    """``count`` files in all the splits together, no real file twice (so none in two splits)."""
    everything = [os.path.realpath(f) for split in files.values() for f in split]
    assert len(everything) == count and len(set(everything)) == count, files


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header declares ``width x height`` grey pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def wav_bytes(channels: int = 1, rate: int = 8000, samples: int = 800, fmt: bool = True) -> bytes:
    """A 16-bit PCM WAV file; ``channels`` and ``rate`` are written as given, even when absurd."""
    data = (np.sin(np.arange(samples) / 5) * 10000).astype("<i2").tobytes()
    block = 2 * max(channels, 1)
    chunks = b""
    if fmt:
        fields = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
        chunks += b"fmt " + struct.pack("<I", len(fields)) + fields
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def audio_folder(root: Path, per_class: int = 3) -> Path:
    for name in ("no", "yes"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.wav").write_bytes(wav_bytes(samples=800 + 100 * i))
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """An mlp trained one epoch on a 2 x 6 folder of 8x8 images."""
    root = tmp_path_factory.mktemp("images")
    photos = image_folder(root / "photos")
    assert main([str(a) for a in ["train", "--data", photos, *TINY_MLP, "--out", root / "run"]]) == 0
    return root / "run"


# --- item 4: folder walkers follow links, but each folder and each file once ---------------------


def test_a_link_loop_in_an_image_folder_neither_multiplies_nor_leaks_images(tmp_path, capsys):
    photos = image_folder(tmp_path / "photos")
    (photos / "cat" / "up").symlink_to("..")  # photos/cat/up/cat/up/... : a loop back to the dataset
    with pytest.warns(UserWarning, match="1 linked folder"):
        files = split_files(photos)
    assert_each_file_once(files, 12)

    with pytest.warns(UserWarning, match="link loop"):
        code, _, err = cli(capsys, ["train", "--data", photos, *TINY_MLP, "--out", tmp_path / "run"])
    assert code == 0, err
    result = json.loads((tmp_path / "run" / "results" / "train.json").read_text())
    assert sum(split["size"] for split in result["data"]["splits"].values()) == 12
    assert result["data"]["linked_folders_skipped"] == 1


def test_linked_copies_are_used_once_where_the_file_lies(tmp_path):
    photos = image_folder(tmp_path / "photos")
    (photos / "cat" / "more").symlink_to("../dog")  # a class folder linked into another
    (photos / "cat" / "a.png").symlink_to("../dog/0.png")  # a file linked into another class
    (photos / "cat" / "b.png").hardlink_to(photos / "dog" / "1.png")
    outside = image_folder(tmp_path / "elsewhere", classes=("extra",), per_class=2) / "extra"
    (outside / "back").symlink_to(outside)  # a loop outside the dataset
    (photos / "cat" / "linked").symlink_to(outside)  # linking data in stays supported
    with pytest.warns(UserWarning, match="2 file"):
        files = split_files(photos)
    assert_each_file_once(files, 14)  # 12 + the 2 linked-in images, each once
    kept = [f for split in files.values() for f in split]
    assert all(str(photos / "dog" / f"{i}.png") in kept for i in (0, 2, 3, 4, 5))  # not under cat by a link
    assert (str(photos / "cat" / "b.png") in kept) != (str(photos / "dog" / "1.png") in kept)  # hard links: once


def test_one_file_in_the_train_and_test_folders_is_kept_in_train_only(tmp_path):
    root = tmp_path / "photos"
    image_folder(root / "train")
    image_folder(root / "test", per_class=2)
    (root / "test" / "cat" / "0.png").unlink()
    (root / "test" / "cat" / "0.png").symlink_to(root / "train" / "cat" / "0.png")
    with pytest.warns(UserWarning, match="1 file"):
        files = split_files(root)
    assert_each_file_once(files, 15)
    assert str(root / "train" / "cat" / "0.png") in files["train"] + files["val"]


def test_a_class_folder_that_is_a_link_to_another_is_refused(tmp_path, capsys):
    photos = image_folder(tmp_path / "photos", classes=("cat", "dog"), per_class=4)
    (photos / "owl").symlink_to("cat")  # owl's images would be cat's images with a second label
    refused(capsys, ["train", "--data", photos, *TINY_MLP], "owl", "no images of its own", "links")

    sounds = audio_folder(tmp_path / "sounds")
    (sounds / "zzz").symlink_to("no")
    refused(capsys, ["train", "--data", sounds, *TINY_MLP], "zzz", "no clips of its own")


def test_an_audio_clip_linked_into_another_class_is_used_once(tmp_path):
    sounds = audio_folder(tmp_path / "sounds")
    (sounds / "yes" / "linked.wav").symlink_to("../no/0.wav")
    with pytest.warns(UserWarning, match="1 file"):
        names, files, labels = scan_audio_folder(sounds)
    assert len(files) == 6 and len({os.path.realpath(f) for f in files}) == 6
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


# --- item 10: predict refuses decompression bombs and damaged files in one line ------------------


def test_predict_refuses_a_decompression_bomb_naming_its_size_and_the_limit(image_run, tmp_path, capsys):
    bomb = bomb_png(tmp_path / "bomb.png")
    refused(capsys, ["predict", image_run, bomb], "bomb.png", "400,000,000 pixels", "limit of 178,956,970")


def test_training_refuses_a_decompression_bomb_the_same_way(tmp_path, capsys):
    photos = image_folder(tmp_path / "photos")
    bomb_png(photos / "dog" / "huge.png")
    refused(capsys, ["train", "--data", photos, *TINY_MLP], "huge.png", "400,000,000 pixels", "decompression")


def test_predict_refuses_truncated_and_fake_images(image_run, tmp_path, capsys):
    from PIL import Image

    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(whole)
    (tmp_path / "cut.png").write_bytes(whole.read_bytes()[:2000])
    (tmp_path / "fake.png").write_text("not an image")
    refused(capsys, ["predict", image_run, tmp_path / "cut.png"], "cut.png", "truncated")
    refused(capsys, ["predict", image_run, tmp_path / "fake.png"], "fake.png")


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("empty.npy", b"", "empty or cut short"),
        ("cut.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'", "not a complete .npy"),
    ],
)
def test_predict_refuses_damaged_npy_files(trained_run, tmp_path, capsys, name, raw, fragment):
    (tmp_path / name).write_bytes(raw)
    refused(capsys, ["predict", trained_run, tmp_path / name], name, fragment)


def test_predict_refuses_an_npy_header_declaring_terabytes(trained_run, tmp_path, capsys):
    from numpy.lib import format as npy_format

    path = tmp_path / "huge.npy"
    with path.open("wb") as handle:
        npy_format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 30)})
        handle.write(b"\0" * 120)
    refused(capsys, ["predict", trained_run, path], "huge.npy")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (wav_bytes(channels=0), "as a WAV file"),  # scipy divides by the channel count
        (wav_bytes(fmt=False), "as a WAV file"),  # no fmt chunk: scipy's rate is never set
        (wav_bytes(rate=0), "sample rate of 0 Hz"),
        (wav_bytes(rate=2_000_000_000), "sample rate of 2000000000 Hz"),  # would design a filter of 10**10 taps
        (b"RIFF\x00\x00\x00\x00WAVE", "as a WAV file"),
    ],
)
def test_a_wav_with_a_damaged_header_is_refused_in_one_line(tmp_path, capsys, raw, fragment):
    sounds = audio_folder(tmp_path / "sounds")
    (sounds / "yes" / "bad.wav").write_bytes(raw)
    refused(capsys, ["train", "--data", sounds, *TINY_MLP], "bad.wav", fragment)


# --- item 14: empty texts, and the line of a byte that is not UTF-8 -------------------------------


def test_a_text_csv_whose_texts_are_all_empty_is_refused(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("label,text\n" + "".join(f"{'pos' if i % 2 else 'neg'},{' ' * (i % 3)}\n" for i in range(40)))
    refused(
        capsys,
        ["train", "--data", path, "--model", "gru", "--epochs", "1"],
        "reviews.csv",
        "every text in column 'text' is empty",
    )


def test_a_text_csv_whose_texts_are_mostly_empty_warns(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f"{'pos' if i % 2 else 'neg'},{'good film' if i % 3 == 0 else ''}\n" for i in range(30)]
    path.write_text("label,text\n" + "".join(rows))
    with pytest.warns(UserWarning, match="20 of 30 texts in column 'text' are empty"):
        read_text_csv(path)


def test_a_warning_on_the_command_line_is_one_glassnet_line(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f"{'pos' if i % 2 else 'neg'},{'good film' if i % 3 == 0 else ''}\n" for i in range(30)]
    path.write_text("label,text\n" + "".join(rows))
    args = ["train", "--data", path, "--model", "gru", "--epochs", "1", "--quiet", "--out", tmp_path / "run"]
    done = subprocess.run([sys.executable, "-m", "glassnet", *map(str, args)], capture_output=True, text=True)
    warned = [line for line in done.stderr.splitlines() if "texts in column" in line]
    assert warned and warned[0].startswith("glassnet: warning: ") and "20 of 30 texts" in warned[0], done.stderr
    assert "warnings.warn" not in done.stderr and "return loader" not in done.stderr


def latin1_on_line_151(path: Path, header: str, row, bad_row, bom: bool = False) -> Path:
    """``header``, 149 rows of ``row(i)``, then ``bad_row`` (line 151) holding a latin-1 byte, then more rows."""
    lines = [header] + [row(i) for i in range(149)]
    body = ("\n".join(lines) + "\n").encode() + bad_row + b"\n" + ("\n".join(row(i) for i in range(20)) + "\n").encode()
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
    return path


def test_tabular_csv_reports_the_line_of_a_latin1_byte(tmp_path, capsys):
    path = latin1_on_line_151(tmp_path / "table.csv", "x,colour,target", lambda i: f"{i},red,{i % 2}", b"7,caf\xe9,1")
    refused(capsys, ["train", "--data", path, *TINY_MLP], "table.csv", "byte 0xe9 on line 151", "iconv")


def test_text_csv_reports_the_line_of_a_latin1_byte_after_a_byte_order_mark(tmp_path, capsys):
    path = latin1_on_line_151(tmp_path / "reviews.csv", "label,text", lambda i: f"pos,good {i}", b"neg,caf\xe9", True)
    refused(capsys, ["train", "--data", path, "--model", "gru"], "reviews.csv", "byte 0xe9 on line 151")


def test_time_series_csv_reports_the_line_of_a_latin1_byte(tmp_path, capsys):
    path = latin1_on_line_151(tmp_path / "sales.csv", "date,sales", lambda i: f"2020-01-01,{i}", b"2020-05-01,1\xe9")
    err = refused(capsys, ["train", "--data", path, *TINY_MLP, "data.format=timeseries"], "sales.csv", "line 151")
    assert "byte 0xe9" in err


def test_predict_reports_the_line_of_a_latin1_byte_in_a_csv(trained_run, tmp_path, capsys):
    row = ",".join(["1.0"] * 30)
    path = latin1_on_line_151(tmp_path / "rows.csv", row, lambda i: row, b"1.0\xe9" + b",1.0" * 29)
    refused(capsys, ["predict", trained_run, path], "rows.csv", "line 151")
