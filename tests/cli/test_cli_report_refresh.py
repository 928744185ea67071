"""After a stage or ``glassnet evaluate``, report.html is rewritten, or one line says why it was not."""

import shutil
from argparse import Namespace

import pytest

from glassnet.cli import main
from glassnet.cli.main import _stage_command
from glassnet.stages import Stage


@pytest.fixture
def run(tabular_run, tmp_path):
    """A copy of the trained run without a report.html."""
    copy = shutil.copytree(tabular_run, tmp_path / "run")
    (copy / "report.html").unlink(missing_ok=True)
    return copy


def report_line(out):
    lines = [line for line in out.splitlines() if line.startswith("report:")]
    assert len(lines) == 1, out
    return lines[0]


def test_evaluate_says_why_it_wrote_no_report_then_writes_and_refreshes_it(capsys, run):
    assert main(["evaluate", str(run), "--quiet"]) == 0
    hint = f"report:   not written (no report.html yet; add --report or run glassnet report {run})"
    assert report_line(capsys.readouterr().out) == hint
    assert not (run / "report.html").exists()

    assert main(["evaluate", str(run), "--report"]) == 0
    assert report_line(capsys.readouterr().out) == f"report:   {run / 'report.html'} (written)"
    written = (run / "report.html").stat().st_mtime_ns

    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert report_line(capsys.readouterr().out) == f"report:   {run / 'report.html'} (refreshed)"
    assert (run / "report.html").stat().st_mtime_ns != written


def stage_args(run, report=False, refreshes=True):
    def noop(run, **options):
        return {"done": True}

    stage = Stage(name="noop", run=noop, help="does nothing", refreshes_report=refreshes)
    return Namespace(stage=stage, run=str(run), report=report, quiet=True)


def test_a_stage_refreshes_an_existing_report_and_explains_a_missing_one(capsys, run):
    assert _stage_command(stage_args(run)) == 0
    assert "not written (no report.html yet; add --report" in report_line(capsys.readouterr().out)
    assert _stage_command(stage_args(run, report=True)) == 0
    assert report_line(capsys.readouterr().out).endswith("report.html (written)")
    assert _stage_command(stage_args(run)) == 0
    assert report_line(capsys.readouterr().out).endswith("report.html (refreshed)")


def test_a_stage_that_does_not_refresh_the_report_says_nothing_of_it(capsys, run):
    assert _stage_command(stage_args(run, refreshes=False)) == 0
    assert "report:" not in capsys.readouterr().out
