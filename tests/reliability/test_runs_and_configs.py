"""Issue 18, items 1, 3, 5, 6, 9, 12, 13 and the YAML one-liner: configurations, the run lock, stage
outputs that appear together or not at all, unwritable runs, and files a command must not touch."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_checks import cli, refused, snapshot

import glassnet.runs

TRAIN = ["train", "--data", "breast-cancer", "--model", "mlp", "--quiet"]


# --- item 1: a YAML alias bomb, and the Python-tag error in one line ------------------------------


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "data_args:\n" + "\n".join("  " + line for line in lines) + "\n"


def test_a_yaml_alias_bomb_in_a_nested_key_is_refused_at_once(tmp_path, capsys):
    config = tmp_path / "bomb.yaml"
    config.write_text(alias_bomb())  # 9**9 = 387 million strings once expanded
    start = time.perf_counter()
    refused(capsys, ["train", "--config", config, "--out", tmp_path / "run"], "YAML aliases", "100,000")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "run").exists()


def test_a_self_referencing_alias_is_refused(tmp_path, capsys):
    config = tmp_path / "loop.yaml"
    config.write_text("data: digits\nmodel: cnn\ndata_args:\n  x: &x [1, *x]\n")
    refused(capsys, ["train", "--config", config], "refers to itself")


def test_an_alias_bomb_in_an_override_is_refused(capsys):
    bomb = "[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], " + ", ".join(["*a"] * 10) + "]"
    nested = "[&b " + bomb + ", " + ", ".join(["*b"] * 20) + "]"
    deeper = "[&c " + nested + ", " + ", ".join(["*c"] * 60) + "]"
    refused(capsys, [*TRAIN, f"data.x={deeper}"], "YAML aliases")


def test_aliases_that_stay_small_still_work(tmp_path):
    from glassnet.config import load_config

    config = tmp_path / "ok.yaml"
    config.write_text("data: digits\nmodel: cnn\nmodel_args: &m {hidden: 16}\naugment: {}\nstep: {}\n")
    assert load_config(config).model_args == {"hidden": 16}


def test_a_python_tag_is_refused_in_one_line_without_advice_to_load_it(tmp_path, capsys):
    config = tmp_path / "tag.yaml"
    config.write_text("data: !!python/object/apply:os.system ['echo pwned']\n")
    err = refused(capsys, ["train", "--config", config], "!!python/object/apply:os.system", "line 1")
    assert "pwned" not in err.split("tag")[0]


# --- item 9: integers out of range -------------------------------------------------------------------


@pytest.mark.parametrize("override", ["seed=100000000000000000000000", "seed=-1", "epochs=100000000000000000000000"])
def test_an_integer_out_of_range_is_a_config_error(capsys, override):
    refused(capsys, [*TRAIN, override], override.split("=")[0])


# --- item 13: one rule for flags and key=value ---------------------------------------------------------


def test_a_flag_and_an_override_that_disagree_are_refused(capsys):
    refused(capsys, [*TRAIN, "--epochs", "2", "epochs=0"], "--epochs 2 and epochs=0 disagree")
    refused(capsys, [*TRAIN, "--epochs", "2", "epochs=3"], "disagree")


def test_a_flag_and_an_override_that_agree_are_accepted(tmp_path, capsys):
    code, _, err = cli(capsys, [*TRAIN, "--epochs", "1", "epochs=1", "--out", tmp_path / "run", "baseline=false"])
    assert code == 0, err


# --- item 12: predict --output never overwrites the run's own files ------------------------------------


@pytest.mark.parametrize("name", ["model.json", "results/train.json", "metrics.csv", "figures/x.csv"])
def test_predict_output_into_the_runs_own_files_is_refused(run_copy, capsys, name):
    before = snapshot(run_copy)
    refused(capsys, ["predict", run_copy, "--data", "breast-cancer", "--limit", "3", "--output", run_copy / name])
    assert snapshot(run_copy) == before


def test_predict_output_may_go_into_the_run_under_another_name(run_copy, capsys):
    code, _, err = cli(
        capsys, ["predict", run_copy, "--data", "breast-cancer", "--limit", "3", "--output", run_copy / "p.csv"]
    )
    assert code == 0, err
    assert (run_copy / "p.csv").read_text().count("\n") == 4


# --- item 3: one writer per run -----------------------------------------------------------------------

HOLD = """
import sys, time
from glassnet.runs import lock_run
with lock_run(sys.argv[1], "train"):
    print("locked", flush=True)
    time.sleep(120)
"""


def hold_lock(run: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    return holder


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--data", "breast-cancer", "--model", "mlp", "--overwrite", "--quiet", "--out", "{run}"],
        ["train", "--resume", "{run}"],
        ["evaluate", "{run}"],
        ["report", "{run}"],
    ],
    ids=["train-overwrite", "resume", "evaluate", "report"],
)
def test_a_second_writer_is_refused_while_a_run_is_locked(run_copy, capsys, command):
    holder = hold_lock(run_copy)
    try:
        before = snapshot(run_copy)
        args = [str(run_copy) if a == "{run}" else a for a in command]
        refused(capsys, args, "in use by process", str(holder.pid), "`glassnet train`")
        assert snapshot(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(run_copy, capsys):
    holder = hold_lock(run_copy)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run_copy / ".lock").is_file()  # the dead holder's file stays, but its lock went with it
    code, _, err = cli(capsys, ["evaluate", run_copy])
    assert code == 0, err
    assert not (run_copy / ".lock").exists()


def test_two_trainings_into_one_directory_do_not_mix(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "glassnet", *TRAIN, "--epochs", "3", "--out", str(out), "baseline=false"]
    first = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*args, "seed=1"], stderr=subprocess.PIPE, text=True)
    codes = sorted([first.wait(), second.wait()])
    assert codes == [0, 2], (first.stderr.read(), second.stderr.read())
    epochs = [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    assert len(epochs) <= 3


# --- item 5: a failed or killed command loses nothing ----------------------------------------------


def test_a_failed_overwrite_keeps_the_previous_run(run_copy, capsys, monkeypatch):
    before = snapshot(run_copy)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("glassnet.pipeline.training.save_model", fail)  # after training, before saving
    code, _, _ = cli(capsys, [*TRAIN, "--epochs", "1", "--overwrite", "--out", run_copy])
    assert code == 130
    assert snapshot(run_copy) == before
    assert not (run_copy / ".previous").exists()


def test_a_diverging_overwrite_keeps_the_previous_run(run_copy, capsys):
    before = snapshot(run_copy)
    cli(capsys, [*TRAIN, "--epochs", "2", "--overwrite", "--out", run_copy, "lr=1000000", "schedule=none"])
    after = snapshot(run_copy)
    if after != before:  # the overwrite may succeed with a poor model; then it is a complete new run
        assert {"model.json", "model.safetensors", "results/train.json"} <= set(after)


def test_a_killed_overwrite_is_undone_by_the_next_command(run_copy, capsys):
    before = snapshot(run_copy)
    args = [sys.executable, "-m", "glassnet", *TRAIN, "--epochs", "200", "--overwrite", "--out", str(run_copy)]
    trainer = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (run_copy / "metrics.jsonl").is_file() or not (run_copy / ".previous").is_dir():
        assert time.monotonic() < deadline and trainer.poll() is None
        time.sleep(0.05)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    assert not (run_copy / "model.json").exists()
    refused(capsys, ["predict", run_copy, "--data", "breast-cancer"], ".previous")
    code, _, err = cli(capsys, ["evaluate", run_copy])  # takes the lock: the old run comes back
    assert code == 0, err
    after = snapshot(run_copy)
    after.pop("results/evaluate.json")
    assert after.pop("report.html") and before.pop("report.html")  # evaluate refreshes an existing report
    assert after == before


def test_a_stage_that_fails_after_its_figures_keeps_its_previous_outputs(run_copy, capsys, monkeypatch):
    code, _, err = cli(capsys, ["explain", run_copy, "--n", "8", "--method", "saliency"])
    assert code == 0, err
    before = snapshot(run_copy)
    assert any(name.startswith("figures/explain") for name in before)

    def fail(self, stage, data):
        raise KeyboardInterrupt  # as a kill would, once every figure is written

    monkeypatch.setattr(glassnet.runs.RunDir, "write_result", fail)
    code, _, _ = cli(capsys, ["explain", run_copy, "--n", "8", "--method", "input_x_gradient"])
    assert code == 130
    assert snapshot(run_copy) == before
    assert not list(run_copy.rglob("*.tmp"))


def test_a_killed_write_leaves_no_temporary_file_behind(run_copy, capsys):
    litter = run_copy / "results" / ".evaluate.json.abc123.tmp"
    litter.write_text("{")
    code, _, err = cli(capsys, ["evaluate", run_copy])
    assert code == 0, err
    assert not litter.exists()


# --- item 6 and 11: unwritable runs, links that leave the run -------------------------------------------

COMMANDS = {
    "evaluate": ["evaluate", "{run}"],
    "report": ["report", "{run}"],
    "explain": ["explain", "{run}", "--n", "4", "--no-checks", "--method", "saliency"],
    "attack": ["attack", "{run}", "--limit", "8", "--eps", "0.1", "--attack", "fgsm", "--no-worst-case"],
    "compress": ["compress", "{run}", "--quantize", "torch-dynamic"],
    "overwrite": [*TRAIN, "--epochs", "1", "--overwrite", "--out", "{run}"],
    "resume": ["train", "--resume", "{run}"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_read_only_run_gets_one_line_naming_the_path(run_copy, capsys, monkeypatch, name):
    """The file system refuses every write inside the run, as a read-only mount does (also for root)."""
    root = str(run_copy.resolve())
    real_open, real_mkdir = os.open, os.mkdir

    def guarded(real):
        def call(path, flags_or_mode=None, *args, **kwargs):
            wants_write = real is real_mkdir or flags_or_mode & (os.O_CREAT | os.O_WRONLY | os.O_RDWR)
            if wants_write and os.path.abspath(path).startswith(root):
                raise OSError(errno.EROFS, "Read-only file system", path)
            return real(path, flags_or_mode, *args, **kwargs) if flags_or_mode is not None else real(path)

        return call

    monkeypatch.setattr(os, "open", guarded(real_open))
    monkeypatch.setattr(os, "mkdir", guarded(real_mkdir))
    args = [str(run_copy) if a == "{run}" else a for a in COMMANDS[name]]
    refused(capsys, args, "cannot write into", "read-only")


def test_writes_never_follow_a_results_link_out_of_the_run(run_copy, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "train.json").write_text("{}")
    for result in (run_copy / "results").iterdir():
        result.unlink()
    (run_copy / "results").rmdir()
    (run_copy / "results").symlink_to(elsewhere)
    refused(capsys, ["evaluate", run_copy], "symbolic link")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["train.json"]


@pytest.mark.parametrize("levels", [70, 1000])
def test_deeply_nested_yaml_is_refused_in_one_line(tmp_path, capsys, levels):
    nested = "[" * levels + "1" + "]" * levels
    config = tmp_path / "deep.yaml"
    config.write_text(f"data: breast-cancer\ndata_args:\n  x: {nested}\n")
    refused(capsys, ["train", "--config", config, "--out", tmp_path / "run"], "nest", "64 levels")
    err = refused(capsys, [*TRAIN, f"data.x={nested}"], "nest", "64 levels")
    assert len(err) < 400  # the value is not echoed in full


def test_a_report_refuses_an_alias_bomb_in_the_runs_config(run_copy, capsys):
    (run_copy / "config.yaml").write_text(alias_bomb())
    before = snapshot(run_copy)
    refused(capsys, ["report", run_copy], "YAML aliases", "config.yaml")
    assert snapshot(run_copy) == before
