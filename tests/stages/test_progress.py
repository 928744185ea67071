"""``glassnet.progress``: tqdm bars with elapsed time and ETA, sparse lines off a terminal; ``--quiet``; stages
that import without torch."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest

from glassnet import progress
from glassnet.errors import ConfigError
from glassnet.progress import progress_bar, progress_stream


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_off_a_terminal_writes_whole_lines_with_elapsed_time_and_eta():
    stream = io.StringIO()
    with progress_bar(40, "attack", stream, unit="points") as bar:
        for _ in range(40):
            progress.note(bar, "pgd eps=0.1")
            bar.update(1)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    # the first and the last line only: 40 updates within LOG_INTERVAL_S add nothing
    assert len(lines) == 2
    assert lines[0].startswith("attack:   0%") and "0/40 points" in lines[0]
    assert lines[-1].startswith("attack: 100%") and "40/40 points" in lines[-1] and "pgd eps=0.1" in lines[-1]
    assert "[00:00<00:00" in lines[-1]  # elapsed < remaining


def test_a_bar_on_a_terminal_redraws_in_place():
    stream = Terminal()
    with progress_bar(3, "explain", stream, unit="examples", mininterval=0) as bar:
        for _ in range(3):
            bar.update(1)
    text = stream.getvalue()
    assert text.count("\rexplain:") >= 3 and text.endswith("\n") and "3/3 examples" in text


def test_without_a_total_the_bar_counts_and_times():
    stream = io.StringIO()
    with progress_bar(None, "synthesise", stream, unit="takes") as bar:
        bar.update(5)
    assert stream.getvalue().splitlines()[-1].startswith("synthesise: 5 takes [00:00")


@pytest.mark.parametrize("off", [None, False])
def test_no_bar_unless_asked(off, capsys):
    with progress_bar(3, "compress", off) as bar:
        bar.update(3)
        progress.note(bar, "int8")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_arguments(monkeypatch):
    stream = io.StringIO()
    assert progress_stream(True) is sys.stderr and progress_stream(stream) is stream
    assert progress_stream(None) is None and progress_stream(False) is None
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_stream("auto") is sys.stderr
    progress.set_quiet()
    try:
        assert progress_stream("auto") is None
    finally:
        progress.set_quiet(False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_stream("auto") is None  # not a terminal
    for bad in ("yes", 3):
        with pytest.raises(ConfigError, match="progress must be True, False, None"):
            progress_stream(bad)


def test_quiet_turns_the_commands_progress_off():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet", action="store_true")  # what every command's shared options carry
    assert progress.cli_progress(parser.parse_args(["--quiet"])) is None
    assert progress.cli_progress(parser.parse_args([])) is sys.stderr


def test_the_stage_modules_import_without_torch():
    """The command line imports every stage to build its parser: none of them may pull torch in."""
    code = (
        "import sys, glassnet\n"
        "light = 'torch' not in sys.modules\n"
        "import glassnet.stages.explain, glassnet.stages.compress, glassnet.stages.robustness\n"
        "import glassnet.stages.play, glassnet.stages.report, glassnet.stages.serve, glassnet.progress\n"
        "print(light, 'torch' in sys.modules)\n"
    )
    light, torch_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    if light == "False":
        pytest.skip("glassnet itself imports torch here; the stages cannot be judged")
    assert torch_loaded == "False"


def test_quiet_lasts_for_one_command_only(capsys):
    """`main([... "--quiet"])` used to leave the whole process quiet: later commands run in the same
    process (notebooks, tests) lost their automatic bars."""
    from glassnet.cli import main

    assert not progress.is_quiet()
    assert main(["datasets", "--quiet"]) == 0
    assert not progress.is_quiet()
