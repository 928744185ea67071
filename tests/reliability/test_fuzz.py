"""Issue 18: a fuzz test of the files a user hands to glassnet.

Malformed CSVs, image and WAV folders, YAML configurations, ``model.json`` and ``results/*.json``
files, each made by mutating a valid file with a seeded ``random.Random`` (the same cases on every
run), go to the command line. Every case must end with exit status 2 and one ``glassnet: error:``
line (or 0 where the mutation may leave a valid input), never with a traceback, and must leave every
file but the command's own output as it was. Each case runs under a 20 s alarm, so a hang fails the
case by name instead of blocking CI.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import random
import shutil
import signal
import struct
import traceback
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_checks import PREFIX, cli, snapshot

CASE_SECONDS = 20  # far above any case's time (< 2 s but the size cap's); only a hang reaches it
SIZE_CAP_SECONDS = 60  # PyYAML's pure-Python parser reads the 900 KB config in ~12 s on an idle 2-core CPU
REFUSED = frozenset({2})
EITHER = frozenset({0, 2})  # a mutation that may leave the file valid

TRAIN = ["--epochs", "1", "--quiet"]
MLP = ["--model", "mlp", "model.width=8", "baseline=false"]
CNN = ["--model", "cnn", "model.channels=[4,8]", "model.hidden=8", "baseline=false"]
AUDIO = ["data.sample_rate=8000", "data.duration=0.1", "data.n_fft=128", "data.hop_length=64", "data.n_mels=8"]


# --- running one case -----------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in glassnet swallows it."""


def state(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` plus every directory (a command must not leave one behind)."""
    dirs = {str(p.relative_to(root)) + "/": "dir" for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}
    return {**snapshot(root), **dirs}


def run_cli(capsys, name: str, args: list[Any], seconds: int = CASE_SECONDS) -> tuple[int, str, str]:
    """``cli(capsys, args)`` under the alarm; an exception or a hang fails the case with its last frames."""
    args = [str(a) for a in args]
    command = "glassnet " + " ".join(args)

    def expire(signum, frame):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return cli(capsys, args)
    except CaseTimeout:
        pytest.fail(f"{name}: `{command}` gave no answer within {seconds} s", pytrace=False)
    except (Exception, SystemExit) as exc:  # a traceback for the user of the command line
        frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)[-4:]))
        _, err = capsys.readouterr()
        pytest.fail(
            f"{name}: `{command}` raised {type(exc).__name__}: {str(exc)[:400]}\n{frames}stderr: {err[-600:]}",
            pytrace=False,
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(
    capsys,
    name: str,
    args: list[Any],
    root: Path,
    expect: frozenset[int],
    output: Iterable[str] = (),
    seconds: int = CASE_SECONDS,
) -> None:
    """Run ``args``: exit in ``expect``, one error line on exit 2, no traceback, and no file under ``root``
    changed except, on success, those under the ``output`` paths (relative to ``root``)."""
    before = state(root)
    code, out, err = run_cli(capsys, name, args, seconds)
    shown = f"{name}: `glassnet {' '.join(map(str, args))}`\nexit {code}\nstdout: {out[-600:]}\nstderr: {err[-1500:]}"
    assert "Traceback" not in out + err, shown
    assert code in expect, shown
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith(PREFIX) and err.count(PREFIX) == 1, shown
        assert all(line.startswith("glassnet") for line in lines), shown
    after = state(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if code == 0:  # a success may write its own output, and only that
        changed = [k for k in changed if not any(k == o or k.startswith(o + "/") for o in output)]
    assert not changed, f"{shown}\nchanged, created or removed: {changed[:10]}"


# --- mutations of valid bytes ----------------------------------------------------------------------


def truncate(data: bytes, seed: int) -> bytes:
    return data[: random.Random(seed).randrange(1, len(data))]


def flip(data: bytes, seed: int, count: int = 8) -> bytes:
    rng, out = random.Random(seed), bytearray(data)
    for _ in range(count):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert(data: bytes, seed: int, count: int = 8) -> bytes:
    rng, out = random.Random(seed), bytearray(data)
    for _ in range(count):
        out[rng.randrange(len(out)) : 0] = bytes([rng.randrange(256)])
    return bytes(out)


def garbage(seed: int, size: int = 2048) -> bytes:
    return random.Random(seed).randbytes(size)


# --- CSV files: `glassnet train --data FILE.csv` -----------------------------------------------------

HEADER = "x1,x2,colour,count,label"


def csv_rows(n: int = 40) -> list[list[str]]:
    """A small valid table: two numbers, a category, an integer count and a 0/1 label (both classes)."""
    rng = random.Random(0)
    return [
        [
            f"{rng.gauss(0, 1):.3f}",
            f"{rng.uniform(0, 10):.2f}",
            rng.choice(["red", "green", "blue"]),
            str(rng.randint(0, 9)),
            str(i % 2),
        ]
        for i in range(n)
    ]


def csv_text(rows: list[list[str]], header: str = HEADER, sep: str = ",", end: str = "\n") -> str:
    return end.join([header.replace(",", sep), *(sep.join(r) for r in rows)]) + end


VALID_CSV = csv_text(csv_rows()).encode()


def replaced(column: int, values: dict[int, str]) -> bytes:
    """The valid CSV with the cells of ``column`` in rows ``values`` (0-based data rows) replaced."""
    rows = csv_rows()
    for i, value in values.items():
        rows[i][column] = value
    return csv_text(rows).encode()


def regression_text_target() -> bytes:
    rows = [[r[0], r[1], r[2], r[3], f"{float(r[1]) * 3:.2f}"] for r in csv_rows()]
    rows[5][4], rows[17][4] = "high", "low"
    return csv_text(rows, header="x1,x2,colour,count,y").encode()


def timeseries(mutate: Callable[[list[list[str]]], None]) -> bytes:
    rows = [[f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00", f"{10 + (i % 7) * 0.5:.1f}"] for i in range(60)]
    mutate(rows)
    return csv_text(rows, header="time,value").encode()


def set_cell(rows: list[list[str]], i: int, j: int, value: str) -> None:
    rows[i][j] = value


def gz_truncated() -> bytes:
    return gzip.compress(VALID_CSV)[:120]


@dataclasses.dataclass(frozen=True)
class DataCase:
    """A malformed data file: its bytes, its name, extra command-line arguments and the allowed exits."""

    make: Callable[[], bytes]
    expect: frozenset[int] = REFUSED
    name: str = "data.csv"
    extra: tuple[str, ...] = ()


CSV_CASES = {
    "empty": DataCase(lambda: b""),
    "header-only": DataCase(lambda: (HEADER + "\n").encode()),
    "header-and-blank-lines": DataCase(lambda: (HEADER + "\n\n\n\n").encode()),
    "ragged-long-row": DataCase(lambda: replaced(4, {7: "1,9"})),
    "ragged-short-row": DataCase(lambda: csv_text([r if i != 7 else r[:3] for i, r in enumerate(csv_rows())]).encode()),
    "every-row-one-field-more": DataCase(lambda: csv_text([[*r, "7"] for r in csv_rows()]).encode()),
    "every-row-one-field-less": DataCase(lambda: csv_text([r[:4] for r in csv_rows()]).encode()),
    "semicolon-delimiter": DataCase(lambda: csv_text(csv_rows(), sep=";").encode(), EITHER),
    "half-rows-semicolon": DataCase(
        lambda: "\n".join([HEADER, *(";".join(r) if i % 2 else ",".join(r) for i, r in enumerate(csv_rows()))]).encode()
    ),
    "nan-features": DataCase(lambda: replaced(0, {3: "NaN", 9: "nan", 11: ""}), EITHER),
    "inf-feature": DataCase(lambda: replaced(0, {3: "inf"})),
    "minus-inf-feature": DataCase(lambda: replaced(1, {20: "-Infinity"})),
    "huge-1e308-features": DataCase(lambda: replaced(0, {i: "1.7e308" for i in range(0, 40, 2)}), EITHER),
    "overflow-1e400": DataCase(lambda: replaced(1, {4: "1e400"}), EITHER),
    "400-digit-integer": DataCase(lambda: replaced(3, {6: "9" * 400}), EITHER),
    "nan-label": DataCase(lambda: replaced(4, {5: "NaN"})),
    "empty-label": DataCase(lambda: replaced(4, {5: ""})),
    "bom-and-latin1": DataCase(
        lambda: b"\xef\xbb\xbf" + replaced(2, {2: "caf\xe9"}).replace(b"caf\xc3\xa9", b"caf\xe9"), EITHER
    ),
    "nul-bytes": DataCase(lambda: replaced(2, {8: "re\x00d"}), EITHER),
    "text-target-in-regression": DataCase(regression_text_target, extra=("data.task=regress",)),
    "one-class-only": DataCase(lambda: csv_text([[*r[:4], "1"] for r in csv_rows()]).encode()),
    "two-rows": DataCase(lambda: csv_text(csv_rows(2)).encode()),
    "missing-target-column": DataCase(lambda: VALID_CSV, extra=("data.target=outcome",)),
    "target-only": DataCase(lambda: csv_text([[r[4]] for r in csv_rows()], header="label").encode()),
    "duplicate-header-names": DataCase(lambda: csv_text(csv_rows(), header="x,x,colour,count,label").encode(), EITHER),
    "gz-name-plain-bytes": DataCase(lambda: VALID_CSV, name="data.csv.gz"),
    "gz-truncated": DataCase(gz_truncated, name="data.csv.gz"),
    "unbalanced-quote": DataCase(lambda: replaced(2, {10: '"red'}), EITHER),
    "cr-line-endings": DataCase(lambda: csv_text(csv_rows(), end="\r").encode(), EITHER),
    "random-bytes": DataCase(lambda: garbage(1), EITHER),
    "csv-forced-as-images": DataCase(lambda: VALID_CSV, extra=("data.format=images",)),
    "csv-forced-as-audio": DataCase(lambda: VALID_CSV, extra=("data.format=audio",)),
    **{f"truncate-s{s}": DataCase(lambda s=s: truncate(VALID_CSV, s), EITHER) for s in range(2)},
    **{f"flip-s{s}": DataCase(lambda s=s: flip(VALID_CSV, s), EITHER) for s in range(2)},
    "insert-s0": DataCase(lambda: insert(VALID_CSV, 0), EITHER),
    "timeseries-duplicate-time": DataCase(lambda: timeseries(lambda r: set_cell(r, 30, 0, r[29][0]))),
    "timeseries-unparseable-time": DataCase(lambda: timeseries(lambda r: set_cell(r, 30, 0, "yesterday"))),
    "timeseries-inf-value": DataCase(lambda: timeseries(lambda r: set_cell(r, 12, 1, "inf"))),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_a_malformed_csv(case, tmp_path, capsys):
    spec = CSV_CASES[case]
    data = tmp_path / "in" / spec.name
    data.parent.mkdir()
    data.write_bytes(spec.make())
    changed = data.read_bytes() != VALID_CSV or spec.extra or spec.name != "data.csv"
    assert changed, f"{case}: the mutation kept the valid CSV"
    args = ["train", "--data", data, *MLP, *TRAIN, "--out", tmp_path / "out", *spec.extra]
    check(capsys, f"csv/{case}", args, tmp_path, spec.expect, output=["out"])


# --- image folders: `glassnet train --data DIR` and `glassnet predict RUN IMAGE` ---------------------------


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(width: int, height: int, seed: int = 0, body: bytes | None = None) -> bytes:
    """An 8-bit RGB PNG built with zlib and struct; ``body`` replaces the pixel data (e.g. a tiny one
    under a header that declares a huge image: nothing of that size is ever allocated here)."""
    if body is None:
        rng = random.Random(seed)
        body = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(body))
        + png_chunk(b"IEND", b"")
    )


def pil_image(mode: str, size: tuple[int, int], fmt: str, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


VALID_PNG = png(8, 8, seed=99)
VALID_JPEG = pil_image("RGB", (8, 8), "JPEG", seed=98)


def image_folder(root: Path, classes: Iterable[str] = ("cat", "dog"), per_class: int = 6) -> None:
    """A valid folder: one sub-folder of 8x8 RGB images per class (PNGs and one JPEG each)."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            data = VALID_JPEG if i == 0 else png(8, 8, seed=100 * c + i)
            (root / name / f"{i}.{'jpg' if i == 0 else 'png'}").write_bytes(data)


HUGE_PNG = png(50_000, 50_000, body=b"\x00" * 64)


def mixed_folder(root: Path) -> None:
    image_folder(root)
    shapes = [
        ("L", (8, 8), "PNG"),
        ("RGBA", (12, 6), "PNG"),
        ("P", (5, 5), "PNG"),
        ("LA", (8, 8), "PNG"),
        ("CMYK", (8, 8), "JPEG"),
        ("I;16", (8, 8), "PNG"),
    ]
    for i, (mode, size, fmt) in enumerate(shapes):
        (root / ("cat", "dog")[i % 2] / f"m{i}.{fmt.lower()}").write_bytes(pil_image(mode, size, fmt, seed=i))


def put(relative: str, data: bytes) -> Callable[[Path], None]:
    """A folder builder: the valid folder with ``relative`` written (or replaced) with ``data``."""

    def build(root: Path) -> None:
        image_folder(root)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)

    return build


IMAGE_FOLDER_CASES: dict[str, tuple[Callable[[Path], None], frozenset[int]]] = {
    "truncated-png": (put("cat/1.png", VALID_PNG[:60]), REFUSED),
    "truncated-jpeg": (put("dog/0.jpg", VALID_JPEG[: len(VALID_JPEG) // 2]), REFUSED),
    "wrong-magic": (put("cat/2.png", b"\x89PNX" + VALID_PNG[4:]), REFUSED),
    "zero-size-file": (put("dog/3.png", b""), REFUSED),
    "one-by-one-image": (put("cat/4.png", png(1, 1)), EITHER),
    "ihdr-50000x50000-tiny-body": (put("dog/4.png", HUGE_PNG), REFUSED),
    "ihdr-9000x9000-tiny-body": (put("cat/5.png", png(9000, 9000, body=b"\x00" * 64)), REFUSED),
    "ihdr-zero-width": (put("dog/5.png", png(0, 8, body=b"\x00" * 8)), REFUSED),
    "mixed-sizes-and-modes": (mixed_folder, EITHER),
    "text-named-png": (put("cat/notes.png", b"these are my notes, not a picture\n"), REFUSED),
    "stray-text-file": (put("cat/README.txt", b"hello\n"), EITHER),
    "one-class-only": (lambda root: image_folder(root, classes=("cat",)), EITHER),
    "empty-class-folder": (lambda root: (image_folder(root), (root / "bird").mkdir()), EITHER),
    "empty-folder": (lambda root: root.mkdir(parents=True), REFUSED),
    "png-flip-s0": (put("dog/2.png", flip(VALID_PNG, 0)), EITHER),
    "png-truncate-s0": (put("dog/2.png", truncate(VALID_PNG, 0)), EITHER),
}


@pytest.mark.parametrize("case", IMAGE_FOLDER_CASES)
def test_a_malformed_image_folder(case, tmp_path, capsys):
    build, expect = IMAGE_FOLDER_CASES[case]
    build(tmp_path / "in" / "photos")
    args = ["train", "--data", tmp_path / "in" / "photos", *CNN, *TRAIN, "--out", tmp_path / "out"]
    check(capsys, f"images/{case}", args, tmp_path, expect, output=["out"])


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


PREDICT_IMAGE_CASES: dict[str, tuple[str, Callable[[], bytes], frozenset[int]]] = {
    "truncated-png": ("x.png", lambda: VALID_PNG[:60], REFUSED),
    "wrong-magic": ("x.png", lambda: b"GIF89a" + VALID_PNG[6:], REFUSED),
    "zero-size": ("x.png", lambda: b"", REFUSED),
    "text-named-png": ("x.png", lambda: b"not an image\n", REFUSED),
    "ihdr-50000x50000-tiny-body": ("x.png", lambda: HUGE_PNG, REFUSED),
    "one-by-one": ("x.png", lambda: png(1, 1), EITHER),
    "grey-jpeg": ("x.jpg", lambda: pil_image("L", (8, 8), "JPEG"), EITHER),
    "npy-object-array": ("x.npy", lambda: npy_bytes(np.array([{"a": 1}], dtype=object)), REFUSED),
    "npy-wrong-shape": ("x.npy", lambda: npy_bytes(np.zeros((2, 5, 7), dtype=np.float32)), REFUSED),
}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A cnn trained one epoch on a valid 8x8 image folder."""
    root = tmp_path_factory.mktemp("fuzz-images")
    image_folder(root / "photos")
    assert cli_quiet(["train", "--data", root / "photos", *CNN, *TRAIN, "--out", root / "run"]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """An mlp trained one epoch on the valid CSV (columns x1, x2, colour, count; target label)."""
    root = tmp_path_factory.mktemp("fuzz-csv")
    (root / "data.csv").write_bytes(VALID_CSV)
    assert cli_quiet(["train", "--data", root / "data.csv", *MLP, *TRAIN, "--out", root / "run"]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """A cnn trained one epoch on a valid folder of 0.1 s WAVs at 8 kHz."""
    root = tmp_path_factory.mktemp("fuzz-audio")
    wav_folder(root / "sounds")
    assert cli_quiet(["train", "--data", root / "sounds", *CNN, *AUDIO, *TRAIN, "--out", root / "run"]) == 0
    return root / "run"


def cli_quiet(args: list[Any]) -> int:
    from glassnet.cli import main

    return main([str(a) for a in args])


def predict_case(capsys, name, run: Path, tmp_path: Path, filename: str, data: bytes, expect) -> None:
    run = Path(shutil.copytree(run, tmp_path / "run"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / filename).write_bytes(data)
    check(capsys, name, ["predict", run, tmp_path / "in" / filename], tmp_path, expect)


PREDICT_ROWS = csv_text(csv_rows(5)).encode()

PREDICT_CSV_CASES: dict[str, tuple[Callable[[], bytes], frozenset[int]]] = {
    "empty": (lambda: b"", REFUSED),
    "header-only": (lambda: (HEADER + "\n").encode(), REFUSED),
    "missing-column": (
        lambda: csv_text([r[1:] for r in csv_rows(5)], header="x2,colour,count,label").encode(),
        REFUSED,
    ),
    "text-in-numeric-column": (lambda: csv_text([["abc", *r[1:]] for r in csv_rows(5)]).encode(), REFUSED),
    "inf-feature": (lambda: csv_text([["inf", *r[1:]] for r in csv_rows(5)]).encode(), REFUSED),
    "huge-1e308-feature": (lambda: csv_text([["1.7e308", *r[1:]] for r in csv_rows(5)]).encode(), EITHER),
    "ragged-row": (lambda: PREDICT_ROWS + b"1.0,2.0\n", REFUSED),
    "unseen-category": (lambda: PREDICT_ROWS.replace(b"red", b"purple"), EITHER),
    "bom-and-latin1": (lambda: b"\xef\xbb\xbf" + PREDICT_ROWS.replace(b"green", b"gr\xfcn"), EITHER),
    "random-bytes": (lambda: garbage(3, 600), REFUSED),
}


@pytest.mark.parametrize("case", PREDICT_CSV_CASES)
def test_predict_on_a_malformed_csv(case, csv_run, tmp_path, capsys):
    make, expect = PREDICT_CSV_CASES[case]
    predict_case(capsys, f"predict-csv/{case}", csv_run, tmp_path, "rows.csv", make(), expect)


@pytest.mark.parametrize("case", PREDICT_IMAGE_CASES)
def test_predict_on_a_malformed_image(case, image_run, tmp_path, capsys):
    filename, make, expect = PREDICT_IMAGE_CASES[case]
    predict_case(capsys, f"predict-image/{case}", image_run, tmp_path, filename, make(), expect)


# --- WAV folders: `glassnet train --data DIR` and `glassnet predict RUN CLIP.wav` ---------------------------


def tone(seed: int, frames: int = 800) -> bytes:
    rng = random.Random(seed)
    f0 = rng.choice([200, 300, 1000, 1500])
    t = np.arange(frames) / 8000
    return (
        (np.sin(2 * np.pi * f0 * t) * 8000 + np.array([rng.gauss(0, 50) for _ in range(frames)]))
        .astype("<i2")
        .tobytes()
    )


def wav(
    samples: bytes,
    rate: int = 8000,
    channels: int = 1,
    bits: int = 16,
    fmt_tag: int = 1,
    data_size: int | None = None,
    block_align: int | None = None,
) -> bytes:
    """A WAV file built with struct, every header field settable (a damaged header is one wrong field)."""
    align = channels * bits // 8 if block_align is None else block_align
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    size = len(samples) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


VALID_WAV = wav(tone(7))


def wav_folder(root: Path, per_class: int = 6) -> None:
    for c, name in enumerate(("low", "high")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.wav").write_bytes(wav(tone(10 * c + i)))


def stereo() -> bytes:
    mono = np.frombuffer(tone(3), dtype="<i2")
    return wav(np.repeat(mono, 2).tobytes(), channels=2)


def float_nan() -> bytes:
    samples = np.zeros(800, dtype="<f4")
    samples[100:110] = np.nan
    return wav(samples.tobytes(), bits=32, fmt_tag=3)


WAV_CASES: dict[str, tuple[Callable[[], bytes], frozenset[int]]] = {
    "header-truncated": (lambda: VALID_WAV[:20], REFUSED),
    "data-truncated": (lambda: VALID_WAV[:600], EITHER),
    "bits-per-sample-zero": (lambda: wav(tone(1), bits=0, block_align=2), REFUSED),
    "block-align-3-for-16-bits": (lambda: wav(tone(1), block_align=3), REFUSED),
    "bits-24-in-a-2-byte-container": (lambda: wav(tone(1), bits=24, block_align=2), REFUSED),
    "a-law-format": (lambda: wav(tone(1), fmt_tag=6, bits=8), REFUSED),
    "sample-width-8-bits": (
        lambda: wav(bytes(random.Random(2).randrange(100, 156) for _ in range(800)), bits=8),
        EITHER,
    ),
    "zero-frames": (lambda: wav(b""), REFUSED),
    "huge-declared-length": (
        lambda: wav(tone(1), data_size=0xFFFFFFF0),
        REFUSED,
    ),  # more than the file holds: truncated
    "non-wav-bytes": (lambda: garbage(5, 1600), REFUSED),
    "text-named-wav": (lambda: b"RIFF? no, just text\n" * 10, REFUSED),
    "stereo": (stereo, EITHER),
    "rate-11025": (lambda: wav(tone(1), rate=11025), EITHER),
    "rate-zero": (lambda: wav(tone(1), rate=0), REFUSED),
    "rate-4e9": (lambda: wav(tone(1), rate=4_000_000_000), REFUSED),
    "channels-zero": (lambda: wav(tone(1), channels=0, block_align=2), REFUSED),
    "float-nan-samples": (float_nan, REFUSED),
    "empty-file": (lambda: b"", REFUSED),
    "flip-s0": (lambda: flip(VALID_WAV, 0), EITHER),
    "truncate-s0": (lambda: truncate(VALID_WAV, 0), EITHER),
}


@pytest.mark.parametrize("case", WAV_CASES)
def test_a_malformed_wav_folder(case, tmp_path, capsys):
    make, expect = WAV_CASES[case]
    root = tmp_path / "in" / "sounds"
    wav_folder(root)
    (root / "low" / "2.wav").write_bytes(make())
    args = ["train", "--data", root, *CNN, *AUDIO, *TRAIN, "--out", tmp_path / "out"]
    check(capsys, f"wav/{case}", args, tmp_path, expect, output=["out"])


PREDICT_WAV_CASES = [
    "header-truncated",
    "non-wav-bytes",
    "zero-frames",
    "huge-declared-length",
    "float-nan-samples",
]


@pytest.mark.parametrize("case", PREDICT_WAV_CASES)
def test_predict_on_a_malformed_wav(case, audio_run, tmp_path, capsys):
    make, expect = WAV_CASES[case]
    predict_case(capsys, f"predict-wav/{case}", audio_run, tmp_path, "clip.wav", make(), expect)


def test_an_empty_wav_folder_is_refused(tmp_path, capsys):
    root = tmp_path / "in" / "sounds"
    (root / "low").mkdir(parents=True)
    (root / "high").mkdir()
    args = ["train", "--data", root, "data.format=audio", *CNN, *AUDIO, *TRAIN, "--out", tmp_path / "out"]
    check(capsys, "wav/empty-class-folders", args, tmp_path, REFUSED)


# --- YAML configurations: `glassnet train --config FILE` --------------------------------------------------


def base_config(data: Path) -> str:
    return f"data: '{data}'\nmodel: mlp\nepochs: 1\nmodel_args: {{width: 8}}\nbaseline: false\n"


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def nested_mapping(levels: int) -> str:
    return "data_args: " + "{a: " * levels + "1" + "}" * levels + "\n"


def under_the_size_cap() -> str:
    return "data_args:\n  x: [" + ", ".join(["0"] * 300_000) + "]\n"  # ~900 KB, under the 1 MB cap


# each: (text after the base keys, or a whole file when whole=True), allowed exits, whole file?
YAML_CASES: dict[str, tuple[Callable[[], str | bytes], frozenset[int], bool]] = {
    "top-level-list": (lambda: "- data: digits\n- model: mlp\n", REFUSED, True),
    "top-level-scalar": (lambda: "just a string\n", REFUSED, True),
    "top-level-null": (lambda: "~\n", EITHER, True),
    "tab-indentation": (lambda: "model_args:\n\twidth: 8\n", REFUSED, False),
    "billion-laughs-top-level": (billion_laughs, REFUSED, False),
    "self-reference": (lambda: "step: &s {inner: *s}\n", REFUSED, False),
    "python-object-tag": (lambda: "seed: !!python/object/apply:os.getpid []\n", REFUSED, False),
    "python-name-tag": (lambda: "optimizer: !!python/name:os.system\n", REFUSED, False),
    "binary-tag": (lambda: "data: !!binary aGVsbG8=\n", REFUSED, False),
    "timestamp-seed": (lambda: "seed: 2001-12-14\n", REFUSED, False),
    "nested-1000-mappings": (lambda: nested_mapping(1000), REFUSED, False),
    "nested-1000-flow-lists": (lambda: "augment: {x: " + "[" * 1000 + "]" * 1000 + "}\n", REFUSED, False),
    "nested-1000-block-mappings": (
        lambda: "data_args:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(1000)) + " " * 1001 + "v\n",
        REFUSED,
        False,
    ),
    "huge-file-2mb": (lambda: "# " + "x" * 2_000_000 + "\n", REFUSED, False),
    "invalid-utf8": (lambda: b"model_args: {width: 8}\nmonitor: '\xff\xfe'\n", REFUSED, False),
    "unknown-key": (lambda: "epocs: 3\n", REFUSED, False),
    "unknown-model-arg": (lambda: "model_args: {widht: 8}\n", REFUSED, False),
    "nan-lr": (lambda: "lr: .nan\n", REFUSED, False),
    "duplicate-keys": (lambda: "epochs: 1\nepochs: 1\n", EITHER, False),
    "two-documents": (lambda: "---\nepochs: 1\n", EITHER, False),
    "unhashable-key": (lambda: "? [a, b]\n: 1\n", REFUSED, False),
    "val-fraction-2": (lambda: "data_args: {val_fraction: 2}\n", REFUSED, False),
    "augment-hflip-a-string": (lambda: "augment: {hflip: always}\n", REFUSED, False),
    "step-name-a-number": (lambda: "step: {name: 5}\n", REFUSED, False),
}


def config_file(tmp_path: Path, content: str | bytes, whole: bool) -> Path:
    data = tmp_path / "in" / "data.csv"
    data.parent.mkdir(exist_ok=True)
    data.write_bytes(VALID_CSV)
    text = content if isinstance(content, bytes) else content.encode()
    path = tmp_path / "in" / "config.yaml"
    path.write_bytes(text if whole else base_config(data).encode() + text)
    return path


@pytest.mark.slow  # PyYAML parses ~900 KB in pure Python: 10 s on two shared cores before the value count refuses it
def test_a_config_just_under_the_size_cap(tmp_path, capsys):
    config = config_file(tmp_path, under_the_size_cap(), whole=False)
    args = ["train", "--config", config, "--quiet", "--out", tmp_path / "out"]
    check(capsys, "yaml/just-under-the-size-cap", args, tmp_path, REFUSED, seconds=SIZE_CAP_SECONDS)


@pytest.mark.parametrize("case", YAML_CASES)
def test_a_malformed_config(case, tmp_path, capsys):
    make, expect, whole = YAML_CASES[case]
    config = config_file(tmp_path, make(), whole)
    flags = ["--data", tmp_path / "in" / "data.csv", *MLP, "--epochs", "1"] if whole else []
    args = ["train", "--config", config, *flags, "--quiet", "--out", tmp_path / "out"]
    check(capsys, f"yaml/{case}", args, tmp_path, expect, output=["out"])


def wrong_values(field: dataclasses.Field) -> list[Any]:
    """Two values of the wrong type for a RunConfig key: a structure and a scalar."""
    kind = str(field.type)
    if kind.startswith("dict"):
        return [[1, 2], "fast"]
    scalar = 12345 if kind == "str" else "fast"
    return [{"nested": [1]}, scalar]


def test_a_wrong_type_for_every_top_level_key(tmp_path, capsys):
    """One case per key and value (named in the failure); each a config refusal of milliseconds."""
    from glassnet.config import RunConfig

    failures = []
    for field in dataclasses.fields(RunConfig):
        for k, value in enumerate(wrong_values(field)):
            case = tmp_path / f"{field.name}-{k}"
            case.mkdir()
            line = json.dumps({field.name: value})[1:-1]  # JSON is YAML: `"key": value`
            config = config_file(case, line + "\n", whole=False)
            try:
                check(
                    capsys,
                    f"yaml/wrong-type/{field.name}={value!r}",
                    ["train", "--config", config, "--quiet", "--out", case / "out"],
                    case,
                    REFUSED,
                )
            except (AssertionError, pytest.fail.Exception) as exc:
                failures.append(str(exc).split("\nassert")[0])
    assert not failures, f"{len(failures)} keys:\n\n" + "\n\n".join(failures)


def test_a_missing_or_directory_config_is_refused(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for name, path in (("missing", tmp_path / "in" / "nope.yaml"), ("directory", tmp_path / "in")):
        check(
            capsys, f"yaml/{name}", ["train", "--config", path, "--quiet", "--out", tmp_path / "out"], tmp_path, REFUSED
        )


# --- model.json of a trained run: `glassnet predict RUN x.npy` -----------------------------------------------


DELETE = object()


def edit(path: str, value: Any) -> Callable[[dict], Any]:
    """A mutation of a JSON record: set the dotted ``path`` (list items by index) to ``value``
    (``DELETE`` removes the key)."""

    def mutate(record: dict) -> dict:
        *parents, last = path.split(".")
        node = record
        for key in parents:
            node = node[int(key) if key.isdigit() else key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return record

    return mutate


def as_bytes(mutate: Callable[[dict], Any]) -> Callable[[bytes], bytes]:
    return lambda original: json.dumps(mutate(json.loads(original)), indent=2).encode()


def whole(content: bytes) -> Callable[[bytes], bytes]:
    return lambda original: content


def deep_json(levels: int = 100_000) -> bytes:
    return b"[" * levels + b"]" * levels


MODEL_JSON_CASES: dict[str, tuple[Callable[[bytes], bytes], frozenset[int]]] = {
    **{f"truncate-s{s}": (lambda b, s=s: truncate(b, s), REFUSED) for s in range(2)},
    "flip-s0": (lambda b: flip(b, 0), EITHER),
    "empty": (whole(b""), REFUSED),
    "a-list": (whole(b"[1, 2, 3]"), REFUSED),
    "null": (whole(b"null"), REFUSED),
    "deep-nesting": (whole(deep_json()), REFUSED),
    "invalid-utf8": (lambda b: b.replace(b'"mlp"', b'"ml\xff"'), REFUSED),
    **{f"no-{key}": (as_bytes(edit(key, DELETE)), REFUSED) for key in ("format", "name", "hparams", "spec")},
    "registered-wrong-model-cnn": (as_bytes(edit("name", "cnn")), REFUSED),
    "registered-wrong-model-lstm": (as_bytes(edit("name", "lstm")), REFUSED),
    "unknown-model": (as_bytes(edit("name", "nonesuch")), REFUSED),
    "hparams-a-string": (as_bytes(edit("hparams", "width=16")), REFUSED),
    "width-a-string": (as_bytes(edit("hparams.width", "16")), REFUSED),
    "width-negative": (as_bytes(edit("hparams.width", -16)), REFUSED),
    "width-1e12": (as_bytes(edit("hparams.width", 10**12)), REFUSED),
    "depth-1e9": (as_bytes(edit("hparams.depth", 10**9)), REFUSED),
    "input-shape-negative": (as_bytes(edit("spec.input_shape", [-30])), REFUSED),
    "input-shape-1e12": (as_bytes(edit("spec.input_shape", [10**12])), REFUSED),
    "input-shape-a-string": (as_bytes(edit("spec.input_shape", "30")), REFUSED),
    "num-outputs-1e12": (as_bytes(edit("spec.num_outputs", 10**12)), REFUSED),
    "unknown-modality": (as_bytes(edit("spec.modality", "smell")), REFUSED),
    "unknown-task": (as_bytes(edit("spec.task", "dance")), REFUSED),
    "input-mean-wrong-length": (as_bytes(edit("spec.input_mean", [0.0, 1.0])), REFUSED),
    "input-mean-nan": (
        lambda b: json.dumps(edit("spec.input_mean", [float("nan")] * 30)(json.loads(b))).encode(),
        EITHER,
    ),
    "class-names-a-number": (as_bytes(edit("spec.class_names", 5)), REFUSED),
}


@pytest.mark.parametrize("case", MODEL_JSON_CASES)
def test_a_damaged_model_json(case, run_copy, tmp_path, capsys):
    mutate, expect = MODEL_JSON_CASES[case]
    model_json = run_copy / "model.json"
    original = model_json.read_bytes()
    model_json.write_bytes(mutate(original))
    assert model_json.read_bytes() != original, f"{case}: the mutation left model.json as it was"
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 30)).astype(np.float32))
    check(capsys, f"model.json/{case}", ["predict", run_copy, tmp_path / "x.npy"], tmp_path, expect)


# --- results/*.json of a trained run: `glassnet report RUN` --------------------------------------------------


def nulls(value: Any) -> Any:
    """``value`` with every leaf replaced by null."""
    if isinstance(value, dict):
        return {k: nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nulls(v) for v in value]
    return None


RESULTS_CASES: dict[str, tuple[str, Callable[[bytes], bytes], frozenset[int]]] = {
    "train-a-list": ("train", whole(b"[]"), REFUSED),
    "train-a-string": ("train", whole(b'"accuracy: 0.9"'), REFUSED),
    "train-null": ("train", whole(b"null"), REFUSED),
    "train-empty-file": ("train", whole(b""), REFUSED),
    "train-empty-mapping": ("train", whole(b"{}"), EITHER),
    "train-wrong-value-types": ("train", as_bytes(lambda r: {k: [1, "x"] for k in r}), REFUSED),
    "train-test-a-string": ("train", as_bytes(edit("test", "good")), REFUSED),
    "train-accuracy-a-string": ("train", as_bytes(edit("test.accuracy", "high")), REFUSED),
    "train-confidence-a-string": ("train", as_bytes(edit("test.examples.0.confidence", "high")), REFUSED),
    "train-test-size-a-string": ("train", as_bytes(edit("data.splits.test.size", "many")), REFUSED),
    "train-examples-wrong-types": ("train", as_bytes(edit("test.examples", [1, "two", None])), REFUSED),
    "train-nested-nulls": ("train", as_bytes(nulls), EITHER),
    "train-nan-literals": ("train", lambda b: b.replace(b'"accuracy": 0.', b'"accuracy": NaN, "x": 0.'), EITHER),
    "train-1e999": ("train", lambda b: b.replace(b'"macro_f1": ', b'"macro_f1": 1e999, "z": '), EITHER),
    "train-invalid-utf8": ("train", lambda b: b.replace(b'"classify"', b'"class\xffify"'), REFUSED),
    "train-deep-nesting": ("train", whole(b'{"task": "classify", "test": ' + deep_json() + b"}"), REFUSED),
    "train-truncate-s0": ("train", lambda b: truncate(b, 0), REFUSED),
    "train-flip-s0": ("train", lambda b: flip(b, 0), EITHER),
    "evaluate-a-list": ("evaluate", whole(b"[1, 2]"), REFUSED),
    "robustness-wrong-types": ("robustness", whole(b'{"attacks": "pgd", "curve": 5, "warnings": 3}'), REFUSED),
    "explain-a-number": ("explain", whole(b"5"), REFUSED),
    "compress-nested-nulls": ("compress", whole(b'{"variants": [null, {"size": null}], "baseline": null}'), REFUSED),
    "unknown-stage-file": ("notes", whole(b'{"anything": [1, 2]}'), EITHER),
}


@pytest.mark.parametrize("case", RESULTS_CASES)
def test_a_damaged_results_file(case, run_copy, tmp_path, capsys):
    stage, mutate, expect = RESULTS_CASES[case]
    path = run_copy / "results" / f"{stage}.json"
    original = path.read_bytes() if path.is_file() else (run_copy / "results" / "train.json").read_bytes()
    path.write_bytes(mutate(original))
    assert path.read_bytes() != original, f"{case}: the mutation left {path.name} as it was"
    check(capsys, f"results/{case}", ["report", run_copy], tmp_path, expect, output=["run/report.html"])
