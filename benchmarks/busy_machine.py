"""Time a glassnet command on an idle and on a busy machine, with glassnet's thread choice and fixed ones.

    .venv/bin/python benchmarks/busy_machine.py [--settings auto,off,1,2] [--modes idle,loaded]
        [--repeats 1] [--epochs N] [--command "glassnet demo --no-audit --quiet --out {out}"]

"Loaded" starts one spinning process per available CPU beside the command (each spinner stops by itself
after ``--max-seconds`` even if this script is killed, and is killed when the measurement ends), as another
user's job would; "late" starts them ``--late-delay`` seconds after the command, once it has chosen its
threads. Each setting runs the command in a fresh interpreter:

- ``auto``: glassnet's own choice (nothing set by the user);
- ``off``: ``GLASSNET_THREADS=off``, torch's default threads and OpenMP's default wait policy;
- ``passive``: torch's default threads with ``OMP_WAIT_POLICY=PASSIVE`` only;
- a number ``k``: ``OMP_NUM_THREADS=k`` (a user's explicit setting, which glassnet leaves alone);
- any of these followed by ``/passive`` (``OMP_WAIT_POLICY=PASSIVE``) or ``/spinN`` (GNU OpenMP's
  ``GOMP_SPINCOUNT=N``): ``2/spin1000``.

Prints the wall time of every run, the median per setting and mode, and for each mode the ratio of
``auto`` to the best setting (the goal: <= 1.5 on a loaded machine). ``{out}`` in the command is replaced
by a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_COMMAND = "glassnet demo --no-audit --quiet --out {out}"
SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def available_cpus() -> int:
    """The CPUs this process may use (glassnet's own count when it imports, else the affinity mask)."""
    try:
        from glassnet.threads import available_cpus as counted

        return counted().count
    except ImportError:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def setting_env(setting: str) -> dict[str, str]:
    """The environment of one run: the caller's, without any thread setting, plus the setting's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "GLASSNET_THREADS"}
    }
    threads, _, wait = ("off/passive" if setting == "passive" else setting).partition("/")
    if threads == "off":
        env["GLASSNET_THREADS"] = "off"
    elif threads.isdigit():
        env["OMP_NUM_THREADS"] = threads
    elif threads != "auto":
        raise SystemExit(f"busy_machine.py: unknown setting {setting!r} (auto, off, passive or a number)")
    if wait == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif wait.startswith("spin") and wait[4:].isdigit():
        env["GOMP_SPINCOUNT"] = wait[4:]
    elif wait:
        raise SystemExit(f"busy_machine.py: unknown wait {wait!r} in {setting!r} (passive or spinN)")
    return env


def command_words(command: str, out: Path, epochs: int | None) -> list[str]:
    words = shlex.split(command.replace("{out}", str(out)))
    if words and words[0] == "glassnet":  # the checkout's glassnet in this interpreter, with --debug's threads line
        words = [sys.executable, "-m", "glassnet", "--debug", *words[1:]]
        if epochs is not None and "--epochs" not in words:
            words += ["--epochs", str(epochs)]
    return words


def run_once(
    command: str, setting: str, epochs: int | None, timeout: float, late: Spinners | None = None, delay: float = 0.0
) -> tuple[float, str]:
    """Wall seconds of one run of ``command`` under ``setting``, and glassnet's threads line (if printed).

    With ``late``, those spinners start ``delay`` seconds after the command (once it has chosen its threads).
    """
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as err:
        words = command_words(command, Path(tmp) / "out", epochs)
        start = time.perf_counter()
        process = subprocess.Popen(words, env=setting_env(setting), stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            if late is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=delay)
                with late:
                    code = process.wait(timeout=timeout)
            else:
                code = process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    if code != 0:
        raise SystemExit(f"busy_machine.py: {shlex.join(words)} failed ({code}):\n{stderr[-2000:]}")
    line = next((x for x in stderr.splitlines() if x.startswith("glassnet: threads:")), "")
    return wall, line


class Spinners:
    """``count`` processes spinning on the CPU while the block runs; each stops by itself after ``seconds``."""

    def __init__(self, count: int, seconds: float, settle: float = 1.0) -> None:
        self.count, self.seconds, self.settle = count, seconds, settle
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Spinners:
        code = SPIN.format(seconds=float(self.seconds))
        try:
            for _ in range(self.count):
                self.processes.append(subprocess.Popen([sys.executable, "-c", code], env={"PATH": os.environ["PATH"]}))
        except BaseException:
            self.__exit__()
            raise
        if self.count:
            time.sleep(self.settle)  # the scheduler sees them before the command starts
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes.clear()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--settings", default="auto,off,1,2", help="comma-separated: auto, off, passive, numbers")
    parser.add_argument(
        "--modes", default="idle,loaded", help="comma-separated: idle, loaded, late (the load starts after the command)"
    )
    parser.add_argument("--late-delay", type=float, default=2.0, help="seconds from the command's start to a late load")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting in each mode (median shown)")
    parser.add_argument("--epochs", type=int, help="--epochs for a glassnet command that takes it (the demo's: 30)")
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="the command ({out}: a temporary directory)")
    parser.add_argument("--spinners", type=int, help="busy processes of the loaded mode (default: the available CPUs)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take before it is stopped")
    parser.add_argument(
        "--max-seconds", type=float, default=1800.0, help="hard limit of the spinners' life, whatever happens here"
    )
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    spinners = args.spinners or available_cpus()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {available_cpus()} available")
    print(f"command: {args.command}" + (f" --epochs {args.epochs}" if args.epochs else ""))
    medians: dict[tuple[str, str], float] = {}
    for mode in modes:
        if mode not in {"idle", "loaded", "late"}:
            raise SystemExit(f"busy_machine.py: unknown mode {mode!r} (idle, loaded or late)")
        times: dict[str, list[float]] = {s: [] for s in settings}
        lines: dict[str, str] = {}
        late = Spinners(spinners, args.max_seconds, settle=0.0) if mode == "late" else None
        with Spinners(spinners if mode == "loaded" else 0, args.max_seconds):
            for _ in range(args.repeats):
                for setting in settings:  # interleaved, so every setting sees the same drift
                    wall, line = run_once(args.command, setting, args.epochs, args.timeout, late, args.late_delay)
                    times[setting].append(wall)
                    lines[setting] = line or lines.get(setting, "")
                    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                    print(f"  {mode:6} {setting:8} {wall:7.1f} s   load {load}", flush=True)
        for setting in settings:
            medians[mode, setting] = statistics.median(times[setting])
            print(f"{mode:6} {setting:8} median {medians[mode, setting]:7.1f} s  {lines[setting]}")
        if "auto" in settings:
            best = min(medians[mode, s] for s in settings)
            print(f"{mode:6} auto / best = {medians[mode, 'auto'] / best:.2f}")


if __name__ == "__main__":
    main()
