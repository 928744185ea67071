"""What ``compress`` says while it works and after: progress bars on stderr (unless quiet), every file it wrote."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from glassnet.cli import main
from glassnet.compress import compress


def test_cli_compress_shows_bars_and_lists_every_file_it_wrote(cancer_run, tmp_path, capsys):
    run = shutil.copytree(cancer_run, tmp_path / "bc")
    args = ["compress", str(run), "--prune", "0.5", "--prune-method", "global", "--fine-tune", "1"]
    assert main([*args, "--quantize", "torch-dynamic", "--export", "onnx", "--repeats", "5"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert any(line.startswith("compress: 100%") and "3/3 variants" in line for line in err)
    # 3 variants + the original: 4 metric passes, 5 latency rounds, 5 throughput rounds
    assert any(line.startswith("measure 4 variants: 100%") and "14/14 steps" in line for line in err)
    assert "\r" not in captured.err  # not a terminal: whole lines
    written = _written(captured.out)
    saved = json.loads((run / "results" / "compress.json").read_text())
    expected = [
        run / "results" / "compress.json",
        run / "compressed" / "pruned-global.safetensors",
        run / "compressed" / "model.onnx",
    ]
    assert written[: len(expected)] == expected
    assert any(p.parent == run / "figures" and p.stem == "compress_tradeoff" for p in written)
    assert all(p.is_file() for p in written)
    assert {v["file"] for v in saved["variants"] if v["file"] and v["name"] != "fp32"} <= {
        p.relative_to(run).as_posix() for p in written
    }


def test_cli_compress_quiet_draws_no_bar(cancer_run, tmp_path, capsys):
    run = shutil.copytree(cancer_run, tmp_path / "bc")
    assert main(["compress", str(run), "--quantize", "torch-dynamic", "--repeats", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert _written(captured.out)[0] == run / "results" / "compress.json"


def test_compress_draws_bars_only_when_asked(cancer_mlp, cancer, capsys):
    stream = io.StringIO()
    compress(cancer_mlp, cancer, quantize="torch-dynamic", repeats=3, progress=stream)
    text = stream.getvalue()
    assert "compress: 100%" in text and "1/1 variants" in text and "measure 2 variants: 100%" in text
    compress(cancer_mlp, cancer, quantize="torch-dynamic", repeats=3)
    assert capsys.readouterr().err == ""


def _written(out: str) -> list[Path]:
    """The paths of the ``written:`` block: its first line and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("written:"))
    paths = [lines[start].removeprefix("written:").strip()]
    paths += [line.strip() for line in lines[start + 1 :] if line.startswith(" " * 10) and line.strip()]
    return [Path(p) for p in paths]
