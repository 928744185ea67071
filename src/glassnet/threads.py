"""CPU threads that suit the machine as it is: the CPUs a process may really use, and how busy they are.

PyTorch starts one OpenMP thread per core it sees. On a machine that other processes keep busy, or in a
container whose CPU quota is below the cores it sees, those threads wait for cores they do not get and
every parallel operation waits for the slowest of them: ``glassnet demo`` ran 2.5x slower (up to 9x)
with torch's default threads than with one thread while another job kept both cores of a 2-core machine busy.

``choose()`` counts the CPUs available (the affinity mask, a cgroup v2 or v1 CPU quota, else
``os.cpu_count()``), looks at how many other tasks are running now, and picks torch's intra-op
threads: every available CPU on an idle machine, fewer when the others already keep the cores busy.
``apply()`` puts the choice in place: before torch is imported through the environment
(``OMP_NUM_THREADS``), after it through ``torch.set_num_threads``. The command line applies it at
the start of every command, before anything imports torch; Python users call ``configure()``.

A user's own setting always wins: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment leaves
the thread count alone, and ``GLASSNET_THREADS`` chooses: ``off`` (torch's defaults, nothing changed),
a number (that many threads) or ``auto`` (the default). A run's ``threads=`` configuration key still
sets the threads of that run. This module imports nothing heavy; torch only when it is already loaded.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SWITCH = "GLASSNET_THREADS"  # auto (default), off, or a number of threads
USER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
# GNU OpenMP (torch's runtime on Linux) spins this many times for work before a waiting thread sleeps:
# its own value for a team larger than the CPUs, instead of 300,000. A job that starts beside a run keeps
# half its speed instead of a third (benchmarks/busy_machine.py, docs/benchmarks.md); PASSIVE (no spin)
# cost 1.4x on an idle machine.
SPIN_COUNT = "1000"
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
LOAD_SAMPLES = 5  # the fewest tasks running over this many looks, LOAD_INTERVAL_S apart (a momentary task
LOAD_INTERVAL_S = 0.002  # such as a shell starting is not load; a job that keeps the cores busy is)


@dataclass(frozen=True)
class Cpus:
    """The CPUs a process may use.

    Attributes:
        count: the CPUs available: the fewest of the affinity mask and the CPU quota (rounded up), >= 1.
        online: the machine's logical CPUs (``os.cpu_count()``).
        affinity: the CPUs in the process's affinity mask (None where the system has none).
        quota: the cgroup CPU quota in CPUs (``quota / period``; None: no quota).
    """

    count: int
    online: int
    affinity: int | None
    quota: float | None


@dataclass(frozen=True)
class Choice:
    """What ``choose()`` decided.

    Attributes:
        threads: torch's intra-op threads to set; None leaves torch's own setting.
        cpus: the CPUs available.
        busy: other tasks running when it looked (None: not looked, or not measurable here).
        source: who decided: ``auto``, ``GLASSNET_THREADS``, ``OMP_NUM_THREADS`` ... or ``off``.
        environment: variables to set before torch is imported (none set by the user are changed).
    """

    threads: int | None
    cpus: Cpus
    busy: float | None
    source: str
    environment: Mapping[str, str]

    def describe(self) -> str:
        """One line for ``--debug``: ``threads: 2 of 2 CPUs (affinity 2, cgroup quota none, ...)``."""
        cpus = self.cpus
        quota = "none" if cpus.quota is None else f"{cpus.quota:g}"
        affinity = "n/a" if cpus.affinity is None else str(cpus.affinity)
        facts = f"affinity {affinity}, cgroup quota {quota}"
        if self.busy is not None:
            facts += f", {self.busy:g} other tasks running"
        if self.source == "auto":
            chosen = f"{self.threads} of {cpus.count} CPUs ({facts})"
        elif self.threads is None:
            chosen = f"left to {self.source} ({cpus.count} CPUs available: {facts})"
        else:
            chosen = f"{self.threads} by {self.source} ({cpus.count} CPUs available: {facts})"
        extra = "".join(f", {k}={v}" for k, v in self.environment.items() if k not in USER_THREAD_VARIABLES)
        return f"threads: {chosen}{extra}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the choice (the run's provenance keeps it)."""
        return {
            "threads": self.threads,
            "source": self.source,
            "available_cpus": self.cpus.count,
            "affinity": self.cpus.affinity,
            "cgroup_quota": self.cpus.quota,
            "busy": self.busy,
            "environment": dict(self.environment),
            "summary": self.describe(),
        }


_applied: Choice | None = None  # the choice in force in this process (provenance records it)


def affinity_cpus() -> int | None:
    """The CPUs in this process's affinity mask (None where the system cannot say)."""
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):
        return None


def cgroup_quota(root: Path = CGROUP_ROOT, proc: Path = PROC) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5``: one and a half), or None without one.

    Reads cgroup v2's ``cpu.max`` (``"quota period"`` or ``"max period"``) and cgroup v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (``-1``: none), at the hierarchy's root as a container
    sees it and at the process's own cgroup below it; the smallest quota found counts.
    """
    quotas = []
    for directory in _cgroup_directories(root, proc):
        quota = _v2_quota(directory / "cpu.max") or _v1_quota(directory)
        if quota is not None:
            quotas.append(quota)
    return min(quotas) if quotas else None


def _cgroup_directories(root: Path, proc: Path) -> list[Path]:
    """The cgroup directories that may hold this process's CPU limit."""
    candidates = [root, root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"]
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:  # "0::/user.slice/x" (v2) or "4:cpu,cpuacct:/docker/abc" (v1)
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        path = path.strip().lstrip("/")
        if not path:
            continue
        if controllers == "":
            candidates.append(root / path)
        elif "cpu" in controllers.split(","):
            candidates += [root / controllers / path, root / "cpu" / path]
    seen: list[Path] = []
    for candidate in candidates:
        if candidate not in seen and candidate.is_dir():
            seen.append(candidate)
    return seen


def _v2_quota(path: Path) -> float | None:
    try:
        quota, _, period = path.read_text().strip().partition(" ")
        return int(quota) / int(period or 100000) if quota != "max" and int(quota) > 0 else None
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text().strip())
        period = int((directory / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cpus(root: Path = CGROUP_ROOT, proc: Path = PROC) -> Cpus:
    """The CPUs this process may use: the affinity mask and the cgroup quota, else ``os.cpu_count()``."""
    online = os.cpu_count() or 1
    affinity = affinity_cpus()
    quota = cgroup_quota(root, proc)
    count = affinity or online
    if quota is not None:
        count = min(count, max(1, math.ceil(quota - 1e-9)))
    return Cpus(count=max(1, count), online=online, affinity=affinity, quota=quota)


def other_tasks_running(
    samples: int = LOAD_SAMPLES, interval: float = LOAD_INTERVAL_S, proc: Path = PROC
) -> float | None:
    """How many tasks of other processes are running now (None where ``/proc`` cannot say).

    ``/proc/loadavg``'s fourth field counts the tasks running or ready to run at this instant (the
    load averages lag a minute behind and still count the previous command); this process's own
    running threads are taken off, and the fewest of a few looks counts, so that a task that only
    starts (a shell, a compiler's step) is not taken for a job that keeps a core busy.
    """
    seen = []
    for index in range(samples):
        if index:
            time.sleep(interval)
        running = _running_tasks(proc)
        if running is None:
            return None
        seen.append(max(0, running - _own_running_threads(proc)))
    return float(min(seen))


def _running_tasks(proc: Path) -> int | None:
    """The tasks of the whole machine running or ready to run now (``/proc/loadavg``: ``5/300``)."""
    try:
        return int((proc / "loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def _own_running_threads(proc: Path) -> int:
    """This process's threads that are running now (at least the one asking)."""
    count = 0
    try:
        for task in (proc / "self" / "task").iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2 :][:1] == "R":
                count += 1
    except OSError:
        return 1
    return max(1, count)


def choose(
    environ: Mapping[str, str] | None = None,
    cpus: Cpus | None = None,
    busy: float | None | Callable[[], float | None] = None,
) -> Choice:
    """Decide torch's CPU threads for this process (nothing is changed; see ``apply``).

    Args:
        environ: the environment to read the user's settings from (default ``os.environ``).
        cpus: the CPUs available (default: ``available_cpus()``).
        busy: other tasks running now, or a function that counts them (default: ``other_tasks_running``;
            a load that ``/proc`` cannot show leaves every available CPU).

    Returns:
        The ``Choice``: a user's ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` or ``GLASSNET_THREADS=N`` wins;
        ``GLASSNET_THREADS=off`` leaves torch's defaults; otherwise every available CPU that the other
        running tasks leave free, at least one.
    """
    environ = os.environ if environ is None else environ
    cpus = available_cpus() if cpus is None else cpus
    switch = environ.get(SWITCH, "auto").strip().lower() or "auto"
    for name in USER_THREAD_VARIABLES:
        if environ.get(name, "").strip():
            return Choice(None, cpus, None, f"{name}={environ[name].strip()}", {})
    if switch == "off":
        return Choice(None, cpus, None, f"{SWITCH}=off", {})
    if switch != "auto":
        try:
            count = int(switch)
        except ValueError:
            count = 0
        if count < 1:
            from glassnet.errors import ConfigError

            raise ConfigError(f"{SWITCH} must be auto, off or a number of threads >= 1. Received: {switch!r}")
        return Choice(count, cpus, None, f"{SWITCH}={count}", {"OMP_NUM_THREADS": str(count)})
    others = (busy or other_tasks_running)() if busy is None or callable(busy) else busy
    threads = cpus.count
    if others is not None:
        # the running tasks are spread over the machine's CPUs; a thread more than the cores left
        # free waits, and with it every parallel operation
        threads = max(1, min(cpus.count, math.floor(cpus.online - others + 0.5)))
    environment = {"OMP_NUM_THREADS": str(threads)}
    if threads > 1 and not any(environ.get(name, "").strip() for name in WAIT_VARIABLES):
        environment["GOMP_SPINCOUNT"] = SPIN_COUNT
    return Choice(threads, cpus, others, "auto", environment)


def apply(choice: Choice | None = None) -> Callable[[], None]:
    """Put ``choice`` (default: ``choose()``) in force for this process; returns a function that undoes it.

    Before torch is imported the choice goes into ``os.environ`` (which torch and its OpenMP runtime
    read when they load); once torch is loaded only the thread count can still change, through
    ``torch.set_num_threads``. The undo restores both (the command line calls it when a command ends,
    so that ``main()`` called again in the same process starts afresh).
    """
    global _applied
    choice = choose() if choice is None else choice
    saved_env = {name: os.environ.get(name) for name in choice.environment}
    torch = sys.modules.get("torch")
    saved_threads = torch.get_num_threads() if torch is not None else None
    previous = _applied
    if torch is None:
        for name, value in choice.environment.items():
            os.environ.setdefault(name, value)  # never one the user set
    elif choice.threads is not None and choice.threads != saved_threads:
        torch.set_num_threads(choice.threads)
    _applied = choice

    def undo() -> None:
        global _applied
        _restore(os.environ, saved_env)
        loaded = sys.modules.get("torch")
        if loaded is not None and saved_threads is not None and loaded.get_num_threads() != saved_threads:
            loaded.set_num_threads(saved_threads)
        _applied = previous

    return undo


def _restore(environ: MutableMapping[str, str], saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


def configure() -> Choice:
    """Choose and apply the threads for the rest of this Python process; returns the choice.

    Call it before ``import torch`` where you can (the choice then reaches the OpenMP runtime as it
    starts); after, it sets ``torch.set_num_threads``. It changes nothing you set yourself
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``GLASSNET_THREADS``).
    """
    choice = choose()
    apply(choice)
    return choice


def applied() -> Choice | None:
    """The choice in force in this process (None: glassnet chose nothing)."""
    return _applied


def record() -> dict[str, Any]:
    """What the run's provenance keeps: the choice in force, or that glassnet chose nothing."""
    if _applied is not None:
        return _applied.as_dict()
    return {"threads": None, "source": "not chosen by glassnet", "available_cpus": available_cpus().count}


__all__ = [
    "Choice",
    "Cpus",
    "affinity_cpus",
    "applied",
    "apply",
    "available_cpus",
    "cgroup_quota",
    "choose",
    "configure",
    "other_tasks_running",
    "record",
]
