"""The HTTP application: FastAPI routes over a ``ServedModel`` and a ``MicroBatcher``.

Routes: ``POST /predict``, ``POST /explain``, ``POST /act`` (agents), ``POST /synthesize`` (text-to-speech
runs: a WAV file), ``GET /`` (the web page),
``GET /report`` (the run's report card), ``GET /health``, ``GET /ready``, ``GET /metrics``
(Prometheus text) and ``GET /openapi.json``. Every refusal is a JSON body
``{"error": "...", "status": N}`` with a 4xx status; a pure-ASGI guard in front of the routes checks
the bearer token and the declared body size and records every request's latency and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import inspect
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from glassnet.errors import GlassnetError
from glassnet.serve import inputs as parse
from glassnet.serve.batching import MicroBatcher, QueueFull
from glassnet.serve.model import ServedModel

log = logging.getLogger("glassnet.serve")
ROUTES = (
    "/", "/predict", "/explain", "/act", "/synthesize", "/health", "/ready", "/metrics", "/openapi.json", "/report",
)  # fmt: skip
OPEN_ROUTES = ("/health",)  # answered without the token: a load balancer's probe carries none
SETTINGS_VARIABLE = "GLASSNET_SERVE_SETTINGS"  # how ``serve`` hands its settings to worker processes


@dataclass
class ServeSettings:
    """What a server is built with (every field is a ``glassnet serve`` option).

    Attributes:
        run: the run directory.
        backend: ``torch``, ``onnx`` or ``int8``.
        token: when set, every route but ``/health`` needs ``Authorization: Bearer TOKEN``.
        max_batch: examples per forward pass at most.
        max_wait_ms: how long a pass waits for more requests once traffic is concurrent (0: it takes
            what queued during the previous pass, which measured best on 2 cores).
        queue_size: requests waiting at most (more are answered 503).
        max_body_bytes: the largest request body (larger: 413).
        timeout_s: a request waiting longer for its answer gets 504.
        cors: origins allowed to call the API from a browser (none: CORS off).
    """

    run: str
    backend: str = "torch"
    token: str | None = None
    max_batch: int = 64
    max_wait_ms: float = 0.0
    queue_size: int = 1024
    max_body_bytes: int = 10_000_000
    timeout_s: float = 30.0
    cors: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raises ``ConfigError`` for a setting out of range."""
        from glassnet.errors import ConfigError

        for name in ("max_batch", "queue_size", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a whole number >= 1. Received: {value!r}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ConfigError(f"max-wait-ms must be in [0, 1000]. Received: {self.max_wait_ms}")
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout-s must be > 0. Received: {self.timeout_s}")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("--token must be at least 8 characters (a guessable token protects nothing)")


class _Metrics:
    """The Prometheus series of one server (its own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "glassnet_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "glassnet_request_latency_seconds", "Request latency by route", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.batch = Histogram(
            "glassnet_batch_size", "Examples per forward pass", registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )  # fmt: skip
        self.errors = Counter(
            "glassnet_errors", "Refused or failed requests by status", ["status"], registry=self.registry
        )
        self.queue = Gauge("glassnet_queue_requests", "Requests waiting for a forward pass", registry=self.registry)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


class _Guard:
    """Pure-ASGI middleware: token, declared body size, and per-request metrics."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: _Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.expected = f"Bearer {settings.token}".encode() if settings.token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        route = path if path in ROUTES else "other"
        status = 500
        headers = dict(scope["headers"])

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(path, headers)
            if refusal is not None:
                await _answer(sending, *refusal)
            else:
                await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(str(status)).inc()

    def _refusal(self, path: str, headers: dict[bytes, bytes]) -> tuple[int, str, dict[str, str]] | None:
        if self.expected is not None and path not in OPEN_ROUTES:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                why = "a wrong token" if given else "no token"
                return (
                    401,
                    f"this server needs 'Authorization: Bearer TOKEN'; the request had {why}",
                    {"www-authenticate": "Bearer"},
                )
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return 400, "the Content-Length header is not a number", {}
            if size > self.settings.max_body_bytes:
                return 413, _too_large(size, self.settings.max_body_bytes), {}
        return None


async def _answer(send: Any, status: int, message: str, headers: dict[str, str]) -> None:
    body = error_body(status, message)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _too_large(size: int, limit: int) -> str:
    return f"the body is {size:,} bytes; this server takes at most {limit:,} (glassnet serve --max-body-mb)"


def create_app(run: Any, **options: Any) -> Any:
    """A FastAPI application serving ``run``; ``options`` are ``ServeSettings`` fields.

    The model is loaded here (errors surface at once); the batcher starts with the application (use
    ``TestClient(app)`` as a context manager, or any ASGI server).

    Raises:
        RunError, ConfigError: the run cannot be served with these settings.
    """
    settings = ServeSettings(run=str(getattr(run, "path", run)), **options)
    settings.check()
    served = ServedModel(run, settings.backend)
    return _build(served, settings)


def _build(served: ServedModel, settings: ServeSettings) -> Any:
    from glassnet.serve.page import page

    metrics = _Metrics()
    batcher = MicroBatcher(
        served.forward, settings.max_batch, settings.max_wait_ms, settings.queue_size, metrics.batch.observe
    )
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await run_in_threadpool(served.warm_up)
        batcher.start()
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:  # FastAPI >= 0.16x looks it up per request
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title=f"glassnet: {served.name} on {served.spec.name or 'user data'}",
        description="Predictions and explanations of a trained glassnet run.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
        lifespan=lifespan,
        **extra,
    )
    page_html = page(served, settings)

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message, "status": status}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            routes = sorted({route.path for route in app.routes if route.path in ROUTES})
            message = f"no route {request.method} {request.url.path}; routes: {', '.join(routes)}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return refuse(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return refuse(422, str(exc.errors()[:1]))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:  # a bug: logged, answered in JSON
        log.exception("request %s %s failed", request.method, request.url.path)
        return refuse(500, f"the server failed on this request ({type(exc).__name__}); see the server's log")

    async def read(request: Request) -> tuple[torch.Tensor, list[str]]:
        body = await _body(request, settings.max_body_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        key = "observations" if served.control else "inputs"
        if kind in ("application/json", ""):
            return parse.from_json(body, served.spec, served.input_dtype, key)
        if kind == "multipart/form-data":
            request._body = body  # noqa: SLF001 -- the form parser reads the body already read (and bounded)
            form = await request.form(max_files=64, max_fields=64)
            files = [(item.filename or "", await item.read()) for item in form.getlist("file") if hasattr(item, "read")]
            return await run_in_threadpool(parse.from_files, files, served.spec)
        if kind in ("text/csv", "text/plain"):
            suffix = ".csv" if kind == "text/csv" else ".txt"
            return await run_in_threadpool(parse.from_files, [("body" + suffix, body)], served.spec)
        raise _Refused(
            415,
            f"unsupported content type {kind!r}; send application/json, text/csv, text/plain or multipart/form-data",
        )

    async def predicted(request: Request) -> Response:
        try:
            batch, labels = await read(request)
            records = await batcher.submit(batch, settings.timeout_s)
        except _Refused as exc:
            return refuse(exc.status, exc.message)
        except GlassnetError as exc:
            return refuse(400, str(exc))
        except QueueFull as exc:
            return refuse(503, f"the server is overloaded: {exc}; retry shortly")
        except TimeoutError:
            return refuse(504, f"no answer within {settings.timeout_s:g} s (glassnet serve --timeout-s)")
        if not _finite(records):
            return refuse(400, NOT_FINITE)
        answers = [{"input": label, **record} for label, record in zip(labels, records, strict=True)]
        key = "actions" if served.control else "predictions"
        return Response(
            json.dumps({"model": served.name, "backend": served.backend, key: answers}), media_type="application/json"
        )

    body_doc = {
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "inputs": {"type": "array", "items": {}}, "texts": {"type": "array", "items": {"type": "string"}},
                }}},
                "text/csv": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                }}},
            }
        }
    }  # fmt: skip

    if served.synthesis:
        schema = {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}, "speed": {"type": "number", "default": 1.0}},
        }
        speech_doc = {
            "requestBody": {"content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "16-bit PCM WAV", "content": {"audio/wav": {}}}},
        }  # fmt: skip

        @app.post("/synthesize", openapi_extra=speech_doc, summary="The text spoken by the run's voice, as a WAV file")
        async def synthesize(request: Request) -> Response:
            try:
                text, speed = _speech_request(await _body(request, settings.max_body_bytes))
                wav = await asyncio.wait_for(run_in_threadpool(served.speak, text, speed), settings.timeout_s)
            except _Refused as exc:
                return refuse(exc.status, exc.message)
            except GlassnetError as exc:
                return refuse(400, str(exc))
            except TimeoutError:
                return refuse(504, f"no speech within {settings.timeout_s:g} s (glassnet serve --timeout-s)")
            return Response(wav, media_type="audio/wav")

    elif served.control:

        @app.post("/act", openapi_extra=body_doc, summary="The agent's deterministic actions for observations")
        async def act(request: Request) -> Response:
            return await predicted(request)

    else:

        @app.post("/predict", openapi_extra=body_doc, summary="Predictions, as glassnet predict gives them")
        async def predict(request: Request) -> Response:
            return await predicted(request)

        @app.post("/explain", openapi_extra=body_doc, summary="One example's attributions and their picture")
        async def explain(request: Request) -> Response:
            try:
                batch, labels = await read(request)
                answer = await asyncio.wait_for(run_in_threadpool(served.explain, batch), settings.timeout_s)
            except _Refused as exc:
                return refuse(exc.status, exc.message)
            except GlassnetError as exc:
                return refuse(400, str(exc))
            except TimeoutError:
                return refuse(504, f"no explanation within {settings.timeout_s:g} s (glassnet serve --timeout-s)")
            if not _finite(answer):
                return refuse(400, NOT_FINITE)
            return Response(json.dumps({"input": labels[0], **answer}), media_type="application/json")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(page_html)

    @app.get("/report", response_class=HTMLResponse, summary="The run's report card")
    async def report() -> Response:
        path = served.run.report
        if not path.is_file() or not served.run.owns(path):
            return refuse(404, f"this run has no report.html; write it with `glassnet report {settings.run}`")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.get("/health", summary="Whether the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Whether the model is loaded and taking requests")
    async def ready() -> Response:
        body = {"ready": state["ready"], "backend": served.backend, "queue": batcher.waiting}
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        metrics.queue.set(batcher.waiting)
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Guard, settings=settings, metrics=metrics)
    if settings.cors:  # outside the guard: a browser's preflight carries no token, and refusals need the headers
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.state.served, app.state.batcher, app.state.settings = served, batcher, settings
    return app


NOT_FINITE = (
    "the model's output for this input is not finite (NaN or infinite): the input lies far outside the "
    "range the model was trained on"
)


def _finite(value: Any) -> bool:
    """Whether every number in a JSON-ready value is finite (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def _speech_request(body: bytes) -> tuple[str, float]:
    """``text`` and ``speed`` of a ``/synthesize`` body (JSON ``{"text": ..., "speed": ...}``)."""
    try:
        request = json.loads(body or b"null")
    except ValueError as exc:
        raise _Refused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("text"), str):
        raise _Refused(400, 'send JSON {"text": "what to say", "speed": 1.0} (speed optional)')
    speed = request.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise _Refused(400, f"speed must be a number. Received: {speed!r}")
    return request["text"], float(speed)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _body(request: Any, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes even when no Content-Length announced it."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, _too_large(size, limit) + " (the body was cut off here)")
        chunks.append(chunk)
    return b"".join(chunks)


def app_from_environment() -> Any:
    """The application for a worker process that ``serve`` started (settings in the environment)."""
    values = json.loads(os.environ[SETTINGS_VARIABLE])
    threads = values.pop("threads")
    torch.set_num_threads(threads)
    app = create_app(values.pop("run"), **values)
    _freeze_startup_objects()
    return app


def _freeze_startup_objects() -> None:
    """Move what start-up allocated (torch, the model, FastAPI: ~250k objects) out of the garbage
    collector's reach: a full collection walked them all twice a second under load, 120-146 ms each,
    which was the whole p99 tail. Only for a process that ``serve`` owns."""
    gc.collect()
    gc.freeze()


def serve(
    run: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 1,
    graceful_s: float = 10.0,
    **options: Any,
) -> None:
    """Serve ``run`` over HTTP until interrupted (Ctrl-C or SIGTERM let requests in flight finish).

    Args:
        run: the run (``Run`` or directory).
        host, port: where to listen (127.0.0.1 by default: only this machine can connect).
        workers: processes (each loads the model and batches its own requests).
        threads: torch threads per process (1 leaves the other core to the event loop, which measured
            fastest for small models; raise it for large ones).
        graceful_s: how long a shutdown waits for requests in flight.
        **options: ``ServeSettings`` fields (``backend``, ``token``, ``max_batch`` ...).

    Raises:
        RunError, ConfigError: the run cannot be served with these settings (checked before listening).
    """
    import sys

    import uvicorn

    from glassnet.errors import ConfigError

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1. Received: {workers!r}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be in [0, 65535]. Received: {port}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a whole number >= 1. Received: {threads!r}")
    torch.set_num_threads(threads)
    app = create_app(run, **options)  # loads and checks the run before anything listens
    settings: ServeSettings = app.state.settings
    if host not in ("127.0.0.1", "localhost", "::1") and settings.token is None:
        print(
            f"glassnet: warning: serving on {host} without --token: anyone who can reach this machine "
            "can use the model",
            file=sys.stderr,
        )
    print(
        f"glassnet: serving {settings.run} at http://{host}:{port}/ (backend {settings.backend}, "
        f"{workers} worker{'s' if workers > 1 else ''})",
        file=sys.stderr,
        flush=True,
    )
    common = {"host": host, "port": port, "log_level": "warning", "timeout_graceful_shutdown": graceful_s}
    if workers == 1:
        _freeze_startup_objects()
        uvicorn.run(app, **common)
        return
    os.environ[SETTINGS_VARIABLE] = json.dumps({**asdict(settings), "threads": threads})
    uvicorn.run("glassnet.serve.app:app_from_environment", factory=True, workers=workers, **common)
