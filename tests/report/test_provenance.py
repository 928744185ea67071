"""glassnet.provenance: the date, command, versions, git commit and machine a run records, and never a failure."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

from glassnet import provenance
from glassnet.provenance import capture, command_line, cpu_model, git_state, machine

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="the git checks need the git command")


def _git(where: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding a committed package ``src/pkg`` (its ``__init__.py`` tracked)."""
    if shutil.which("git") is None:
        pytest.skip("the git checks need the git command")
    package = tmp_path / "repo" / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VERSION = 1\n")
    _git(tmp_path / "repo", "init", "-q")
    _git(tmp_path / "repo", "add", ".")
    _git(tmp_path / "repo", "commit", "-q", "-m", "first")
    return package


def test_capture_records_date_command_versions_machine_and_seed():
    record = capture(seed=7, device=torch.device("cpu"))
    assert json.loads(json.dumps(record)) == record  # stored as JSON as it is
    date = datetime.fromisoformat(record["date"])
    assert date.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - date) < timedelta(minutes=1)
    assert record["command"] and record["seed"] == 7
    from glassnet.version import __version__

    assert record["versions"]["glassnet"] == __version__
    assert record["versions"]["torch"] == str(torch.__version__)
    assert record["versions"]["python"] == platform.python_version()
    assert record["machine"]["cpus"] == os.cpu_count()
    assert record["machine"]["torch_threads"] == torch.get_num_threads()
    assert record["machine"]["device"] == "cpu" and record["machine"]["gpu"] is None


def test_capture_finds_the_checkout_of_the_glassnet_source_not_the_working_directory(tmp_path, monkeypatch):
    """From another directory, ``git`` is whatever glassnet's own source directory says (here: this checkout,
    or None for an installed package)."""
    monkeypatch.chdir(tmp_path)
    import glassnet

    expected = git_state(Path(glassnet.__file__).resolve().parent)
    assert capture()["git"] == expected


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["/venv/bin/glassnet", "train", "--data", "digits"], "glassnet train --data digits"),
        (["/src/glassnet/__main__.py", "report", "runs/a b"], "python -m glassnet report 'runs/a b'"),
        (["train.py", "--lr", "0.1"], "python train.py --lr 0.1"),
        (["-c"], "python -c"),
        ([""], "python (interactive session)"),
        ([], "python (interactive session)"),
    ],
)
def test_command_line_reads_as_it_was_typed(argv, shown):
    assert command_line(argv) == shown


def test_git_state_reads_the_commit_and_whether_the_checkout_is_dirty(checkout):
    repo = checkout.parent.parent
    head = _git(repo, "rev-parse", "HEAD")
    assert git_state(checkout) == {"commit": head, "dirty": False}
    (repo / "notes.txt").write_text("an untracked file (a run, some data) leaves it clean")
    assert git_state(checkout) == {"commit": head, "dirty": False}
    (checkout / "__init__.py").write_text("VERSION = 2\n")
    assert git_state(checkout) == {"commit": head, "dirty": True}


def test_a_package_not_tracked_in_the_checkout_around_it_has_no_git_state(checkout):
    """An installed package inside some other project's checkout (a venv in a repository) is not that project."""
    installed = checkout.parent.parent / ".venv" / "site-packages" / "glassnet"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    assert git_state(installed) is None


def test_git_state_outside_a_checkout_is_none(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    assert git_state(tmp_path) is None
    assert git_state(tmp_path / "missing") is None


def test_git_state_is_none_without_git(checkout, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_state(checkout) is None
    assert capture()["git"] is None


@needs_git
@pytest.mark.parametrize(
    "script", ["#!/bin/sh\nexit 128\n", "#!/bin/sh\nexec sleep 5\n", "#!/bin/sh\necho '# branch.oid'\n"]
)
def test_a_failing_or_hanging_git_is_given_up(checkout, monkeypatch, tmp_path, script):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(script)
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(provenance, "GIT_TIMEOUT_S", 0.3)
    assert git_state(checkout) is None


def test_machine_names_the_cpu_and_leaves_the_gpu_out_on_cpu():
    found = machine("cpu")
    assert found["cpu"] == cpu_model() and found["cpu"]
    assert found["gpu"] is None and found["device"] == "cpu"
    assert machine()["device"] is None


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the model name of /proc/cpuinfo")
def test_cpu_model_comes_from_proc_cpuinfo():
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]  # fmt: skip
    if names:
        assert " ".join(names[0].split()) == cpu_model()


def test_machine_names_the_gpu_of_a_cuda_device(monkeypatch):
    """On a CUDA device the GPU's name is recorded (faked here: no GPU needed); a driver error records none."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Fake GPU {device}")
    assert machine(torch.device("cuda", 1))["gpu"] == "Fake GPU cuda:1"
    assert machine("cuda")["device"] == "cuda"

    def broken(device=None):
        raise RuntimeError("no driver")

    monkeypatch.setattr(torch.cuda, "get_device_name", broken)
    assert machine("cuda:0")["gpu"] is None
    assert machine("mps")["gpu"] == "Apple GPU (MPS)"


def test_the_report_says_why_torch_used_that_many_threads():
    from glassnet.report.provenance import _machine_rows

    machine = {"cpus": 2, "torch_threads": 1, "thread_choice": {"summary": "1 of 2 CPUs (2 other tasks running)"}}
    rows = dict(_machine_rows(machine))
    assert (
        rows["machine"].endswith("PyTorch used 1 thread") and rows["threads"] == "1 of 2 CPUs (2 other tasks running)"
    )
    assert "threads" not in dict(_machine_rows({"cpus": 2, "torch_threads": 2}))  # runs before the choice


def test_a_password_in_the_command_line_is_masked():
    """A tracking URI given on the command line used to reach results/train.json (and MLflow's artifacts)
    with its password."""
    from glassnet.provenance import command_line, redact_passwords

    argv = ["/x/bin/glassnet", "train", "mlflow.tracking_uri=postgresql://ann:s3cret@db:5432/ml"]
    assert command_line(argv) == "glassnet train mlflow.tracking_uri=postgresql://ann:***@db:5432/ml"
    assert redact_passwords("a: http://host:5000/x and sqlite:///t.db") == "a: http://host:5000/x and sqlite:///t.db"
