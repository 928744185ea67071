"""``glassnet attack RUN``: the table it prints, the files it writes, the errors it reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from glassnet.cli import main

FAST = ["--limit", "40", "--apgd-steps", "3", "--square-queries", "10"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "digits"
    args = ["train", "--data", "digits", "--model", "cnn", "epochs=2", "model.channels=[8]", "model.hidden=16"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    return Path(out)


def test_attack_prints_the_curves_and_writes_results_figures_and_report(digits_run, capsys):
    assert main(["attack", str(digits_run), "--eps", "0.05", "0.2", "--attack", "fgsm,pgd", *FAST]) == 0
    out = capsys.readouterr().out
    assert "worst case" in out and "eps=0.05" in out and "fgsm" in out
    result = json.loads((digits_run / "results" / "robustness.json").read_text())
    assert result["eps"] == [0.05, 0.2] and result["examples"] == 40 and result["split"] == "test"
    assert set(result["curves"]) == {"fgsm", "pgd"}
    assert result["adversarial_training"] is None
    assert (digits_run / "figures" / "robustness_curves.png").is_file()
    assert (digits_run / "figures" / "adversarial_examples.png").is_file()
    assert main(["report", str(digits_run)]) == 0
    page = (digits_run / "report.html").read_text()
    assert 'id="robustness"' in page and "Accuracy under attack" in page and "without adversarial training" in page
    assert 'src="http' not in page


def test_attack_with_l2_and_a_minimum_norm_attack(digits_run, capsys):
    args = ["attack", str(digits_run), "--norm", "l2", "--eps", "0.5", "1", "--attack", "deepfool", "--no-worst-case"]
    assert main([*args, "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "deepfool" in out and "worst case" not in out
    result = json.loads((digits_run / "results" / "robustness.json").read_text())
    assert result["norm"] == "l2" and result["worst_case"] is None and "deepfool" in result["minimum_norms"]


def test_attack_with_l2_worst_case_and_bf16(digits_run, capsys):
    args = ["attack", str(digits_run), "--norm", "l2", "--eps", "1", "--precision", "bf16", *FAST]
    assert main(args) == 0
    assert "attacks in bf16" in capsys.readouterr().out
    result = json.loads((digits_run / "results" / "robustness.json").read_text())
    assert result["precision"] == "bf16" and result["worst_case"]["attacks"] == ["apgd-ce", "apgd-dlr-t", "square"]
    assert main(["report", str(digits_run)]) == 0
    assert "bf16 autocast" in (digits_run / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attack", "pgdd"], "unknown attack 'pgdd'. Did you mean 'pgd'?"),
        (["--eps", "0"], "eps must be a finite number > 0"),
        (["--attack", "cw"], "supports norm l2"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--apgd-steps", "0"], "--apgd-steps must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(digits_run, capsys, args, message):
    assert main(["attack", str(digits_run), *args, "--no-worst-case", "--limit", "5"] if "--limit" not in args
                else ["attack", str(digits_run), *args]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_run_and_a_regression_run_are_refused(tmp_path, capsys):
    assert main(["attack", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "diabetes"
    args = ["train", "--data", "diabetes", "--model", "mlp", "epochs=1", "model.width=8", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(["attack", str(out)]) == 2
    assert "evaluates classifiers" in capsys.readouterr().err


def test_a_failed_attack_keeps_the_previous_results(digits_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    assert main(["attack", str(run), "--eps", "0.1", "--attack", "fgsm", "--no-worst-case", "--limit", "10"]) == 0
    before = (run / "results" / "robustness.json").read_text()
    assert main(["attack", str(run), "--eps", "5"]) == 2
    assert (run / "results" / "robustness.json").read_text() == before


def test_a_text_run_is_attacked_in_embedding_space(tmp_path, capsys):
    import random

    rng = random.Random(0)
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "sad", "poor"]}
    rows = ["label,text"] + [
        f"{label},{' '.join(rng.choices(words[label], k=4) + ['the', 'it'])}" for label in ["pos", "neg"] * 60
    ]
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "text"
    args = ["train", "--data", str(data), "--model", "gru", "epochs=2", "model.hidden=8", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert main(["attack", str(out), "--eps", "0.1", "1", "--limit", "10"]) == 0
    printed = capsys.readouterr().out
    assert "embedding space" in printed and "note:     Square is not run in embedding space" in printed
    result = json.loads((out / "results" / "robustness.json").read_text())
    assert result["space"] == "embedding" and list(result["curves"]) == ["embedding-pgd"]
    assert result["worst_case"]["space"] == "embedding" and result["worst_case"]["attacks"] == ["apgd-ce", "apgd-dlr-t"]
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "in embedding space" in page and "apgd-ce + apgd-dlr-t in embedding space" in page
