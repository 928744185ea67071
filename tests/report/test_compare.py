"""``glassnet compare``: several runs side by side in one self-contained page, and its one-line errors."""

import argparse
import json
import re
import shutil
import subprocess
import sys

import pytest

import glassnet as gn
from glassnet.cli import compare as cli_compare
from glassnet.config import RunConfig
from glassnet.errors import ConfigError, GlassnetError, RunError
from glassnet.report.compare import compare
from glassnet.stages import run_stage


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two breast-cancer runs: ``small`` audited by every stage, ``wide`` attacked at one budget only."""
    root = tmp_path_factory.mktemp("compare")
    small = gn.train(
        RunConfig(data="breast-cancer", model="mlp", epochs=2, model_args={"width": 8}), out=root / "small"
    )
    wide = gn.train(RunConfig(data="breast-cancer", model="mlp", epochs=6, model_args={"width": 32}), out=root / "wide")
    run_stage("explain", small.path, method="saliency", n=8)
    run_stage("robustness", small.path, attack=["fgsm"], eps=[0.05, 0.1], limit=16, worst_case=False)
    run_stage("compress", small.path, quantize=["torch-dynamic"], repeats=1)
    run_stage("robustness", wide.path, attack=["fgsm"], eps=[0.1], limit=16, worst_case=False)
    return small.path, wide.path


def _results(run, stage):
    return json.loads((run / "results" / f"{stage}.json").read_text())


def _row(html, name):
    """The cells of the table row called ``name``: (text, highlighted) per run."""
    row = re.search(rf"<tr><th>{re.escape(name)}</th>(.*?)</tr>", html).group(1)
    return [(text, "best" in cls) for cls, text in re.findall(r'<td class="([^"]*)">(.*?)</td>', row)]


def test_compare_lays_out_metrics_and_audits_with_the_best_highlighted(runs, tmp_path):
    small, wide = runs
    html = compare([small, wide], tmp_path / "page.html").read_text()
    assert "<th>small</th>" in html and "<th>wide</th>" in html
    accuracy = [_results(r, "train")["test"]["accuracy"] for r in runs]
    cells = _row(html, "accuracy")
    assert [text for text, _ in cells] == [f"{a:.4f}" for a in accuracy]
    assert [best for _, best in cells] == [a == max(accuracy) for a in accuracy]
    loss = [_results(r, "train")["test"]["loss"] for r in runs]
    assert [best for _, best in _row(html, "loss")] == [v == min(loss) for v in loss]  # lower is better
    parameters = [_results(r, "train")["model"]["parameters"] for r in runs]
    assert _row(html, "parameters") == [(f"{p:,}", p == min(parameters)) for p in parameters]
    auc = _results(small, "train")["test"]["roc"]["auc"]
    assert _row(html, "ROC AUC")[0][0] == f"{auc:.4f}"

    robust = _results(small, "robustness")["robust_accuracy"]
    assert _row(html, "robust accuracy, linf eps=0.05") == [(f"{robust['0.05']:.4f}", False), ("n/a", False)]
    both = [_results(r, "robustness")["robust_accuracy"]["0.1"] for r in runs]
    assert [text for text, _ in _row(html, "robust accuracy, linf eps=0.1")] == [f"{v:.4f}" for v in both]

    fastest = max(
        (v for v in _results(small, "compress")["variants"] if v["name"] != "fp32"), key=lambda v: v["latency_speedup"]
    )
    assert _row(html, "fastest variant") == [(fastest["name"], False), ("n/a", False)]
    assert _row(html, "its test accuracy")[0][0] == f"{fastest['accuracy']:.4f}"
    faith = _results(small, "explain")["trust"]["faithfulness"]
    assert _row(html, "deletion AUC (random order)")[0][0] == (
        f"{faith['deletion_auc']:.3f} (random {faith['random_deletion_auc']:.3f})"
    )
    assert "differ in data or task" not in html


def test_the_page_is_self_contained_with_one_chart(runs, tmp_path):
    html = compare(runs, tmp_path / "page.html").read_text()
    assert not re.search(r"""src\s*=\s*["'](?!data:)""", html), "external asset referenced"
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert html.count('src="data:image/svg+xml;base64,') == 1


def test_runs_of_other_data_compare_with_a_note(runs, tmp_path):
    config = RunConfig(data="digits", model="mlp", epochs=1, baseline=False, model_args={"width": 8})
    digits = gn.train(config, out=tmp_path / "digits").path
    html = compare([runs[0], digits], tmp_path / "mixed.html").read_text()
    assert "differ in data or task" in html and "breast-cancer / classify: small" in html
    assert not any(best for _, best in _row(html, "accuracy"))  # not comparable: nothing highlighted
    assert _row(html, "ROC AUC")[1] == ("n/a", False)


def test_report_links_and_an_output_directory(runs, tmp_path):
    gn.report(runs[0])
    out = tmp_path / "pages"
    out.mkdir()
    path = compare(runs, out)
    assert path == out / "compare.html"
    href = re.search(r'<th><a href="([^"]+)">small</a></th>', path.read_text()).group(1)
    assert (out / href).resolve() == (runs[0] / "report.html").resolve()


def test_errors_are_one_line(runs, tmp_path):
    with pytest.raises(ConfigError, match="at least two runs, got 1: "):
        compare([runs[0]], tmp_path / "x.html")
    with pytest.raises(RunError, match="does not exist"):
        compare([runs[0], tmp_path / "missing"], tmp_path / "x.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a complete run"):
        compare([runs[0], tmp_path / "empty"], tmp_path / "x.html")
    damaged = shutil.copytree(runs[1], tmp_path / "damaged")
    (damaged / "results" / "robustness.json").write_text('{"robust_accuracy": [1]}')
    with pytest.raises(RunError, match="robustness.json: 'robust_accuracy' should be a mapping"):
        compare([runs[0], damaged], tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="glassnet")
    commands = parser.add_subparsers(dest="command", required=True)
    cli_compare.add_parser(commands, common)
    return parser


def test_the_command_writes_the_page_and_says_where(runs, tmp_path, capsys):
    args = _parser().parse_args(["compare", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "c.html")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"written:  {tmp_path / 'c.html'}" in out and (tmp_path / "c.html").is_file()
    args = _parser().parse_args(["compare", str(runs[0])])
    with pytest.raises(GlassnetError, match="at least two runs"):
        args.func(args)


def test_the_command_module_does_not_import_torch():
    code = "import sys, glassnet.cli.compare; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
