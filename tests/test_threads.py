"""glassnet.threads: the CPUs available, the choice of torch's threads, the user's settings left alone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glassnet import provenance, threads
from glassnet.cli import main
from glassnet.errors import ConfigError

USER_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", threads.SWITCH)


@pytest.fixture
def machine(monkeypatch):
    """8 online CPUs, all in the affinity mask; no thread setting in the environment."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    for name in USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _fake_cgroup(tmp_path: Path, files: dict[str, str], cgroup_line: str = "0::/") -> tuple[Path, Path]:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_line + "\n")
    return root, proc


def test_a_cgroup_v2_quota_caps_the_cpus(machine, tmp_path):
    root, proc = _fake_cgroup(tmp_path, {"cpu.max": "150000 100000\n"})
    assert threads.cgroup_quota(root, proc) == 1.5
    cpus = threads.available_cpus(root, proc)
    assert (cpus.count, cpus.online, cpus.affinity, cpus.quota) == (2, 8, 8, 1.5)


def test_no_quota_leaves_the_affinity_mask(machine, tmp_path, monkeypatch):
    root, proc = _fake_cgroup(tmp_path, {"cpu.max": "max 100000\n"})
    assert threads.cgroup_quota(root, proc) is None
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 3)
    assert threads.available_cpus(root, proc).count == 3


def test_the_process_own_cgroup_below_the_root_counts(machine, tmp_path):
    files = {"cpu.max": "max 100000\n", "user.slice/job/cpu.max": "50000 100000\n"}
    root, proc = _fake_cgroup(tmp_path, files, cgroup_line="0::/user.slice/job")
    assert threads.cgroup_quota(root, proc) == 0.5
    assert threads.available_cpus(root, proc).count == 1


def test_a_cgroup_v1_quota_is_read_too(machine, tmp_path):
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "400000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    root, proc = _fake_cgroup(tmp_path, files, cgroup_line="4:cpu,cpuacct:/")
    assert threads.available_cpus(root, proc).count == 4
    unlimited = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    root, proc = _fake_cgroup(tmp_path / "v1", unlimited, cgroup_line="4:cpu:/")
    assert threads.cgroup_quota(root, proc) is None


def test_without_affinity_or_cgroup_the_cpu_count_counts(machine, tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: None)
    cpus = threads.available_cpus(tmp_path / "none", tmp_path / "none")
    assert (cpus.count, cpus.affinity, cpus.quota) == (8, None, None)


def test_the_real_affinity_mask_is_read(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert threads.affinity_cpus() == 3


def test_other_running_tasks_exclude_this_process_and_passing_ones(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    for task, state in (("100", "R"), ("101", "S"), ("102", "R")):
        (proc / "self" / "task" / task).mkdir(parents=True)
        (proc / "self" / "task" / task / "stat").write_text(f"{task} (python (x) R) {state} 1 2 3\n")
    (proc / "loadavg").write_text("0.50 0.40 0.30 5/300 999\n")
    assert threads._running_tasks(proc) == 5
    readings = iter([5, 4, 6])
    monkeypatch.setattr(threads, "_running_tasks", lambda proc: next(readings))
    # the fewest of three looks (4 running), less this process's 2 running threads
    assert threads.other_tasks_running(samples=3, interval=0.0, proc=proc) == 2.0
    monkeypatch.undo()
    assert threads.other_tasks_running(proc=tmp_path / "missing") is None


def test_an_idle_machine_gets_every_available_cpu_and_a_busy_one_fewer(machine):
    cpus = threads.Cpus(count=2, online=2, affinity=2, quota=None)
    idle = threads.choose(cpus=cpus, busy=0.0)
    assert (idle.threads, idle.source, idle.environment["OMP_NUM_THREADS"]) == (2, "auto", "2")
    assert idle.environment["GOMP_SPINCOUNT"] == threads.SPIN_COUNT  # OpenMP's threads wait without spinning long
    assert idle.describe() == (
        "threads: 2 of 2 CPUs (affinity 2, cgroup quota none, 0 other tasks running), GOMP_SPINCOUNT=1000"
    )
    assert threads.choose(cpus=cpus, busy=1.0).threads == 1  # another job holds a core
    assert threads.choose(cpus=cpus, busy=3.4).threads == 1  # never below one
    assert threads.choose(cpus=cpus, busy=lambda: None).threads == 2  # unknown load: every CPU
    # a container's 4 CPUs on a 64-CPU host half busy: the host has room for all 4
    big = threads.Cpus(count=4, online=64, affinity=64, quota=4.0)
    assert threads.choose(cpus=big, busy=32.0).threads == 4
    assert threads.choose(cpus=big, busy=62.0).threads == 2


def test_the_user_settings_win(machine, monkeypatch):
    cpus = threads.Cpus(count=2, online=2, affinity=2, quota=None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    chosen = threads.choose(cpus=cpus, busy=5.0)
    assert (chosen.threads, chosen.environment, chosen.source) == (None, {}, "OMP_NUM_THREADS=3")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's wait policy stays too
    assert threads.choose(cpus=cpus, busy=0.0).environment == {"OMP_NUM_THREADS": "2"}
    monkeypatch.setenv(threads.SWITCH, "off")
    assert threads.choose(cpus=cpus, busy=5.0).threads is None
    monkeypatch.setenv(threads.SWITCH, "3")
    assert threads.choose(cpus=cpus, busy=5.0).threads == 3
    monkeypatch.setenv(threads.SWITCH, "many")
    with pytest.raises(ConfigError, match="GLASSNET_THREADS must be auto, off or a number"):
        threads.choose(cpus=cpus)


def test_apply_sets_what_the_user_left_and_undo_restores_it(machine, monkeypatch):
    cpus = threads.Cpus(count=2, online=2, affinity=2, quota=None)
    choice = threads.choose(cpus=cpus, busy=1.0)
    before = torch.get_num_threads()
    undo = threads.apply(choice)  # torch is loaded here: the count changes through set_num_threads
    try:
        assert torch.get_num_threads() == 1
        assert threads.applied() is choice
        assert provenance.machine()["thread_choice"]["threads"] == 1
    finally:
        undo()
    assert torch.get_num_threads() == before
    assert threads.applied() is None
    assert "OMP_NUM_THREADS" not in os.environ


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in USER_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=True
    )


PATCHED_CLI = (
    "import sys, glassnet.threads as t\n"
    "t.other_tasks_running = lambda *a, **k: {busy}\n"
    "from glassnet.cli import main\n"
    "assert main({argv}) == 0\n"
    "import torch, os\n"
    "print('torch was imported' if 'torch' in sys.modules else 'no torch', torch.get_num_threads(),"
    " t.available_cpus().count, os.environ.get('OMP_NUM_THREADS'))\n"
)


def test_the_cli_sets_the_threads_before_torch_loads_and_a_listing_never_loads_it():
    listing = PATCHED_CLI.replace("import torch, os\n", "import os\n").replace("torch.get_num_threads()", "0")
    done = _python(listing.format(busy=99.0, argv="['--debug', 'datasets']"))
    assert done.stdout.splitlines()[-1].startswith("no torch")
    assert done.stderr.startswith("glassnet: threads: 1 of ")
    # a command that imports torch runs with the chosen threads (one, on a machine kept busy) ...
    done = _python(PATCHED_CLI.format(busy=99.0, argv="['models', '--describe', 'mlp', '--data', 'breast-cancer']"))
    assert done.stdout.splitlines()[-1] == "torch was imported 1 " + done.stdout.split()[-2] + " None"
    # ... every available CPU on an idle one, and the user's own setting on any
    done = _python(PATCHED_CLI.format(busy=0.0, argv="['models', '--describe', 'mlp', '--data', 'breast-cancer']"))
    _, _, _, count, available, left = done.stdout.splitlines()[-1].split()
    assert (count, left) == (available, "None")
    done = _python(
        PATCHED_CLI.format(busy=99.0, argv="['models', '--describe', 'mlp', '--data', 'breast-cancer']"),
        OMP_NUM_THREADS="2",
    )
    assert done.stdout.splitlines()[-1].split()[3::2] == ["2", "2"]


def test_debug_says_what_was_chosen_and_main_leaves_nothing_behind(capsys, monkeypatch):
    for name in USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    assert main(["--debug", "datasets"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("glassnet: threads: ") and "CPUs (affinity" in err
    assert "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert main(["datasets", "--debug"]) == 0
    assert "threads: left to OMP_NUM_THREADS=1" in capsys.readouterr().err
