"""`glassnet tune` on Optuna: trials are ordinary runs, the study resumes, prunes cleanly, is shared by parallel
workers on one SQLite database, and is reported in study.json and a self-contained study.html."""

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from glassnet.cli import main
from glassnet.cli import tune as tune_command
from glassnet.errors import GlassnetError
from glassnet.tune import tune

optuna = pytest.importorskip("optuna", reason="glassnet tune needs Optuna (pip install 'glassnet[tune]')")

# tiny trials: a small MLP, one thread (the workers of the parallel test share the cores), no baselines
FIXED = ["model.width=8", "threads=1", "baseline=false", "batch_size=32"]
DATA = ["--data", "breast-cancer", "--model", "mlp"]


def glassnet(*argv):
    """`glassnet ARGS` through the real command line once it knows `tune`, else through `tune`'s own parser."""
    argv = [str(a) for a in argv]
    from glassnet.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "tune" in commands.choices:
        return main(argv)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true")
    common.add_argument("--quiet", action="store_true")
    parser = argparse.ArgumentParser(prog="glassnet")
    tune_command.add_parser(parser.add_subparsers(dest="command", required=True), common)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GlassnetError as exc:
        print(f"glassnet: error: {exc}", file=sys.stderr)
        return 2


def epochs_of(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_tune_trains_trials_as_runs_prunes_reports_and_resumes(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    storage = f"sqlite:///{out / 'study.db'}"  # the default storage of --out
    study = optuna.create_study(storage=storage, study_name="mlp-breast-cancer", direction="minimize")
    study.enqueue_trial({"lr": 0.05, "model.depth": 1})
    study.enqueue_trial({"lr": 1e-6, "model.depth": 2})  # learns nothing: worse than the first after epoch 1
    space = {"lr": "log(1e-6,1e-1)", "model.depth": [1, 2], "epochs": 2, **dict(f.split("=") for f in FIXED)}
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    lines = io.StringIO()
    summary = tune(data="breast-cancer", model="mlp", space=space, trials=2, out=out, pruner=pruner, log=lines)

    assert summary["counts"] == {"complete": 1, "pruned": 1, "fail": 0, "running": 0, "total": 2}
    assert len(lines.getvalue().splitlines()) == 2 and "trial 1   pruned at epoch 1" in lines.getvalue()
    first, second = summary["trials"]
    for trial in (first, second):
        run = Path(trial["run_dir"])
        assert run == (out / f"trial-{trial['number']:04d}").resolve()
        assert (run / "model.json").is_file() and (run / "results" / "train.json").is_file()  # an ordinary run
        config = (run / "config.yaml").read_text()
        assert "monitor: val/loss" in config and f"depth: {trial['params']['model.depth']}" in config
    assert first["value"] == pytest.approx(min(e["val/loss"] for e in epochs_of(first["run_dir"])))
    assert second["pruned_at_epoch"] == 1 and len(epochs_of(second["run_dir"])) == 1  # stopped, then finished
    marker = json.loads((Path(second["run_dir"]) / "results" / "tune.json").read_text())
    assert marker["state"] == "pruned" and marker["pruned_at_epoch"] == 1 and marker["params"] == second["params"]
    assert study.trials[1].state.name == "PRUNED"
    assert summary["best"] == {k: first[k] for k in ("number", "value", "params", "run_dir")}
    assert summary["importance"] == {} and "at least 2 complete trials (1 so far)" in summary["importance_note"]
    page = (out / "study.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 3  # parallel coordinates, history, per epoch
    assert "at least 2 complete trials" in page and "pruned at epoch 1" in page
    assert "http://" not in page and "https://" not in page  # self-contained

    # the same search again with a larger budget: the study resumes and adds one trial
    command = ["tune", *DATA, "--trials", 3, "--out", out]
    space_args = ["lr=log(1e-6,1e-1)", "model.depth=[1,2]", "epochs=2", *FIXED]
    capsys.readouterr()
    assert glassnet(*command, *space_args) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.glob("trial-*")) == ["trial-0000", "trial-0001", "trial-0002"]
    assert "trial 2 " in printed and "3 trials (2 complete, 1 pruned" in printed and "best:     trial " in printed
    summary = json.loads((out / "study.json").read_text())
    assert summary["counts"]["total"] == 3 and set(summary["importance"]) == {"lr", "model.depth"}

    # another search under the same study is refused, naming what differs
    assert glassnet(*command, "lr=log(1e-4,1e-1)", *space_args[1:]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("glassnet: error: study 'mlp-breast-cancer' in sqlite:///")
    assert "was started with another search (lr: log(1e-06,0.1) -> log(0.0001,0.1))" in error
    assert len(error.splitlines()) == 1


WORKER = """
import sys, time
from pathlib import Path

import optuna

from glassnet.tune import tune

out, me, other = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])


class TogetherSampler(optuna.samplers.RandomSampler):
    # holds each worker's first trial until the other worker has one under way too
    def before_trial(self, study, trial):
        super().before_trial(study, trial)
        me.touch()
        deadline = time.monotonic() + 120
        while not other.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


space = ["lr=log(1e-3,1e-1)", "epochs=1", {fixed}]
tune(data="breast-cancer", model="mlp", space=space, trials=2, out=out, prune=False, sampler=TogetherSampler())
"""


def test_two_workers_share_one_sqlite_study(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.replace("{fixed}", ", ".join(repr(f) for f in FIXED)))
    out = tmp_path / "study"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), str(tmp_path / me), str(tmp_path / other)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = optuna.load_study(study_name="mlp-breast-cancer", storage=f"sqlite:///{out / 'study.db'}").trials
    # each worker ran one trial at the same time as the other, and neither started a third
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert sorted(p.name for p in out.glob("trial-*")) == ["trial-0000", "trial-0001"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--metric", "val/acc", "lr=log(1e-3,1e-1)"], r"--metric val/acc: .*val/accuracy"),
        (["--metric", "loss", "lr=log(1e-3,1e-1)"], "--metric must name a validation metric"),
        (["hidden=[64,128]"], r"search space hidden=\[64,128\]: unknown configuration key 'hidden'"),
        (["model.hidden=[64,128]"], r"search space model.hidden=\[64,128\]: .*hidden"),
        (["epochs=uniform(1,5)"], r"search space epochs=uniform\(1,5\): epochs must be of type int"),
        (["lr=log(1e-4)"], r"search space lr=log\(1e-4\): log\(\.\.\.\) takes two bounds"),
    ],
)
def test_mistakes_are_one_line_before_any_trial(arguments, message, tmp_path, capsys):
    import re

    out = tmp_path / "study"
    assert glassnet("tune", *DATA, "--trials", 2, "--out", out, *arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("glassnet: error: ")
    assert re.search(message, error), error
    assert not list(out.glob("trial-*"))
