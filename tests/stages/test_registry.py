"""The stage registry: the built-in stages, the command line and demo built from it, and a new stage
added as one module (the hypothetical ``calibration`` stage of docs/architecture.md, run verbatim)."""

import re
from pathlib import Path

import pytest

import glassnet.stages as stages
from glassnet.cli import main
from glassnet.cli.main import build_parser
from glassnet.errors import UnknownNameError
from glassnet.report import card

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def doc_file(name):
    """The code block that follows ``<!-- new file: NAME -->`` in docs/architecture.md."""
    match = re.search(rf"<!-- new file: {re.escape(name)} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/architecture.md shows no {name}"
    return match.group(1)


def test_the_built_in_stages_are_registered_in_order():
    assert [s.name for s in stages.list_stages()] == ["play", "explain", "robustness", "compress", "serve", "report"]
    assert stages.get_stage("attack") is stages.get_stage("robustness")
    with pytest.raises(UnknownNameError, match="Did you mean 'explain'"):
        stages.get_stage("explian")
    with pytest.raises(ValueError, match="registered twice"):
        stages.register_stage(stages.Stage(name="attack", run=print, help=""))


def test_every_stage_is_a_subcommand_and_keeps_its_former_name():
    parser = build_parser()
    for stage in stages.list_stages():
        args = parser.parse_args([stage.name, "some/run"])
        assert args.stage is stage and args.run == "some/run"
    assert parser.parse_args(["attack", "r", "--eps", "0.1"]).stage.name == "robustness"
    assert "robustness" in parser.format_help() and "calibration" not in parser.format_help()


@pytest.fixture
def calibration_stage(tmp_path, monkeypatch):
    """Install the docs' calibration module as a stage, exactly as a new file in glassnet/stages would be."""
    folder = tmp_path / "extra_stages"
    folder.mkdir()
    (folder / "calibration.py").write_text(doc_file("src/glassnet/stages/calibration.py"))
    monkeypatch.setattr(stages, "__path__", [*stages.__path__, str(folder)])
    monkeypatch.setattr(stages, "_STAGES", dict(stages._STAGES))
    monkeypatch.setattr(stages, "_loaded", False)
    monkeypatch.setattr(card, "_SECTIONS", list(card._SECTIONS))
    monkeypatch.delitem(__import__("sys").modules, "glassnet.stages.calibration", raising=False)
    yield stages.get_stage("calibration")
    __import__("sys").modules.pop("glassnet.stages.calibration", None)


@pytest.mark.slow
def test_a_new_stage_is_one_module_and_its_test(calibration_stage, tmp_path, monkeypatch, capsys):
    assert "calibration" in build_parser().format_help()
    namespace = {}
    exec(compile(doc_file("tests/stages/test_calibration.py"), "test_calibration.py", "exec"), namespace)
    namespace["test_calibration_stage"](tmp_path / "doc-test")
    assert "ECE" in capsys.readouterr().out
    # the demo runs it in its order and prints its headline
    from glassnet.pipeline import DEMO_CONFIG

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "1", "--no-audit", "--quiet", "--out", "demo"]) == 0
    assert not (tmp_path / "demo" / "results" / "calibration.json").exists()  # an audit stage: skipped
    assert main(["demo", "--epochs", "1", "--out", "demo"]) == 0
    out = capsys.readouterr()
    assert "calibration: expected calibration error of the test predictions" in out.err
    assert "calibration: expected calibration error" in out.out
    assert out.err.index("explain:") < out.err.index("calibration:") < out.err.index("robustness:")
    assert DEMO_CONFIG.data == "digits"
