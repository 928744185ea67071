"""What ``explain`` says while it works and after: progress bars on stderr (unless quiet), every file it wrote."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

from glassnet.cli import main
from glassnet.explain import explain


def test_explain_draws_a_bar_over_the_examples_only_when_asked(tiny_cnn, capsys):
    model, x = tiny_cnn
    stream = io.StringIO()
    explain(model, x, "integrated_gradients", n_steps=8, progress=stream)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("explain (Integrated gradients): 100%")
    # examples whose attributions did not add up were explained again with more steps: the total grew
    done, total = last.split("] ")[1].split(" examples")[0].split("/")
    assert done == total and int(total) >= len(x)
    explain(model, x, "saliency")  # the Python API is silent by default
    assert capsys.readouterr().err == ""


def test_cli_explain_shows_bars_and_lists_every_file_it_wrote(cancer_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cancer_run, run)
    assert main(["explain", str(run), "--method", "ig", "--n", "8", "--steps", "16"]) == 0
    captured = capsys.readouterr()
    # 8 examples, and those whose attributions did not add up again with more steps
    assert re.search(r"^explain \(Integrated gradients\): 100% .* (\d+)/\1 examples", captured.err, re.M)
    assert "explain checks: 100%" in captured.err and "5/5 steps" in captured.err
    written = _written(captured.out)
    assert written[0] == run / "results" / "explain.json"
    figures = json.loads(written[0].read_text())["figures"]
    assert figures and all(any(p.parent == run / "figures" and p.stem == f for p in written) for f in figures)
    assert all(p.is_file() for p in written)


def test_cli_explain_quiet_draws_no_bar(cancer_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cancer_run, run)
    assert main(["explain", str(run), "--method", "saliency", "--n", "4", "--no-checks", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and _written(captured.out)[0] == run / "results" / "explain.json"


def _written(out: str) -> list[Path]:
    """The paths of the ``written:`` block: its first line and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("written:"))
    paths = [lines[start].removeprefix("written:").strip()]
    paths += [line.strip() for line in lines[start + 1 :] if line.startswith(" " * 10) and line.strip()]
    return [Path(p) for p in paths]
