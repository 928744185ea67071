"""Tests of ``glassnet.data.download`` against an HTTP server started on 127.0.0.1 by the test."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from glassnet.data.download import download, sha256_file
from glassnet.errors import ConfigError, DataError

BODY = np.random.default_rng(0).integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
BODY_SHA = hashlib.sha256(BODY).hexdigest()
CUT = 70_000  # where the truncated route stops sending
TIMEOUT = 2.0


@dataclass
class Served:
    """What the server saw: one entry per request."""

    paths: list[str] = field(default_factory=list)
    ranges: list[str | None] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    """Routes: /good (Range support), /corrupt, /truncated, /norange, /error (500), /missing (404)."""

    served: Served

    def do_GET(self) -> None:
        # Everything is recorded before the first byte goes out: the client may assert as soon as it has read.
        self.served.paths.append(self.path)
        self.served.ranges.append(self.headers.get("Range"))
        route = self.path.split("?")[0]
        if route in ("/error", "/missing"):
            self.served.sent.append(0)
            self.send_error(500 if route == "/error" else 404)
        elif route == "/corrupt":
            self._send_whole(BODY[:-1] + bytes([BODY[-1] ^ 0xFF]))
        elif route == "/norange":
            self._send_whole(BODY)  # ignores Range, as some servers do
        elif route == "/truncated" and self.headers.get("Range") is None:
            self._send_truncated()
        else:  # /good, and /truncated when asked for the rest
            self._send_range(BODY)

    def _send_whole(self, body: bytes) -> None:
        self.served.sent.append(len(body))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_truncated(self) -> None:
        """Announce the whole body, send part of it, then close the connection."""
        self.served.sent.append(CUT)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[:CUT])
        self.wfile.flush()
        self.close_connection = True

    def _send_range(self, body: bytes) -> None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match is None:
            self._send_whole(body)
            return
        start = int(match.group(1))
        if start >= len(body):
            self.served.sent.append(0)
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.served.sent.append(len(body) - start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    """A threaded HTTP server on a free port of 127.0.0.1, shut down after the test."""
    served = Served()
    handler = type("BoundHandler", (Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def leftovers(folder: Path, keep: str) -> list[str]:
    """Files in ``folder`` other than ``keep`` (partial or temporary files)."""
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(BODY)
    assert sha256_file(path) == BODY_SHA
    assert sha256_file(path, chunk_size=7) == BODY_SHA


def test_good_file_is_downloaded_verified_and_leaves_no_partial_file(server, tmp_path):
    url, served = server
    dest = tmp_path / "sub" / "file.gz"
    assert download(f"{url}/good", dest, BODY_SHA, progress=False, timeout=TIMEOUT) == dest
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent, "file.gz") == []
    assert served.ranges == [None]


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    dest.write_bytes(BODY)
    download(f"{url}/good", dest, BODY_SHA.upper(), progress=False, timeout=TIMEOUT)
    assert served.paths == []


def test_checksum_mismatch_names_url_and_both_hashes_and_deletes_the_partial_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "file.gz"
    with pytest.raises(DataError) as info:
        download(f"{url}/corrupt", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    message = str(info.value)
    actual = hashlib.sha256(BODY[:-1] + bytes([BODY[-1] ^ 0xFF])).hexdigest()
    assert f"{url}/corrupt" in message and BODY_SHA in message and actual in message
    assert list(tmp_path.iterdir()) == []


def test_failed_download_never_clobbers_an_existing_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "file.gz"
    dest.write_bytes(b"an older release the user keeps")
    for route in ("corrupt", "error"):
        with pytest.raises(DataError):
            download(f"{url}/{route}", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
        assert dest.read_bytes() == b"an older release the user keeps"
        assert leftovers(tmp_path, "file.gz") == []


@pytest.mark.parametrize(("route", "status"), [("error", "HTTP 500"), ("missing", "HTTP 404")])
def test_http_error_names_url_status_and_how_to_provide_the_file(server, tmp_path, route, status):
    url, _ = server
    dest = tmp_path / "file.gz"
    with pytest.raises(DataError) as info:
        download(f"{url}/{route}", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    message = str(info.value)
    assert f"{url}/{route}" in message and status in message
    assert "offline" in message and str(dest) in message
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_says_the_machine_may_be_offline(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/file.gz"
    dest = tmp_path / "file.gz"
    with pytest.raises(DataError, match=r"cannot reach http://127\.0\.0\.1:\d+/file\.gz .*may be offline") as info:
        download(url, dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert f"copy it to {dest}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_keeps_the_partial_file_and_the_next_call_resumes_with_range(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    with pytest.raises(DataError, match=r"stopped after 70,000 of 200,000 bytes.*download only the rest"):
        download(f"{url}/truncated", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    part = tmp_path / "file.gz.part"
    assert not dest.exists() and part.read_bytes() == BODY[:CUT]

    download(f"{url}/truncated", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY and not part.exists()
    assert served.ranges == [None, f"bytes={CUT}-"]
    assert served.sent == [CUT, len(BODY) - CUT]  # the second request carried only the missing bytes


def test_partial_file_is_resumed_with_only_the_missing_bytes(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    (tmp_path / "file.gz.part").write_bytes(BODY[:123_456])
    download(f"{url}/good", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY
    assert served.ranges == ["bytes=123456-"] and served.sent == [len(BODY) - 123_456]


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    (tmp_path / "file.gz.part").write_bytes(b"x" * 5000)  # wrong bytes: must not stay in front
    download(f"{url}/norange", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY
    assert served.ranges == ["bytes=5000-"] and served.sent == [len(BODY)]
    assert leftovers(tmp_path, "file.gz") == []


def test_complete_partial_file_answered_416_is_verified_and_kept(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    (tmp_path / "file.gz.part").write_bytes(BODY)
    download(f"{url}/good", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY and served.sent == [0]


def test_partial_file_longer_than_the_file_is_discarded_and_downloaded_again(server, tmp_path):
    url, served = server
    dest = tmp_path / "file.gz"
    (tmp_path / "file.gz.part").write_bytes(BODY + b"junk")
    download(f"{url}/good", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY
    assert served.ranges == [f"bytes={len(BODY) + 4}-", None]


def test_corrupt_partial_file_fails_verification_and_is_deleted(server, tmp_path):
    url, _ = server
    dest = tmp_path / "file.gz"
    (tmp_path / "file.gz.part").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match="is corrupt: its SHA-256 is"):
        download(f"{url}/good", dest, BODY_SHA, progress=False, timeout=TIMEOUT)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_shows_bytes_percent_and_rate(server, tmp_path):
    url, _ = server
    stream = io.StringIO()
    download(f"{url}/good", tmp_path / "file.gz", BODY_SHA, progress=stream, timeout=TIMEOUT, chunk_size=4096)
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert re.fullmatch(r"file\.gz: 195\.3 KiB / 195\.3 KiB 100\.0% [\d.]+ (B|KiB|MiB|GiB)/s", last), last


def test_progress_goes_to_stderr_by_default_and_nowhere_when_disabled(server, tmp_path, capsys):
    url, _ = server
    download(f"{url}/good", tmp_path / "a.gz", BODY_SHA, timeout=TIMEOUT)
    assert "100.0%" in capsys.readouterr().err
    download(f"{url}/good", tmp_path / "b.gz", BODY_SHA, progress=False, timeout=TIMEOUT)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sha256": "abc"}, "sha256 must be 64 hex digits. Received: 'abc'"),
        ({"sha256": BODY_SHA, "timeout": 0}, "timeout=0"),
        ({"sha256": BODY_SHA, "chunk_size": 0}, "chunk_size=0"),
    ],
)
def test_bad_arguments_are_config_errors(tmp_path, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        download("http://127.0.0.1:9/x", tmp_path / "x", **options)
    assert list(tmp_path.iterdir()) == []
