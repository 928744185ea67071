"""The ``serve`` stage: a trained run behind an HTTP API and a web page (``glassnet serve RUN``)."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from glassnet.errors import ConfigError
from glassnet.stages import Stage, register_stage


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run(run: Any, **options: Any) -> dict[str, Any]:
    """Serve ``run`` until interrupted; what was served, for the command line's last line.

    Raises:
        ConfigError: the serving packages are not installed (``pip install 'glassnet[serve]'``).
    """
    missing = [name for name in ("fastapi", "uvicorn", "multipart", "prometheus_client") if not _installed(name)]
    if missing:
        raise ConfigError(
            f"glassnet serve needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            "run `pip install 'glassnet[serve]'`"
        )
    from glassnet.serve import serve

    serve(run, **options)
    return {"run": str(run), "host": options.get("host"), "port": options.get("port")}


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the model (default 1)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (default 1; raise it for large models)"
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnx", "int8"),
        default="torch",
        help="torch (the run's weights), onnx or int8 (ONNX Runtime files from `glassnet compress`)",
    )
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every route but /health")
    p.add_argument("--max-batch", type=int, default=64, help="examples per forward pass at most (default 64)")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="under concurrent traffic, how long a pass waits for more requests (default 0: it takes what "
        "queued during the previous pass)",
    )
    p.add_argument("--queue", type=int, default=1024, help="requests waiting at most; more get 503 (default 1024)")
    p.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body in MB (default 10)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="a request waiting longer gets 504 (default 30)")
    p.add_argument("--cors", nargs="+", metavar="ORIGIN", default=[], help="origins allowed to call from a browser")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "threads": args.threads,
        "backend": args.backend,
        "token": args.token,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "queue_size": args.queue,
        "max_body_bytes": int(args.max_body_mb * 1_000_000),
        "timeout_s": args.timeout_s,
        "cors": args.cors,
    }


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"stopped serving {result['run']}")


STAGE = register_stage(
    Stage(
        name="serve",
        run=run,
        help="serve a trained run over HTTP: predictions, explanations, a web page, metrics",
        description="Serve RUN with FastAPI + uvicorn until interrupted: POST /predict and /explain (JSON arrays, "
        "CSV rows, texts, image/WAV uploads, preprocessed as `glassnet predict` does), POST /act for agents, "
        "GET / (a web page to try the model), /health, /ready, /metrics (Prometheus), /openapi.json. Requests "
        "that arrive within --max-wait-ms share one forward pass. Needs `pip install 'glassnet[serve]'`.",
        arguments=arguments,
        options=options,
        show=show,
        audit=False,
        refreshes_report=False,
        order=95,
    )
)
