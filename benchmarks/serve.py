"""`glassnet serve` (dynamic micro-batching) against the FastAPI endpoint a user would write by hand (issue 17).

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/serve.py \
        [--duration 5] [--repeats 1] [--concurrency 1 8 64] [--models cnn gru] \
        [--tuned="--max-wait-ms 0" --tuned="--workers 2"] [--json PATH]

Trains (or reuses, under ``--runs``, default ``runs/serve-bench``) two runs: the demo CNN on
``digits`` (``DEMO_CONFIG`` with ``--epochs``, default 5) and a GRU on the 3-class ``sentiment``
texts (1 epoch; skipped with a message when ``text/sentiment.csv`` is not under ``GLASSNET_DATA``).
For each run it starts, on 127.0.0.1 at free ports, one uvicorn process per server:

- peer: the endpoint a user writes by hand (``peer_app`` below): FastAPI, a pydantic body
  ``{"inputs": [[...]]}`` (images) or ``{"texts": [...]}`` (text), the run's model loaded once with
  ``glassnet.load``, called once per request under ``torch.inference_mode()``, softmax, the class name
  and probabilities returned. A plain ``def`` endpoint (FastAPI runs it in its thread pool, as its
  documentation advises for blocking code; ``--peer-mode async`` for an ``async def`` one). Texts are
  tokenised with glassnet's ``tokenize`` and the run's vocabulary, indexed once at start-up (the
  ids are checked against ``glassnet.data.text.encode_texts``);
- glassnet: ``python -m glassnet serve RUN --port P`` with its default settings; each
  ``--tuned="OPTIONS"`` adds a glassnet row served with those options (labelled with them).

Both run one uvicorn worker with uvicorn's automatic loop and HTTP parser (uvloop, httptools where
installed), log level ``warning`` (no access log, as ``glassnet serve`` sets it) and the same torch
threads (torch's default, or ``--threads N`` through ``OMP_NUM_THREADS``). Every request carries one
example (a test digit, or one sentiment text, the bodies cycled); before timing, each server
answers every body once and the predicted classes are compared.

The load: a closed loop of N keep-alive connections (concurrency N), each sending its next request
when the previous answer arrived, for ``--duration`` seconds after a ``--warmup`` of the same load,
the servers alternating cell by cell. It comes from ``wrk`` (C, one thread, event loop) when it is
installed (Debian: ``apt-get install wrk``), else from a small asyncio client on raw sockets here.
Nothing is pinned by default: server and load generator share the machine's cores (the client's
CPU share is printed); ``--pin-server 0 --pin-client 1`` pins them with ``taskset``.

Prints one table (requests/s, p50 and p99 latency, errors, the server's CPU ms per request: all its
processes and threads, read from /proc; and for a one-worker glassnet, the mean examples per forward
pass from its /metrics) and the ratios glassnet / peer at each concurrency, then the goal of issue 17
for the demo CNN: >= 3x the peer's throughput at concurrency 64 with p99 <= 50 ms, and no slower than
the peer at concurrency 1.
"""

import argparse
import asyncio
import csv
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEER_RUN_ENV, PEER_MODE_ENV = "GLASSNET_BENCH_PEER_RUN", "GLASSNET_BENCH_PEER_MODE"
BODIES = 16  # distinct request bodies per model, cycled
GOAL_SPEEDUP, GOAL_P99_MS = 3.0, 50.0


# --------------------------------------------------------------------------- the peer (its own process)


def peer_app() -> Any:
    """The hand-written endpoint: ``uvicorn --factory serve:peer_app`` with the run in $GLASSNET_BENCH_PEER_RUN.

    (This module has no ``from __future__ import annotations``: FastAPI reads ``Body``, a local class,
    from the endpoint's annotation, which must be the class itself, not a string.)
    """
    import torch
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel

    import glassnet
    from glassnet.data.text import PAD_INDEX, UNK_INDEX, encode_texts, tokenize

    run = glassnet.load(os.environ[PEER_RUN_ENV])
    model, spec = run.model, run.spec
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    text = spec.modality == "text"
    if text:
        extra = spec.extra
        index = {token: i for i, token in enumerate(extra["vocab"])}
        length = int(extra.get("max_length") or spec.input_shape[0])

        def encode(texts: list[str]) -> torch.Tensor:
            rows = []
            for t in texts:
                ids = [index.get(w, UNK_INDEX) for w in tokenize(t, extra["tokenizer"], extra["lowercase"])[:length]]
                ids = ids or [UNK_INDEX]
                rows.append(ids + [PAD_INDEX] * (length - len(ids)))
            return torch.tensor(rows, dtype=torch.int64)

        probe = ["A first text, with punctuation!", "", "don't stop " * 40]
        assert torch.equal(encode(probe), encode_texts(probe, spec)), "the peer must tokenise as glassnet does"

    class Body(BaseModel):
        inputs: list[list[float]] | None = None
        texts: list[str] | None = None

    def predict(body: Body) -> dict[str, Any]:
        if text:
            if not body.texts:
                raise HTTPException(422, "give texts")
            x = encode(body.texts)
        else:
            if not body.inputs:
                raise HTTPException(422, "give inputs")
            x = torch.tensor(body.inputs, dtype=torch.float32).reshape(-1, *spec.input_shape)
        with torch.inference_mode():
            probabilities = torch.softmax(model(x), dim=1)
        rows = []
        for p in probabilities.tolist():
            best = max(range(len(p)), key=p.__getitem__)
            rows.append({"prediction": names[best], "confidence": p[best], "probabilities": dict(zip(names, p))})
        return {"predictions": rows}

    app = FastAPI()
    if os.environ.get(PEER_MODE_ENV) == "async":

        @app.post("/predict")
        async def predict_async(body: Body) -> dict[str, Any]:
            return predict(body)

    else:
        app.post("/predict")(predict)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --------------------------------------------------------------------------- runs and request bodies


def trained_runs(args: argparse.Namespace) -> dict[str, Path]:
    """The demo CNN and the sentiment GRU, reused from ``--runs`` or trained there."""
    import torch

    from glassnet.config import RunConfig
    from glassnet.errors import DataError
    from glassnet.pipeline import DEMO_CONFIG, train

    configs = {
        "cnn": DEMO_CONFIG.with_overrides({"epochs": args.epochs}),
        "gru": RunConfig(data="sentiment", model="gru", epochs=1, seed=0),
    }
    runs = {}
    for name in args.models:
        path = Path(args.runs) / name
        if (path / "model.json").is_file() and not args.retrain:
            print(f"reusing {path}", flush=True)
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            start = time.perf_counter()
            try:
                train(configs[name], out=path, overwrite=True, progress=None)
            except DataError as exc:
                print(f"skipping {name}: {exc}", flush=True)
                continue
            finally:
                torch.set_num_threads(threads)
            print(f"trained {name} in {time.perf_counter() - start:.0f} s -> {path}", flush=True)
        runs[name] = path
    return runs


def request_bodies(run: Path) -> list[bytes]:
    """``BODIES`` JSON bodies of one example each: test digits, or texts of the sentiment file."""
    import glassnet

    opened = glassnet.load(run)
    if opened.spec.modality == "text":
        from glassnet.data.locate import require_data

        with open(require_data("text/sentiment.csv", "sentiment"), encoding="utf-8", newline="") as handle:
            texts = [row["text"] for _, row in zip(range(5000), csv.DictReader(handle))][-BODIES:]
        return [json.dumps({"texts": [t]}).encode() for t in texts]
    x, _ = opened.split("test")
    return [json.dumps({"inputs": [[round(v, 4) for v in x[i].reshape(-1).tolist()]]}).encode() for i in range(BODIES)]


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on 127.0.0.1 (started, waited for, measured, stopped)."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.label, self.port, self.log = label, port, log
        self.command = command
        self._handle = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, env=env, stdout=self._handle, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.label} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise SystemExit(f"{self.label} did not answer /health within {timeout:.0f} s:\n{self.tail()}")

    def post(self, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def batches(self) -> tuple[float, float] | None:
        """(forward passes, examples) so far from glassnet's /metrics; None for a server without them (the
        peer) or with several workers (each answers /metrics for itself alone)."""
        if not self.label.startswith("glassnet") or "--workers" in self.label or "stand-in" in self.label:
            return None
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            lines = answer.read().decode().splitlines()
        values = {line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("glassnet_batch_size_")}
        return values.get("glassnet_batch_size_count", 0.0), values.get("glassnet_batch_size_sum", 0.0)

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its descendants so far (from /proc; 0 where there is none)."""
        return sum(_proc_cpu(pid) for pid in _descendants(self.process.pid))

    def tail(self, chars: int = 3000) -> str:
        self._handle.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._handle.close()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def source_version() -> str:
    """The checkout's commit, and whether glassnet's source differs from it (read-only git calls)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=ROOT)
    except OSError:
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + (" + uncommitted changes in src/" if dirty.stdout.strip() else "")


def start_servers(run: Path, args: argparse.Namespace, folder: Path) -> list[Server]:
    env = {**os.environ, PEER_RUN_ENV: str(run.resolve()), PEER_MODE_ENV: args.peer_mode}
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    pin = ["taskset", "-c", args.pin_server] if args.pin_server else []
    peer = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "--factory", "serve:peer_app"]
    peer += ["--host", "127.0.0.1", "--port", "PORT", "--workers", "1", "--log-level", "warning"]  # as glassnet's
    specs: list[tuple[str, list[str]]] = [("peer", peer)]
    if args.stand_in:  # before glassnet serve exists: a second copy of the peer in its place
        specs.append(("glassnet (stand-in: the peer)", peer))
    else:
        base = [sys.executable, "-m", "glassnet", "serve", str(run), "--host", "127.0.0.1", "--port", "PORT"]
        specs.append(("glassnet", base))
        for tuned in args.tuned:
            specs.append((f"glassnet {tuned}", base + tuned.split()))
    servers = []
    for i, (label, command) in enumerate(specs):
        port = free_port()
        command = [str(port) if c == "PORT" else c for c in command]
        servers.append(Server(label, pin + command, env, port, folder / f"server{i}.log"))
    for server in servers:
        server.wait_ready()
    return servers


# --------------------------------------------------------------------------- load generators

WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/predict", nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_s": %%f, "errors": %%d, "non_2xx": %%d, "p50_ms": %%f, "p99_ms": %%f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


def wrk_load(port: int, bodies: list[bytes], concurrency: int, duration: float, args: argparse.Namespace) -> dict:
    script = Path(args.tmp) / "post.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f"[==[{b.decode()}]==]" for b in bodies))
    pin = ["taskset", "-c", args.pin_client] if args.pin_client else []
    command = pin + ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
    command += ["-s", str(script), f"http://127.0.0.1:{port}/predict"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    figures = json.loads(line[len("WRKJSON ") :])
    return {
        "requests": figures["requests"],
        "seconds": figures["duration_s"],
        "errors": figures["errors"] + figures["non_2xx"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
    }


async def _python_load(port: int, bodies: list[bytes], concurrency: int, duration: float, cap: int) -> dict:
    requests = [
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(b)}\r\n\r\n".encode()
        + b
        for b in bodies
    ]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def connection(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < stop_at and len(latencies) < cap:
                i += 1
                start = time.perf_counter()
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                size = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        size = int(line[15:])
                await reader.readexactly(size)
                latencies.append(time.perf_counter() - start)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(k) for k in range(concurrency)))
    seconds = time.perf_counter() - start
    latencies.sort()

    def percentile(q: float) -> float:
        return 1e3 * latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] if latencies else float("nan")

    return {
        "requests": len(latencies),
        "seconds": seconds,
        "errors": errors,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
    }


def load(port: int, bodies: list[bytes], concurrency: int, duration: float, args: argparse.Namespace) -> dict:
    """One closed-loop load; adds the generator's own CPU seconds (``client_cpu_s``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    if args.generator == "wrk":
        figures = wrk_load(port, bodies, concurrency, duration, args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before[0].ru_utime - before[0].ru_stime
    else:
        figures = asyncio.run(_python_load(port, bodies, concurrency, duration, args.max_requests))
        after = resource.getrusage(resource.RUSAGE_SELF)
        used = after.ru_utime + after.ru_stime - before[1].ru_utime - before[1].ru_stime
    figures["client_cpu_s"] = used
    return figures


# --------------------------------------------------------------------------- the benchmark


def measure(model: str, run: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from glassnet.errors import DataError

    try:
        bodies = request_bodies(run)
    except DataError as exc:  # a reused sentiment run without the sentiment file to draw texts from
        print(f"skipping {model}: {exc}", flush=True)
        return []
    servers = start_servers(run, args, Path(args.tmp))
    cells = []
    try:
        answers = {s.label: [s.post(b)["predictions"][0]["prediction"] for b in bodies] for s in servers}
        reference = answers[servers[0].label]
        for label, predicted in answers.items():
            same = sum(a == b for a, b in zip(predicted, reference))
            print(f"{model}: {label} answers {same}/{len(bodies)} bodies with the peer's class", flush=True)
        for concurrency in args.concurrency:
            repeats: dict[str, list[dict]] = {s.label: [] for s in servers}
            for _ in range(args.repeats):
                for server in servers:  # alternate, so every server sees the same load over time
                    load(server.port, bodies, concurrency, args.warmup, args)
                    cpu, batches = server.cpu_seconds(), server.batches()
                    figures = load(server.port, bodies, concurrency, args.duration, args)
                    figures["server_cpu_s"] = server.cpu_seconds() - cpu
                    after = server.batches()
                    figures["passes"] = after and after[0] - batches[0]
                    figures["examples"] = after and after[1] - batches[1]
                    repeats[server.label].append(figures)
            for server in servers:
                runs = repeats[server.label]
                requests = sum(r["requests"] for r in runs)
                cell = {
                    "model": model,
                    "concurrency": concurrency,
                    "server": server.label,
                    "requests": requests,
                    "rps": statistics.median(r["requests"] / r["seconds"] for r in runs),
                    "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                    "server_cpu_ms_per_request": 1e3 * sum(r["server_cpu_s"] for r in runs) / max(requests, 1),
                    "client_cpu_share": sum(r["client_cpu_s"] for r in runs) / sum(r["seconds"] for r in runs),
                    "mean_batch": None,
                }
                if runs[0]["passes"] is not None:
                    cell["mean_batch"] = sum(r["examples"] for r in runs) / max(sum(r["passes"] for r in runs), 1)
                cells.append(cell)
                print(
                    f"{model} c={concurrency:<3d} {server.label:40s} {cell['rps']:8.0f} req/s"
                    f"  p50 {cell['p50_ms']:7.1f} ms  p99 {cell['p99_ms']:7.1f} ms  errors {cell['errors']}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()
    return cells


def ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for cell in cells:
        if cell["server"] == "peer":
            continue
        peer = next(
            c
            for c in cells
            if c["server"] == "peer" and c["model"] == cell["model"] and c["concurrency"] == cell["concurrency"]
        )
        rows.append(
            {
                "model": cell["model"],
                "concurrency": cell["concurrency"],
                "server": cell["server"],
                "throughput_ratio": cell["rps"] / peer["rps"],
                "p99_ratio": cell["p99_ms"] / peer["p99_ms"],
                "cpu_per_request_ratio": cell["server_cpu_ms_per_request"] / peer["server_cpu_ms_per_request"],
            }
        )
    return rows


def goals(cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 17's goal for the demo CNN and glassnet's default settings (None where not measured)."""

    def find(items: list[dict], concurrency: int) -> dict | None:
        return next(
            (r for r in items if r["model"] == "cnn" and r["server"] == "glassnet" and r["concurrency"] == concurrency),
            None,
        )

    c64, c1, cell64 = find(rows, 64), find(rows, 1), find(cells, 64)
    return {
        "throughput_ratio_c64": c64 and c64["throughput_ratio"],
        "p99_ms_c64": cell64 and cell64["p99_ms"],
        "met_c64": c64 is not None and c64["throughput_ratio"] >= GOAL_SPEEDUP and cell64["p99_ms"] <= GOAL_P99_MS,
        "throughput_ratio_c1": c1 and c1["throughput_ratio"],
        "met_c1": c1 is not None and c1["throughput_ratio"] >= 1.0,
    }


def print_results(cells: list[dict[str, Any]], rows: list[dict[str, Any]], goal: dict[str, Any]) -> None:
    heads = f"{'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'CPU ms/req':>11s} {'batch':>6s}"
    print(f"\n{'model':6s} {'conc.':>5s}  {'server':40s} {heads}")
    for c in cells:
        print(
            f"{c['model']:6s} {c['concurrency']:5d}  {c['server']:40s} {c['rps']:8.0f} {c['p50_ms']:8.1f}"
            f" {c['p99_ms']:8.1f} {c['errors']:7d} {c['server_cpu_ms_per_request']:11.2f}"
            f" {'-' if c['mean_batch'] is None else format(c['mean_batch'], '6.1f'):>6s}"
        )
    print("\nratio to the peer (same model, same concurrency): throughput, p99 latency, server CPU per request")
    for r in rows:
        print(
            f"{r['model']:6s} c={r['concurrency']:<3d} {r['server']:40s} throughput {r['throughput_ratio']:5.2f}x"
            f"  p99 {r['p99_ratio']:5.2f}x  CPU/request {r['cpu_per_request_ratio']:5.2f}x"
        )
    if goal["throughput_ratio_c64"] is not None:
        print(
            f"\ngoal (demo CNN, concurrency 64): >= {GOAL_SPEEDUP:.0f}x the peer's throughput with p99 <= "
            f"{GOAL_P99_MS:.0f} ms: {goal['throughput_ratio_c64']:.2f}x, p99 {goal['p99_ms_c64']:.1f} ms "
            f"{'PASS' if goal['met_c64'] else 'MISS'}"
        )
    if goal["throughput_ratio_c1"] is not None:
        print(
            f"goal (demo CNN, concurrency 1): no slower than the peer: {goal['throughput_ratio_c1']:.2f}x "
            f"{'PASS' if goal['met_c1'] else 'MISS'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "serve-bench"), help="where the two runs are kept")
    parser.add_argument("--retrain", action="store_true", help="train the runs again even when present")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the demo CNN (5)")
    parser.add_argument("--models", nargs="+", default=["cnn", "gru"], choices=["cnn", "gru"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per cell (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of the same load before each cell (1)")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per cell, alternating servers (median)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per cell (python generator)")
    parser.add_argument(
        "--tuned",
        action="append",
        default=[],
        metavar="OPTIONS",
        help='an extra glassnet row with these `glassnet serve` options, e.g. --tuned="--max-wait-ms 0"',
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads of every server (0: torch's default)")
    parser.add_argument("--peer-mode", choices=["sync", "async"], default="sync", help="def (thread pool) or async def")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--pin-server", default="", metavar="CPUS", help="taskset CPU list of the servers (none)")
    parser.add_argument(
        "--pin-client", default="", metavar="CPUS", help="taskset CPU list of the load generator (none)"
    )
    parser.add_argument(
        "--stand-in", action="store_true", help="a copy of the peer in glassnet's place (tests the script)"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "python"
    if not args.stand_in:
        probe = subprocess.run([sys.executable, "-m", "glassnet", "serve", "--help"], capture_output=True, cwd=ROOT)
        if probe.returncode != 0:
            raise SystemExit(
                "`glassnet serve` is not available here (use --stand-in to test the script against the peer alone)"
            )
    runs = trained_runs(args)
    load_before = os.getloadavg()
    version = source_version()
    print(f"glassnet {version}", flush=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.2f}; generator {args.generator}; pinning server {args.pin_server or 'none'}, "
        f"client {args.pin_client or 'none'}; torch threads {args.threads or 'default'}; "
        f"peer endpoint {args.peer_mode}",
        flush=True,
    )
    start = time.perf_counter()
    cells: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        for model, run in runs.items():
            cells += measure(model, run, args)
    if not cells:
        raise SystemExit("nothing was measured")
    rows = ratios(cells)
    goal = goals(cells, rows)
    print_results(cells, rows, goal)
    load_after = os.getloadavg()
    print(
        f"\nmeasured in {time.perf_counter() - start:.0f} s; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    if args.json:
        record = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "load_before": load_before,
                "load_after": load_after,
            },
            "settings": {k: v for k, v in vars(args).items() if k not in ("tmp", "json")},
            "glassnet": {"at_start": version, "at_end": source_version()},
            "cells": cells,
            "ratios": rows,
            "goal": goal,
        }
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
