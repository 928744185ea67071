"""The HTTP API of `glassnet serve` (issue 17): answers, refusals, security, settings, batching, soak.

Four tiny runs are trained once in-process with the command line: a CNN on digits, an MLP on
breast-cancer, a GRU on a generated two-class word CSV and an MLP regressor on diabetes. Each is
served by ``create_app`` behind ``TestClient`` (lifespan run) or ``httpx.ASGITransport`` (the batcher
started by the app's lifespan context), and every answer is checked against
``glassnet.pipeline.predict(run, [file])`` on the same input written as a file. Every refusal must be
a 4xx JSON ``{"error": str, "status": int}``; no answer may be a 5xx or hold NaN/Infinity (invalid JSON).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import gc
import importlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="glassnet serve needs its extra: pip install -e '.[serve]'")
pytest.importorskip("multipart", reason="glassnet serve needs its extra: pip install -e '.[serve]'")
pytest.importorskip("prometheus_client", reason="glassnet serve needs its extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the serve tests drive the app with httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from glassnet.cli import main  # noqa: E402
from glassnet.errors import ConfigError, GlassnetError  # noqa: E402
from glassnet.pipeline import predict  # noqa: E402
from glassnet.serve import create_app  # noqa: E402

TOKEN = "correct-horse-battery-staple"
MB = 1_000_000


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, word_csv: Path) -> dict[str, Path]:
    """Four one-epoch runs trained with the command line: image, tabular, text, regression."""
    root = tmp_path_factory.mktemp("serve-api-runs")
    quiet = ["--epochs", "1", "--quiet"]
    paths = {kind: root / kind for kind in ("image", "tabular", "text", "regression")}
    words = word_csv
    commands = {
        "image": ["--data", "digits", "--model", "cnn"],
        "tabular": ["--data", "breast-cancer", "--model", "mlp", "model.width=16"],
        "text": ["--data", str(words), "--model", "gru", "model.hidden=16", "model.embedding_dim=8"],
        "regression": ["--data", "diabetes", "--model", "mlp", "model.width=16"],
    }
    for kind, args in commands.items():
        assert main(["train", *args, *quiet, "--out", str(paths[kind])]) == 0, f"training the {kind} run failed"
    return paths


@pytest.fixture(scope="module")
def clients(runs: dict[str, Path]) -> Iterator[dict[str, TestClient]]:
    """One started server per run (default settings); a 5xx comes back as a response, not an exception."""
    opened: dict[str, TestClient] = {}
    try:
        for kind, run in runs.items():
            client = TestClient(create_app(run), raise_server_exceptions=False)
            client.__enter__()
            opened[kind] = client
        yield opened
    finally:
        for client in opened.values():
            client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, runs: dict[str, Path]) -> dict[str, Any]:
    """Input files of each kind and the arrays in them (from sklearn's own data)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

    folder = tmp_path_factory.mktemp("serve-api-inputs")
    digits = load_digits()
    images = digits.images[:4]  # 8 x 8, values 0..16
    pngs = []
    for i, image in enumerate(images):
        path = folder / f"digit{i}.png"
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), mode="L").save(path)
        pngs.append(path)
    image_batch = (images / 16).astype(np.float32)[:, None]  # 4 x 1 x 8 x 8
    image_npy = folder / "digits.npy"
    np.save(image_npy, image_batch)

    cancer = load_breast_cancer()
    rows = cancer.data[:6].astype(np.float32)
    table = folder / "rows.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(cancer.feature_names))
        writer.writerows([[f"{v:.6g}" for v in row] for row in rows])
    table_rows = np.array([[float(f"{v:.6g}") for v in row] for row in rows], dtype=np.float32)
    table_npy = folder / "rows.npy"
    np.save(table_npy, table_rows)

    texts = ["sunny happy warm day", "rainy cold dark gloomy", "lovely great", "awful dreary poor sad"]
    text_file = folder / "texts.txt"
    text_file.write_text("\n".join(texts) + "\n")

    diabetes = load_diabetes()
    values = diabetes.data[:5].astype(np.float32)
    regression = folder / "patients.csv"
    regression.write_text("\n".join(",".join(f"{v:.6g}" for v in row) for row in values) + "\n")
    regression_rows = np.array([[float(f"{v:.6g}") for v in row] for row in values], dtype=np.float32)
    regression_npy = folder / "patients.npy"
    np.save(regression_npy, regression_rows)
    return {
        "pngs": pngs,
        "image_batch": image_batch,
        "image_npy": image_npy,
        "table": table,
        "table_rows": table_rows,
        "table_npy": table_npy,
        "texts": texts,
        "text_file": text_file,
        "regression": regression,
        "regression_rows": regression_rows,
        "regression_npy": regression_npy,
    }


# ------------------------------------------------------------------------------------------------ helpers


def _no_constant(name: str) -> Any:
    raise AssertionError(f"the answer holds {name}, which is not JSON (RFC 8259); a browser's JSON.parse fails")


def strict_json(response: httpx.Response) -> Any:
    """The body parsed as strict JSON: NaN and Infinity are refused."""
    return json.loads(response.text, parse_constant=_no_constant)


def predictions(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    body = strict_json(response)
    assert set(body) >= {"model", "backend", "predictions"}
    return body["predictions"]


def refused(response: httpx.Response, status: int | None = None) -> str:
    """Assert a 4xx JSON refusal ``{"error": str, "status": int}`` (``status`` when given); its message."""
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {response.text[:800]}"
    if status is not None:
        assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = strict_json(response)
    assert set(body) == {"error", "status"}, body
    assert isinstance(body["error"], str) and body["error"].strip()
    assert body["status"] == response.status_code
    return body["error"]


def assert_same(served: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Served answers equal ``glassnet predict``'s records (prediction, confidence) in order."""
    assert len(served) == len(expected)
    for got, want in zip(served, expected, strict=True):
        if isinstance(want["prediction"], (str, int)) and not isinstance(want["prediction"], float):
            assert got["prediction"] == want["prediction"], (got, want)
        else:
            assert got["prediction"] == pytest.approx(want["prediction"], rel=1e-4, abs=1e-4), (got, want)
        if "confidence" in want:
            assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-4), (got, want)
            assert got["probabilities"][got["prediction"]] == pytest.approx(got["confidence"], abs=1e-4)
            assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-2)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def post_json(client: TestClient, body: str | bytes, path: str = "/predict") -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def serving(app: Any, work: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Run ``work(client)`` against ``app`` in this event loop, its lifespan (model warm-up, batcher) run."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://glassnet.test", timeout=60) as client:
            return await work(client)


def rss_mb() -> float:
    """This process's resident memory in MB (psutil is not a dependency: /proc, else getrusage)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------- answers: /predict


def test_image_json_shaped_flat_and_batched_equal_glassnet_predict(clients, runs, samples):
    expected = predict(runs["image"], [str(samples["image_npy"])])
    batch = samples["image_batch"]
    shaped = predictions(clients["image"].post("/predict", json={"inputs": batch.tolist()}))
    assert [a["input"] for a in shaped] == [f"inputs[{i}]" for i in range(len(batch))]
    assert_same(shaped, expected)
    flat = predictions(clients["image"].post("/predict", json={"inputs": batch.reshape(len(batch), -1).tolist()}))
    assert_same(flat, expected)
    squeezed = predictions(clients["image"].post("/predict", json={"inputs": batch[:, 0].tolist()}))  # N x 8 x 8
    assert_same(squeezed, expected)
    single = predictions(clients["image"].post("/predict", json={"inputs": batch[2].reshape(-1).tolist()}))
    assert_same(single, expected[2:3])


def test_image_png_and_npy_uploads_equal_glassnet_predict(clients, runs, samples):
    pngs = samples["pngs"]
    for png in pngs[:2]:
        answer = predictions(
            clients["image"].post("/predict", files={"file": (png.name, png.read_bytes(), "image/png")})
        )
        assert answer[0]["input"] == png.name
        assert_same(answer, predict(runs["image"], [str(png)]))
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in pngs]
    files.append(("file", ("batch.npy", samples["image_npy"].read_bytes(), "application/octet-stream")))
    together = predictions(clients["image"].post("/predict", files=files))
    assert_same(together, predict(runs["image"], [*map(str, pngs), str(samples["image_npy"])]))
    assert [a["input"] for a in together[: len(pngs)]] == [p.name for p in pngs]
    assert [a["input"] for a in together[len(pngs) :]] == [f"batch.npy[{i}]" for i in range(4)]


def test_tabular_csv_body_csv_upload_npy_and_json_equal_glassnet_predict(clients, runs, samples):
    expected = predict(runs["tabular"], [str(samples["table"])])
    client = clients["tabular"]
    body = samples["table"].read_bytes()
    assert_same(predictions(client.post("/predict", content=body, headers={"content-type": "text/csv"})), expected)
    headless = b"\n".join(body.splitlines()[1:])  # the header line is optional
    assert_same(predictions(client.post("/predict", content=headless, headers={"content-type": "text/csv"})), expected)
    upload = predictions(client.post("/predict", files={"file": ("rows.csv", body, "text/csv")}))
    assert [a["input"] for a in upload] == [r["input"].replace(str(samples["table"]), "rows.csv") for r in expected]
    assert_same(upload, expected)
    assert_same(
        predictions(client.post("/predict", files={"file": ("rows.npy", npy_bytes(samples["table_rows"]))})), expected
    )
    assert_same(predictions(client.post("/predict", json={"inputs": samples["table_rows"].tolist()})), expected)
    assert_same(predictions(client.post("/predict", json={"inputs": samples["table_rows"][0].tolist()})), expected[:1])


def test_rows_far_outside_the_training_data_say_so_in_their_own_records(clients, samples):
    """Random numbers fed to the breast-cancer model used to get a confident answer and no word of doubt;
    each record now says so, like `glassnet predict` (other records of the batch stay as they were)."""
    real = samples["table_rows"][0].tolist()
    far = [1000.0 * (i + 1) for i in range(len(real))]
    records = predictions(clients["tabular"].post("/predict", json={"inputs": [real, far]}))
    assert "in_range" not in records[0] and "warning" not in records[0]
    assert records[1]["in_range"] is False
    assert "outside the training range" in records[1]["warning"] and "meaningless" in records[1]["warning"]


def test_text_plain_texts_json_uploads_and_token_ids_equal_glassnet_predict(clients, runs, samples):
    from glassnet.data.text import encode_texts
    from glassnet.train.run import Run

    client, texts = clients["text"], samples["texts"]
    expected = predict(runs["text"], [str(samples["text_file"])])
    assert len(expected) == len(texts)
    plain = "\n".join(texts).encode()
    assert_same(predictions(client.post("/predict", content=plain, headers={"content-type": "text/plain"})), expected)
    by_json = predictions(client.post("/predict", json={"texts": texts}))
    assert [a["input"] for a in by_json] == [f"texts[{i}]" for i in range(len(texts))]
    assert_same(by_json, expected)
    assert_same(predictions(client.post("/predict", files={"file": ("t.txt", plain, "text/plain")})), expected)
    table = "text\n" + "\n".join(texts) + "\n"
    assert_same(predictions(client.post("/predict", files={"file": ("t.csv", table.encode(), "text/csv")})), expected)
    ids = encode_texts(texts, Run.open(runs["text"]).spec)
    assert_same(predictions(client.post("/predict", json={"inputs": ids.tolist()})), expected)
    assert {a["prediction"] for a in by_json} <= {"good", "bad"}


def test_regression_values_equal_glassnet_predict(clients, runs, samples):
    client = clients["regression"]
    expected = predict(runs["regression"], [str(samples["regression"])])
    assert all(isinstance(r["prediction"], float) and "confidence" not in r for r in expected)
    by_csv = predictions(
        client.post("/predict", content=samples["regression"].read_bytes(), headers={"content-type": "text/csv"})
    )
    assert_same(by_csv, expected)
    assert all("probabilities" not in a and "confidence" not in a for a in by_csv)
    assert_same(predictions(client.post("/predict", json={"inputs": samples["regression_rows"].tolist()})), expected)
    upload = client.post("/predict", files={"file": ("p.npy", samples["regression_npy"].read_bytes())})
    assert_same(predictions(upload), predict(runs["regression"], [str(samples["regression_npy"])]))


def test_the_answer_names_the_model_and_the_backend(clients):
    body = strict_json(clients["tabular"].post("/predict", json={"inputs": [[1.0] * 30]}))
    assert body["model"] == "mlp" and body["backend"] == "torch"


# --------------------------------------------------------------------------------------- answers: /explain


def _decoded_png(answer: dict[str, Any]) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(answer["overlay_png"], validate=True)))
    picture.load()
    assert picture.format == "PNG" and picture.width > 10 and picture.height > 10
    return picture


def test_explain_image_gives_attributions_shaped_like_the_input_and_a_png(clients, runs, samples):
    png = samples["pngs"][0]
    response = clients["image"].post("/explain", files={"file": (png.name, png.read_bytes(), "image/png")})
    assert response.status_code == 200, response.text[:500]
    answer = strict_json(response)
    assert np.asarray(answer["attributions"]).shape == (1, 8, 8)
    assert answer["method"] and answer["input"] == png.name
    (expected,) = predict(runs["image"], [str(png)])
    assert_same([answer], [expected])
    _decoded_png(answer)


def test_explain_tabular_text_and_regression(clients, samples):
    tabular = clients["tabular"].post("/explain", json={"inputs": [samples["table_rows"][0].tolist()]})
    assert tabular.status_code == 200, tabular.text[:500]
    answer = strict_json(tabular)
    assert np.asarray(answer["attributions"]).shape == (30,)
    _decoded_png(answer)

    text = clients["text"].post("/explain", json={"texts": ["sunny happy warm"]})
    assert text.status_code == 200, text.text[:500]
    answer = strict_json(text)
    assert len(answer["tokens"]) == 8 and answer["tokens"][:3] == ["sunny", "happy", "warm"]
    assert len(answer["attributions"]) == 8
    _decoded_png(answer)

    regression = clients["regression"].post("/explain", json={"inputs": samples["regression_rows"][:1].tolist()})
    assert regression.status_code == 200, regression.text[:500]
    answer = strict_json(regression)
    assert np.asarray(answer["attributions"]).shape == (10,) and isinstance(answer["prediction"], float)
    _decoded_png(answer)


# -------------------------------------------------------------------------------- health, metrics, schema


def test_health_ready_and_openapi(clients):
    client = clients["tabular"]
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["backend"] == "torch"
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    document = strict_json(schema)
    assert "/predict" in document["paths"] and "post" in document["paths"]["/predict"]
    assert "/explain" in document["paths"]
    kinds = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "multipart/form-data"} <= set(kinds)


def test_metrics_parse_and_move_after_requests(clients):
    client = clients["tabular"]
    before = metric_samples(client.get("/metrics").text)
    ok_key = ("glassnet_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "200")))
    bad_key = ("glassnet_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "400")))
    for _ in range(3):
        predictions(client.post("/predict", json={"inputs": [[1.0] * 30]}))
    refused(post_json(client, "{not json"), 400)
    refused(client.get("/no/such/route"), 404)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = metric_samples(response.text)
    assert after[ok_key] - before.get(ok_key, 0) == 3
    assert after[bad_key] - before.get(bad_key, 0) == 1
    other = ("glassnet_requests_total", (("method", "GET"), ("route", "other"), ("status", "404")))
    assert after[other] >= 1
    assert after[("glassnet_batch_size_count", ())] - before.get(("glassnet_batch_size_count", ()), 0) >= 1
    assert any(name == "glassnet_batch_size_bucket" for name, _ in after)
    assert any(name == "glassnet_request_latency_seconds_bucket" for name, _ in after)
    assert ("glassnet_queue_requests", ()) in after
    assert after[("glassnet_errors_total", (("status", "400"),))] >= 1


def test_home_page_is_html_and_loads_nothing_from_other_hosts(clients):
    for kind, client in clients.items():
        response = client.get("/")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), kind
        page = response.text
        assert "<html" in page.lower() and 'id="submit"' in page
        urls = re.findall(r"(?:https?:)?//[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", page)
        assert not [u for u in urls if u.startswith("http")], f"{kind} page links other hosts: {urls}"
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), f"{kind} page loads a URL"
        assert "@import" not in page


def test_report_is_404_json_when_absent_and_served_when_present(clients, runs):
    client, report = clients["regression"], runs["regression"] / "report.html"
    assert not report.exists()
    message = refused(client.get("/report"), 404)
    assert "glassnet report" in message
    report.write_text("<!doctype html><html><body><h1>the report card of this run</h1></body></html>")
    try:
        response = client.get("/report")
        assert response.status_code == 200 and "the report card of this run" in response.text
        assert response.headers["content-type"].startswith("text/html")
    finally:
        report.unlink()
    refused(client.get("/report"), 404)


# ---------------------------------------------------------------------------------------------- refusals


def _nan_body(size: int, constant: str) -> str:
    return '{"inputs": [[' + ", ".join([constant] + ["0"] * (size - 1)) + "]]}"


_NOT_A_PNG = b"this is plain text pretending to be a picture"
_CUT_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"
REFUSALS: list[tuple[str, str, str, str, dict[str, Any], int]] = [
    ("malformed JSON", "tabular", "POST", "/predict", {"content": b'{"inputs": [[1, 2', "json": True}, 400),
    ("JSON list at top", "tabular", "POST", "/predict", {"content": b"[[1, 2, 3]]", "json": True}, 400),
    ("JSON string at top", "tabular", "POST", "/predict", {"content": b'"inputs"', "json": True}, 400),
    ("missing key", "tabular", "POST", "/predict", {"content": b'{"rows": [[1]]}', "json": True}, 400),
    ("empty body", "tabular", "POST", "/predict", {"content": b"", "json": True}, 400),
    ("empty inputs", "tabular", "POST", "/predict", {"content": b'{"inputs": []}', "json": True}, 400),
    ("wrong width", "tabular", "POST", "/predict", {"content": b'{"inputs": [[1, 2, 3]]}', "json": True}, 400),
    (
        "ragged rows",
        "tabular",
        "POST",
        "/predict",
        {"content": json.dumps({"inputs": [[1] * 30, [1] * 29]}), "json": True},
        400,
    ),
    (
        "wrong image shape",
        "image",
        "POST",
        "/predict",
        {"content": json.dumps({"inputs": [[[0] * 7] * 7]}), "json": True},
        400,
    ),
    ("NaN", "tabular", "POST", "/predict", {"content": _nan_body(30, "NaN"), "json": True}, 400),
    ("Infinity", "image", "POST", "/predict", {"content": _nan_body(64, "Infinity"), "json": True}, 400),
    ("-Infinity", "regression", "POST", "/predict", {"content": _nan_body(10, "-Infinity"), "json": True}, 400),
    ("1e400", "tabular", "POST", "/predict", {"content": _nan_body(30, "1e400"), "json": True}, 400),
    ("beyond float32", "tabular", "POST", "/predict", {"content": _nan_body(30, "1e39"), "json": True}, 400),
    (
        "integer too large for a float",
        "tabular",
        "POST",
        "/predict",
        {"content": _nan_body(30, "1" + "0" * 400), "json": True},
        400,
    ),
    ("strings", "tabular", "POST", "/predict", {"content": json.dumps({"inputs": [["a"] * 30]}), "json": True}, 400),
    ("null example", "tabular", "POST", "/predict", {"content": b'{"inputs": [null]}', "json": True}, 400),
    ("objects", "tabular", "POST", "/predict", {"content": json.dumps({"inputs": [{"x": 1}]}), "json": True}, 400),
    (
        "deep nesting",
        "tabular",
        "POST",
        "/predict",
        {"content": '{"inputs": ' + "[" * 50_000 + "]" * 50_000 + "}", "json": True},
        400,
    ),
    (
        "token id out of range",
        "text",
        "POST",
        "/predict",
        {"content": json.dumps({"inputs": [[100_000] + [0] * 7]}), "json": True},
        400,
    ),
    (
        "fractional token id",
        "text",
        "POST",
        "/predict",
        {"content": json.dumps({"inputs": [[2.5] + [0] * 7]}), "json": True},
        400,
    ),
    (
        "negative token id",
        "text",
        "POST",
        "/predict",
        {"content": json.dumps({"inputs": [[-1] + [0] * 7]}), "json": True},
        400,
    ),
    ("texts not strings", "text", "POST", "/predict", {"content": b'{"texts": [1, 2]}', "json": True}, 400),
    ("texts empty", "text", "POST", "/predict", {"content": b'{"texts": []}', "json": True}, 400),
    (
        "token ids out of range in .npy",
        "text",
        "POST",
        "/predict",
        {"files": {"file": ("ids.npy", npy_bytes(np.full((1, 8), 100_000)))}},
        400,
    ),
    (
        "negative token ids in .npy",
        "text",
        "POST",
        "/predict",
        {"files": {"file": ("ids.npy", npy_bytes(np.full((1, 8), -3)))}},
        400,
    ),
    (
        "text not UTF-8",
        "text",
        "POST",
        "/predict",
        {"content": "sunny day".encode("utf-16"), "headers": {"content-type": "text/plain"}},
        400,
    ),
    (
        "image not an image",
        "image",
        "POST",
        "/predict",
        {"files": {"file": ("digit.png", _NOT_A_PNG, "image/png")}},
        400,
    ),
    ("truncated png", "image", "POST", "/predict", {"files": {"file": ("digit.png", _CUT_PNG, "image/png")}}, 400),
    (
        "unknown suffix",
        "image",
        "POST",
        "/predict",
        {"files": {"file": ("digit.exe", b"MZ\x90\x00", "application/octet-stream")}},
        400,
    ),
    ("no suffix", "image", "POST", "/predict", {"files": {"file": ("digit", b"\x89PNG", "image/png")}}, 400),
    (
        "npy of the wrong shape",
        "image",
        "POST",
        "/predict",
        {"files": {"file": ("x.npy", npy_bytes(np.zeros((2, 3))))}},
        400,
    ),
    ("npy not numpy", "image", "POST", "/predict", {"files": {"file": ("x.npy", b"\x93NUMPY broken")}}, 400),
    ("npy of pickled objects", "image", "POST", "/predict", {"files": {"file": ("x.npy", b"")}, "pickle": True}, 400),
    (
        "npy NaN",
        "tabular",
        "POST",
        "/predict",
        {"files": {"file": ("x.npy", npy_bytes(np.full((1, 30), np.nan)))}},
        400,
    ),
    (
        "csv to an image model",
        "image",
        "POST",
        "/predict",
        {"content": b"1,2,3", "headers": {"content-type": "text/csv"}},
        400,
    ),
    (
        "text to a tabular model",
        "tabular",
        "POST",
        "/predict",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        400,
    ),
    (
        "csv of the wrong width",
        "tabular",
        "POST",
        "/predict",
        {"content": b"1,2,3\n", "headers": {"content-type": "text/csv"}},
        400,
    ),
    (
        "csv of words",
        "regression",
        "POST",
        "/predict",
        {"content": ("a," * 9 + "a\n").encode(), "headers": {"content-type": "text/csv"}},
        400,
    ),
    ("empty csv", "tabular", "POST", "/predict", {"content": b"", "headers": {"content-type": "text/csv"}}, 400),
    (
        "wrong content type",
        "tabular",
        "POST",
        "/predict",
        {"content": b"<rows/>", "headers": {"content-type": "application/xml"}},
        415,
    ),
    (
        "image content type",
        "image",
        "POST",
        "/predict",
        {"content": b"\x89PNG", "headers": {"content-type": "image/png"}},
        415,
    ),
    (
        "empty multipart",
        "image",
        "POST",
        "/predict",
        {"content": b"--xyz--\r\n", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
        400,
    ),
    (
        "multipart without boundary",
        "image",
        "POST",
        "/predict",
        {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
        400,
    ),
    (
        "multipart of another field",
        "image",
        "POST",
        "/predict",
        {"files": {"picture": ("d.png", b"x", "image/png")}},
        400,
    ),
    (
        "multipart of 65 files",
        "image",
        "POST",
        "/predict",
        {"files": [("file", (f"d{i}.png", b"x", "image/png")) for i in range(65)]},
        400,
    ),
    (
        "Content-Length not a number",
        "tabular",
        "POST",
        "/predict",
        {"content": b"{}", "headers": {"content-type": "application/json", "content-length": "lots"}},
        400,
    ),
    (
        "explain of 2 examples",
        "tabular",
        "POST",
        "/explain",
        {"content": json.dumps({"inputs": [[1] * 30, [2] * 30]}), "json": True},
        400,
    ),
    ("explain of nothing", "image", "POST", "/explain", {"content": b"{}", "json": True}, 400),
    ("unknown route", "tabular", "GET", "/predictions", {}, 404),
    ("unknown POST route", "tabular", "POST", "/v1/predict", {"content": b"{}", "json": True}, 404),
    ("agent route on a classifier", "tabular", "POST", "/act", {"content": b"{}", "json": True}, 404),
    ("GET /predict", "tabular", "GET", "/predict", {}, 405),
    ("DELETE /health", "tabular", "DELETE", "/health", {}, 405),
    ("POST /health", "tabular", "POST", "/health", {}, 405),
]


def _request(client: TestClient, method: str, path: str, spec: dict[str, Any]) -> httpx.Response:
    spec = dict(spec)
    headers = dict(spec.pop("headers", {}))
    if spec.pop("json", False):
        headers["content-type"] = "application/json"
    if spec.pop("pickle", False):
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        spec["files"] = {"file": ("x.npy", buffer.getvalue())}
    return client.request(method, path, headers=headers, **spec)


@pytest.mark.parametrize(
    ("kind", "method", "path", "spec", "status"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_bad_request_gets_a_4xx_json_error_never_a_5xx(clients, kind, method, path, spec, status):
    refused(_request(clients[kind], method, path, spec), status)


def test_refusals_say_what_was_wrong(clients):
    assert "not valid JSON" in refused(post_json(clients["tabular"], "{oops"))
    assert "NaN or infinite" in refused(post_json(clients["tabular"], _nan_body(30, "NaN")))
    assert "30 numbers" in refused(post_json(clients["tabular"], '{"inputs": [[1, 2]]}'))
    assert "vocabulary" in refused(post_json(clients["text"], json.dumps({"inputs": [[999] * 8]})))
    assert "digit.png" in refused(clients["image"].post("/predict", files={"file": ("digit.png", _NOT_A_PNG)}))
    assert "unsupported content type" in refused(
        clients["tabular"].post("/predict", content=b"x", headers={"content-type": "application/xml"})
    )
    assert "one example" in refused(clients["tabular"].post("/explain", json={"inputs": [[1] * 30, [2] * 30]}))
    assert "/predict" in refused(clients["tabular"].get("/nowhere"))  # the 404 lists the routes


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("tabular", "json"),
        ("regression", "json"),
        ("image", "json"),
        ("tabular", "csv"),
        ("tabular", "npy"),
        ("image", "explain"),
    ],
)
def test_extreme_finite_inputs_never_give_nan_or_infinity_in_the_answer(clients, kind, how):
    """Numbers within float32's range that overflow the network must not come back as NaN/Infinity
    (invalid JSON): a 4xx refusal or finite answers."""
    client = clients[kind]
    size = {"tabular": 30, "regression": 10, "image": 64}[kind]
    if how == "json":
        response = client.post("/predict", json={"inputs": [[3e38] * size]})
    elif how == "explain":
        response = client.post("/explain", json={"inputs": [[3e38] * size]})
    elif how == "csv":
        response = client.post(
            "/predict", content=",".join(["3e38"] * size).encode(), headers={"content-type": "text/csv"}
        )
    else:  # float64 values beyond float32: finite as read, infinite once cast
        response = client.post("/predict", files={"file": ("big.npy", npy_bytes(np.full((1, size), 1e300)))})
    assert response.status_code < 500, response.text[:500]
    strict_json(response)
    if response.status_code != 200:
        refused(response)


def test_the_server_is_healthy_after_the_refusals(clients):
    for client in clients.values():
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 200
    predictions(clients["tabular"].post("/predict", json={"inputs": [[1.0] * 30]}))


# ------------------------------------------------------------------------------------------- body limits


def test_a_100_mb_body_is_refused_with_413_declared_or_streamed(runs):
    """413 before reading a declared 100 MB body; a chunked one (no Content-Length) cut off near the limit."""
    app = create_app(runs["tabular"])
    pulled = {"declared": 0, "streamed": 0}

    def chunks(key: str) -> Callable[[], AsyncIterator[bytes]]:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100):
                pulled[key] += 1
                yield b"1" * MB

        return body

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        declared = await client.post(
            "/predict",
            content=chunks("declared")(),
            headers={"content-type": "application/json", "content-length": str(100 * MB)},
        )
        streamed = await client.post("/predict", content=chunks("streamed")(), headers={"content-type": "text/csv"})
        multipart = await client.post(
            "/predict",
            content=chunks("streamed")(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        health = await client.get("/health")
        return [declared, streamed, multipart, health]

    declared, streamed, multipart, health = asyncio.run(serving(app, work))
    assert "max-body-mb" in refused(declared, 413)
    assert pulled["declared"] <= 1, f"the server read {pulled['declared']} MB of a body it had to refuse"
    assert "cut off" in refused(streamed, 413)
    refused(multipart, 413)
    assert pulled["streamed"] <= 2 * 12, f"the server read {pulled['streamed']} MB of two 100 MB bodies (limit 10)"
    assert health.json() == {"status": "ok"}


def test_the_body_limit_is_configurable(runs):
    with TestClient(create_app(runs["tabular"], max_body_bytes=1000), raise_server_exceptions=False) as client:
        assert "1,000" in refused(client.post("/predict", json={"inputs": [[1.0] * 30] * 20}), 413)
        predictions(client.post("/predict", json={"inputs": [[1.0] * 30]}))
        big = b"x" * 100 * MB  # with its Content-Length, through the test client
        refused(client.post("/predict", content=big, headers={"content-type": "application/json"}), 413)


# --------------------------------------------------------------------------------- timeouts and overload


def _slowed(app: Any, seconds: float) -> None:
    """Make every forward pass of ``app`` take ``seconds`` longer."""
    batcher = app.state.batcher
    original = batcher.forward

    def slow(inputs: Any) -> Any:
        time.sleep(seconds)
        return original(inputs)

    batcher.forward = slow


def test_a_request_waiting_past_timeout_s_gets_504_and_the_server_goes_on(runs):
    app = create_app(runs["tabular"], timeout_s=0.2)
    with TestClient(app, raise_server_exceptions=False) as client:
        _slowed(app, 0.6)
        response = client.post("/predict", json={"inputs": [[1.0] * 30]})
        assert response.status_code == 504, response.text  # by design: the one 5xx besides 503 (overload)
        body = strict_json(response)
        assert body["status"] == 504 and "timeout-s" in body["error"]
        app.state.batcher.forward = app.state.served.forward
        time.sleep(0.6)
        predictions(client.post("/predict", json={"inputs": [[1.0] * 30]}))


def test_a_full_queue_is_answered_503_and_the_others_200(runs):
    app = create_app(runs["tabular"], queue_size=1, max_batch=1, max_wait_ms=0)
    _slowed(app, 0.3)

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(*(client.post("/predict", json={"inputs": [[float(i)] * 30]}) for i in range(6)))

    answers = asyncio.run(serving(app, work))
    statuses = sorted(r.status_code for r in answers)
    assert 503 in statuses and 200 in statuses, statuses
    assert set(statuses) <= {200, 503}
    for response in answers:
        if response.status_code == 503:
            assert "overloaded" in strict_json(response)["error"]


# ---------------------------------------------------------------------------------------------- security


ROUTES = [
    ("GET", "/"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/report"),
    ("GET", "/no/such/route"),
    ("POST", "/predict"),
    ("POST", "/explain"),
]


def test_a_token_guards_every_route_but_health(runs):
    app = create_app(runs["tabular"], token=TOKEN)
    good = {"inputs": [[1.0] * 30]}
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in ROUTES:
            kwargs = {"json": good} if method == "POST" else {}
            for headers in ({}, {"Authorization": "Bearer wrong-token-123"}, {"Authorization": TOKEN},
                            {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}):  # fmt: skip
                response = client.request(method, path, headers=headers, **kwargs)
                assert "Authorization" in refused(response, 401), (method, path, headers)
                assert response.headers.get("www-authenticate") == "Bearer"
        assert client.get("/health").json() == {"status": "ok"}
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/", headers=right).status_code == 200
        assert client.get("/ready", headers=right).status_code == 200
        assert client.get("/metrics", headers=right).status_code == 200
        assert client.get("/openapi.json", headers=right).status_code == 200
        refused(client.get("/report", headers=right), 404)
        predictions(client.post("/predict", json=good, headers=right))
        assert client.post("/explain", json=good, headers=right).status_code == 200
        # the token is checked before the body is read: no reading of what a stranger sends
        refused(client.post("/predict", content=b"x" * 20 * MB, headers={"content-type": "text/csv"}), 401)


@pytest.mark.parametrize("token", ["", "short", "1234567"])
def test_a_short_token_is_refused_at_creation(runs, token):
    with pytest.raises(ConfigError, match="at least 8"):
        create_app(runs["tabular"], token=token)


def test_cors_is_off_by_default(clients):
    origin = {"Origin": "http://client.example"}
    response = clients["tabular"].get("/health", headers=origin)
    assert "access-control-allow-origin" not in response.headers
    response = clients["tabular"].post("/predict", json={"inputs": [[1.0] * 30]}, headers=origin)
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    preflight = clients["tabular"].options("/predict", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400


def test_cors_allows_only_the_origins_asked_for(runs):
    allowed, other = "http://client.example", "http://evil.example"
    with TestClient(create_app(runs["tabular"], cors=[allowed]), raise_server_exceptions=False) as client:
        response = client.post("/predict", json={"inputs": [[1.0] * 30]}, headers={"Origin": allowed})
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == allowed
        preflight = client.options(
            "/predict",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == allowed
        response = client.post("/predict", json={"inputs": [[1.0] * 30]}, headers={"Origin": other})
        assert "access-control-allow-origin" not in response.headers


def test_cors_preflight_passes_when_a_token_is_set(runs):
    """Browsers send the CORS preflight (OPTIONS) without the Authorization header: with --token and
    --cors together, the preflight must still be answered, or no browser page can call the API."""
    allowed = "http://client.example"
    with TestClient(create_app(runs["tabular"], cors=[allowed], token=TOKEN), raise_server_exceptions=False) as client:
        preflight = client.options(
            "/predict",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, f"{preflight.status_code}: {preflight.text}"
        assert preflight.headers.get("access-control-allow-origin") == allowed
        answer = client.post(
            "/predict", json={"inputs": [[1.0] * 30]}, headers={"Origin": allowed, "Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == allowed


def test_glassnet_serve_listens_on_127_0_0_1_by_default():
    parser = importlib.import_module("glassnet.cli.main").build_parser()
    args = parser.parse_args(["serve", "some/run"])
    assert args.host == "127.0.0.1"
    assert args.token is None and args.cors == []
    assert args.max_wait_ms == 0.0 and args.max_batch == 64 and args.threads == 1
    import inspect

    from glassnet.serve import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


# ---------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "setting",
    [
        {"max_batch": 0},
        {"max_batch": -4},
        {"max_batch": 2.5},
        {"max_batch": True},
        {"queue_size": 0},
        {"queue_size": None},
        {"max_wait_ms": -1},
        {"max_wait_ms": 5000},
        {"max_wait_ms": math.nan},
        {"timeout_s": 0},
        {"timeout_s": -1},
        {"timeout_s": math.nan},
        {"max_body_bytes": 0},
        {"backend": "tensorflow"},
    ],
    ids=lambda s: f"{next(iter(s))}={next(iter(s.values()))}",
)
def test_invalid_settings_are_config_errors(runs, setting):
    with pytest.raises(ConfigError):
        create_app(runs["tabular"], **setting)


def test_an_onnx_backend_without_its_file_names_glassnet_compress(runs):
    for backend in ("onnx", "int8"):
        with pytest.raises(ConfigError, match="glassnet compress"):
            create_app(runs["tabular"], backend=backend)


def test_a_run_with_nan_weights_is_refused_at_creation(runs, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "diverged"
    shutil.copytree(runs["tabular"], copy)
    weights = load_file(copy / "model.safetensors")
    name = next(k for k, v in weights.items() if k.endswith("weight") and v.is_floating_point())
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, copy / "model.safetensors")
    with pytest.raises(GlassnetError, match="non-finite|NaN") as refusal:
        create_app(copy)
    assert name in str(refusal.value)


def test_a_missing_run_is_refused_at_creation(tmp_path):
    with pytest.raises(GlassnetError):
        create_app(tmp_path / "no-such-run")


# ---------------------------------------------------------------------------------- micro-batching (HTTP)


def test_64_concurrent_requests_share_forward_passes_and_get_their_own_answers(runs, tmp_path):
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer().data[:64].astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    expected = predict(runs["tabular"], [str(tmp_path / "rows.npy")])
    app = create_app(runs["tabular"], max_wait_ms=20)

    async def work(client: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(*(client.post("/predict", json={"inputs": [row.tolist()]}) for row in rows))

    answers = asyncio.run(serving(app, work))
    for answer, want in zip(answers, expected, strict=True):
        assert_same(predictions(answer), [want])
    passes = app.state.batcher.batches  # the warm-up calls the model directly, not through the batcher
    assert passes < 64, f"{passes} forward passes for 64 concurrent requests: no batching"
    assert len({a["confidence"] for a in (predictions(r)[0] for r in answers)}) > 1  # distinct answers


def test_concurrent_requests_from_threads_match_their_inputs(clients, runs, samples):
    """TestClient from 16 threads: different kinds of body at once, each answer its own."""
    client, rows = clients["tabular"], samples["table_rows"]
    expected = predict(runs["tabular"], [str(samples["table_npy"])])
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        k = i % len(rows)
        if i % 3 == 0:
            body = ",".join(f"{v:.6g}" for v in rows[k]).encode()
            response = client.post("/predict", content=body, headers={"content-type": "text/csv"})
        else:
            response = client.post("/predict", json={"inputs": [rows[k].tolist()]})
        with lock:
            results.append((k, response))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(48)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 48
    for k, response in results:
        assert_same(predictions(response), [expected[k]])


@pytest.mark.parametrize("kind", ["text", "tabular", "image"])
def test_explain_while_predicting_changes_no_answer(clients, samples, kind):
    """/explain runs beside the batcher's forward passes on the same model: neither may see the other
    (Captum's layer methods hook a text model's embedding while they run)."""
    client = clients[kind]
    if kind == "text":
        bodies = [{"texts": [t]} for t in samples["texts"]]
    elif kind == "tabular":
        bodies = [{"inputs": [row.tolist()]} for row in samples["table_rows"][:4]]
    else:
        bodies = [{"inputs": [image.tolist()]} for image in samples["image_batch"]]
    reference = [predictions(client.post("/predict", json=body))[0] for body in bodies]
    problems: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        k, route = i % len(bodies), "/explain" if i % 2 else "/predict"
        for _ in range(3):
            response = client.post(route, json=bodies[k])
            try:
                assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
                answer = strict_json(response) if route == "/explain" else predictions(response)[0]
                assert_same([answer], [reference[k]])
                if route == "/explain":
                    _decoded_png(answer)
            except AssertionError as exc:
                with lock:
                    problems.append(f"{route} {k}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not problems, f"{len(problems)} of 24 concurrent answers were wrong: {problems[:6]}"


def test_a_decompression_bomb_png_is_refused(clients):
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")  # 48 kB that decode to 400 million pixels
    message = refused(
        clients["image"].post("/predict", files={"file": ("bomb.png", buffer.getvalue(), "image/png")}), 400
    )
    assert "bomb.png" in message and "pixels" in message


# ---------------------------------------------------------------------------------------------- soak


def _soak_bad_requests() -> list[tuple[str, str, dict[str, Any], int]]:
    """The refusal kinds of the soak (for the tabular run): method, path, httpx arguments, status."""
    js = {"content-type": "application/json"}
    return [
        ("POST", "/predict", {"content": b'{"inputs": [[1, 2', "headers": js}, 400),
        ("POST", "/predict", {"content": b"[[1, 2, 3]]", "headers": js}, 400),
        ("POST", "/predict", {"content": b'{"rows": [[1]]}', "headers": js}, 400),
        ("POST", "/predict", {"content": b'{"inputs": [[1, 2, 3]]}', "headers": js}, 400),
        ("POST", "/predict", {"content": _nan_body(30, "NaN").encode(), "headers": js}, 400),
        ("POST", "/predict", {"content": _nan_body(30, "Infinity").encode(), "headers": js}, 400),
        ("POST", "/predict", {"content": json.dumps({"inputs": [["a"] * 30]}).encode(), "headers": js}, 400),
        ("POST", "/predict", {"content": b"1,2,3\n", "headers": {"content-type": "text/csv"}}, 400),
        ("POST", "/predict", {"content": b"<x/>", "headers": {"content-type": "application/xml"}}, 415),
        ("POST", "/predict", {"files": {"file": ("d.png", _NOT_A_PNG, "image/png")}}, 400),
        ("POST", "/predict", {"files": {"file": ("d.exe", b"MZ", "application/octet-stream")}}, 400),
        (
            "POST",
            "/predict",
            {"content": b"--xyz--\r\n", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
            400,
        ),
        ("POST", "/explain", {"content": json.dumps({"inputs": [[1] * 30, [2] * 30]}).encode(), "headers": js}, 400),
        ("GET", "/predictions", {}, 404),
        ("GET", "/predict", {}, 405),
    ]


@pytest.mark.slow
def test_soak_10000_mixed_requests_stay_correct_healthy_and_flat_in_memory(runs, tmp_path):
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(0)
    rows = load_breast_cancer().data[:200].astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    expected = predict(runs["tabular"], [str(tmp_path / "rows.npy")])
    bad = _soak_bad_requests()
    total, warm_up, concurrency = 10_000, 2_000, 32
    plan = []  # (kind, index): kind "json", "csv" or "bad"
    for _ in range(total):
        if rng.random() < 0.7:
            plan.append(("csv" if rng.random() < 0.15 else "json", int(rng.integers(len(rows)))))
        else:
            plan.append(("bad", int(rng.integers(len(bad)))))
    app = create_app(runs["tabular"])
    failures: list[str] = []
    memory: list[float] = []

    async def one(client: httpx.AsyncClient, kind: str, index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            if kind == "json":
                response = await client.post("/predict", json={"inputs": [rows[index].tolist()]})
            elif kind == "csv":
                body = ",".join(repr(float(v)) for v in rows[index]).encode()
                response = await client.post("/predict", content=body, headers={"content-type": "text/csv"})
            else:
                method, path, kwargs, _ = bad[index]
                response = await client.request(method, path, **kwargs)
        try:
            if kind == "bad":
                refused(response, bad[index][3])
            else:
                assert_same(predictions(response), [expected[index]])
        except AssertionError as exc:
            if len(failures) < 20:
                failures.append(f"{kind} {index}: {exc}")
            else:
                failures.append("...")

    async def work(client: httpx.AsyncClient) -> httpx.Response:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(client, kind, i, gate) for kind, i in plan[:warm_up]))
        gc.collect()
        memory.append(rss_mb())
        await asyncio.gather(*(one(client, kind, i, gate) for kind, i in plan[warm_up:]))
        gc.collect()
        memory.append(rss_mb())
        return await client.get("/health")

    begun = time.perf_counter()
    health = asyncio.run(serving(app, work))
    took = time.perf_counter() - begun
    print(f"soak: {total} requests in {took:.1f} s; RSS {memory[0]:.1f} -> {memory[1]:.1f} MB")
    assert not failures, f"{len(failures)} wrong answers, first: {failures[:5]}"
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert memory[1] - memory[0] < 50, f"RSS grew {memory[1] - memory[0]:.1f} MB over 8,000 requests"
    assert app.state.batcher.batches < total


# ---------------------------------------------------------------------------------------- a real process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, payload: Any, timeout: float = 60) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_real_server_answers_and_sigterm_lets_the_request_in_flight_finish(runs, samples, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    expected = predict(runs["tabular"], [str(samples["table_npy"])])
    command = [
        sys.executable,
        "-m",
        "glassnet",
        "serve",
        str(runs["tabular"]),
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"}
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{url}/health") == (200, {"status": "ok"}):
                    break
            except OSError:
                pass
            assert process.poll() is None, f"glassnet serve exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /health within 90 s:\n{log.read_text()}"
            time.sleep(0.2)
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        status, body = _post(f"{url}/predict", {"inputs": samples["table_rows"][:2].tolist()})
        assert status == 200
        assert_same(body["predictions"], expected[:2])
        status, body = _post(f"{url}/predict", {"inputs": [[1, 2]]})
        assert status == 400 and body["status"] == 400

        # a client sends its headers, then its body 0.8 s later; SIGTERM arrives meanwhile
        outcome: dict[str, Any] = {}

        def slow() -> None:
            begun = time.perf_counter()
            body = json.dumps({"inputs": samples["table_rows"][2:4].tolist()}).encode()
            head = (
                f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                    connection.sendall(head.encode())
                    time.sleep(0.8)
                    connection.sendall(body)
                    answer = b""
                    while chunk := connection.recv(65536):
                        answer += chunk
                status_line, _, rest = answer.partition(b"\r\n")
                outcome["answer"] = (int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2]))
            except Exception as exc:  # noqa: BLE001 -- reported below
                outcome["error"] = repr(exc)
            outcome["seconds"] = time.perf_counter() - begun

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        thread.join(30)
        assert "error" not in outcome, f"the request in flight failed: {outcome['error']}\n{log.read_text()}"
        status, body = outcome["answer"]
        assert status == 200, body
        assert_same(body["predictions"], expected[2:4])
        assert outcome["seconds"] > 0.4, "the request was not in flight when SIGTERM arrived"
        # uvicorn re-raises the signal once it has shut down gracefully: killed by SIGTERM, or 0
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
        with pytest.raises(OSError):
            _get(f"{url}/health", timeout=1)
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_agent_acts_as_its_policy_does_and_has_no_predict_route(tmp_path):
    import torch

    from glassnet.train.run import Run

    out = tmp_path / "cartpole"
    assert main(["train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "512", "--quiet", "--out", str(out)]) == 0
    observations = [[0.01, 0.2, -0.03, 0.1], [0.0, -1.0, 0.1, 1.5]]
    expected = Run(out).model.act(torch.tensor(observations), deterministic=True).tolist()
    with TestClient(create_app(out), raise_server_exceptions=False) as client:
        answer = client.post("/act", json={"observations": observations})
        assert answer.status_code == 200, answer.text
        assert [a["action"] for a in answer.json()["actions"]] == expected
        wrong = client.post("/act", json={"observations": [[0.1, 0.2]]})
        assert wrong.status_code == 400 and "4 numbers" in wrong.json()["error"]
        missing = client.post("/predict", json={"inputs": observations})
        assert (
            missing.status_code == 404
            and "/act" in missing.json()["error"]
            and "/predict," not in missing.json()["error"]
        )
        assert 'id="row"' in client.get("/").text
