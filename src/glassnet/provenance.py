"""Provenance: when, how, with what and on which machine a run's files were made.

``capture()`` returns a small JSON-ready mapping that a stage stores beside its results (``train``
keeps it under ``provenance`` in ``results/train.json``) and the report shows in plain words: the date
(UTC), the command line, the versions of glassnet, PyTorch, NumPy and Python, the git commit of the
glassnet source when it runs from a checkout (and whether that checkout had uncommitted changes), the
machine (system, CPU model, CPU count, the threads PyTorch used and why, the GPU when one was used) and the
seed. Nothing here fails: a fact that cannot be found is left out or null.

The command line imports this module to build nothing; torch is imported inside ``capture``.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 10.0  # a git call that takes longer (a network file system, a huge checkout) is given up


def utc_now() -> str:
    """The current time in UTC as an ISO 8601 string to the second (``2026-12-04T16:40:12+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, as a user would type it again.

    ``sys.argv[0]`` is the console script (``.../bin/glassnet``: shown as ``glassnet``), a module run with
    ``python -m`` (``.../glassnet/__main__.py``: ``python -m glassnet``) or a script (``python train.py``);
    the rest is quoted for a POSIX shell.

    Args:
        argv: the arguments to describe (default ``sys.argv``).
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or argv[0] in ("", "-"):
        return "python (interactive session)"
    first, rest = argv[0], argv[1:]
    path = Path(first)
    if first == "-c":
        program = ["python", "-c"]
    elif path.name == "__main__.py":
        program = ["python", "-m", path.parent.name]
    elif path.suffix in (".py", ".pyw") or path.suffix.startswith(".ipy"):
        program = ["python", first]
    else:
        program = [path.name]  # a console script found on PATH (glassnet, pytest, ...)
    return redact_passwords(shlex.join(program + rest))


_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]+:)[^\s@/]+@")


def redact_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it shown as ``***`` (a
    command line or a config may name a tracking or database server with its credentials)."""
    return _PASSWORD.sub(r"\1***@", text)


def capture(seed: int | None = None, device: Any = None) -> dict[str, Any]:
    """The provenance of the work this process is about to do.

    Args:
        seed: the seed that drives Python, NumPy and torch (None: not seeded).
        device: the torch device the work runs on (its GPU's name is recorded when it is a CUDA device).

    Returns:
        ``date``, ``command``, ``versions``, ``git`` (None outside a checkout), ``machine`` and ``seed``.
    """
    return {
        "date": utc_now(),
        "command": command_line(),
        "versions": versions(),
        "git": git_state(Path(__file__).resolve().parent),
        "machine": machine(device),
        "seed": seed,
    }


def versions() -> dict[str, str | None]:
    """The versions of glassnet, PyTorch (and the CUDA it was built with), NumPy and Python."""
    import numpy
    import torch

    from glassnet.version import __version__

    return {
        "glassnet": __version__,
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def git_state(source: Path) -> dict[str, Any] | None:
    """The commit of the git checkout that ``source`` (a directory) is tracked in, and whether it is dirty.

    ``source`` must hold ``__init__.py`` as a tracked file, so a package installed in some other
    project's checkout (a virtual environment inside a repository) is not mistaken for one of its files.
    Uncommitted changes to tracked files make it dirty; untracked files (runs, data) do not.

    Returns:
        ``{"commit": sha, "dirty": bool}``, or None when git is absent, ``source`` is not in a checkout,
        or git fails or takes longer than ``GIT_TIMEOUT_S``.
    """
    if shutil.which("git") is None or not (source / "__init__.py").is_file():
        return None
    if _git(source, "ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    status = _git(source, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return None
    commit, dirty = None, False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "dirty": dirty} if commit else None


def _git(directory: Path, *args: str) -> str | None:
    """The output of ``git args`` run in ``directory`` (None when it fails)."""
    # the checkout found from the directory, never one named by the caller's environment; no index refresh
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def machine(device: Any = None) -> dict[str, Any]:
    """The machine: system, CPU model, logical CPUs (and those this process may use), PyTorch's threads
    (and how glassnet chose them: ``glassnet.threads``), the device and, on a CUDA device, the GPU's name."""
    import torch

    from glassnet import threads

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    kind = getattr(device, "type", None) or (str(device).split(":")[0] if device is not None else None)
    return {
        "system": f"{platform.system()} {platform.release()}".strip() or None,
        "architecture": platform.machine() or None,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "thread_choice": threads.record(),
        "device": None if device is None else str(device),
        "gpu": _gpu_name(device) if kind == "cuda" else ("Apple GPU (MPS)" if kind == "mps" else None),
    }


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS, else the platform's word)."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        text = cpuinfo.read_text(errors="replace") if cpuinfo.is_file() else ""
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model", "cpu"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return " ".join(value.split())
    if sys.platform == "darwin":
        try:
            done = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5, check=False
            )
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or None


def _gpu_name(device: Any) -> str | None:
    import torch

    try:
        return str(torch.cuda.get_device_name(device))
    except Exception:  # noqa: BLE001 - a driver that cannot answer must not fail the run it describes
        return None
