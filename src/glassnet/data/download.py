"""Download one file over HTTP(S): resumable, SHA-256 verified and atomic, with a progress bar.

The bytes go to ``<dest>.part``; an interrupted transfer leaves that file behind and the next call
asks the server only for the missing bytes (an HTTP ``Range`` request). ``dest`` itself appears
only once the whole file matches its checksum (``os.replace`` of the verified ``.part`` file), so a
failed download never leaves a half-written or unverified file under the final name and never
clobbers a good one. Only the standard library is used (``urllib``), so it works wherever Python
does.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, TextIO

from glassnet.errors import ConfigError, DataError

_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 of a file as 64 lower-case hex digits.

    Args:
        path: the file to hash.
        chunk_size: bytes read at a time (memory use stays at one chunk).

    Returns:
        The hex digest.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str,
    *,
    progress: bool | TextIO = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` and verify its SHA-256, resuming an earlier partial download.

    If ``dest`` already holds the expected bytes, nothing is downloaded.

    Args:
        url: ``http://``, ``https://`` or ``file://`` address of the file.
        dest: where the verified file ends up (its folder is created when missing).
        sha256: expected SHA-256 of the complete file (64 hex digits).
        progress: ``True`` draws a progress bar (bytes, percent, rate) on stderr, a text stream
            draws it there instead, ``False`` prints nothing.
        timeout: seconds to wait for the connection and for each read.
        chunk_size: bytes read and written at a time.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        ConfigError: ``sha256`` is not 64 hex digits, or ``timeout``/``chunk_size`` is not positive.
        DataError: the server answered with an error, could not be reached, the transfer stopped
            early (the ``.part`` file is kept: call again to resume), or the bytes do not match
            ``sha256`` (the ``.part`` file is deleted). ``dest`` is untouched in every case.
    """
    expected = _check_arguments(sha256, timeout, chunk_size)
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    stream = sys.stderr if progress is True else progress or None
    # Two passes at most: the second starts from zero when the partial file turns out unusable
    # (the server has no such range, or the bytes already there are wrong).
    for _ in range(2):
        if _fetch(url, dest, part, expected, timeout, chunk_size, stream):
            break
    else:
        raise DataError(f"{url} did not send the file from its start. {_by_hand(url, dest)}")
    _verify(url, part, expected)
    os.replace(part, dest)  # atomic on one file system: dest is either the old file or the verified one
    return dest


def _check_arguments(sha256: str, timeout: float, chunk_size: int) -> str:
    expected = str(sha256).strip().lower()
    if not _SHA256_PATTERN.fullmatch(expected):
        raise ConfigError(f"sha256 must be 64 hex digits. Received: {sha256!r}")
    if timeout <= 0 or chunk_size < 1:
        raise ConfigError(
            f"timeout and chunk_size must be positive. Received: timeout={timeout}, chunk_size={chunk_size}"
        )
    return expected


def _fetch(
    url: str, dest: Path, part: Path, expected: str, timeout: float, chunk_size: int, stream: TextIO | None
) -> bool:
    """Bring ``part`` up to the complete file. Returns False when it must restart from zero."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "glassnet", "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # No bytes after the partial file: it is complete already, or longer than the file (then unusable).
            if sha256_file(part) == expected:
                return True
            part.unlink()
            return False
        raise DataError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}. {_by_hand(url, dest)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot reach {url} ({reason}). {_by_hand(url, dest)}") from exc
    with response:
        status = response.status
        start = _resume_offset(response, offset) if status == 206 else 0
        if start is None:
            part.unlink(missing_ok=True)
            return False
        total = _total_size(response, start)
        # "wb" also covers a server that answers a Range request with the whole file (200): restart from zero.
        with open(part, "ab" if start else "wb") as handle:
            _copy(response, handle, url, start, total, chunk_size, _ProgressBar(stream, dest.name, start, total))
    return True


def _resume_offset(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The offset a 206 answer starts at, or None when it does not continue the partial file."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or int(match.group(1)) != offset:
        return None
    return offset


def _total_size(response: http.client.HTTPResponse, start: int) -> int | None:
    """Size of the complete file, from Content-Range (206) or Content-Length (200), if announced."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is not None and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _copy(
    response: http.client.HTTPResponse,
    handle: BinaryIO,
    url: str,
    received: int,
    total: int | None,
    chunk_size: int,
    bar: _ProgressBar,
) -> None:
    """Append the response body to ``handle``; a transfer that stops early keeps what arrived."""
    try:
        while chunk := response.read(chunk_size):
            handle.write(chunk)
            received += len(chunk)
            bar.update(received)
    except (http.client.IncompleteRead, OSError) as exc:
        handle.flush()
        bar.close()
        raise _interrupted(url, handle, received, total, exc) from exc
    bar.close()
    if total is not None and received < total:
        handle.flush()
        raise _interrupted(url, handle, received, total, "the server closed the connection")


def _interrupted(url: str, handle: BinaryIO, received: int, total: int | None, reason: object) -> DataError:
    of_total = f" of {total:,}" if total is not None else ""
    return DataError(
        f"downloading {url} stopped after {received:,}{of_total} bytes ({reason}). The bytes received are kept "
        f"in {handle.name}: call again (or load the dataset again) to download only the rest."
    )


def _verify(url: str, part: Path, expected: str) -> None:
    """Raise (and delete ``part``) unless ``part`` holds exactly the expected bytes."""
    actual = sha256_file(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise DataError(
            f"the file downloaded from {url} is corrupt: its SHA-256 is {actual}, expected {expected}. "
            "It was deleted; try again later or get the file from another mirror."
        )


def _by_hand(url: str, dest: Path) -> str:
    return (
        f"This machine may be offline or the server may be down. To provide the file by hand, download {url} "
        f"on a machine with internet access and copy it to {dest}."
    )


class _ProgressBar:
    """One status line on a text stream: bytes, percent and rate, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO | None, label: str, start: int, total: int | None) -> None:
        self.stream, self.label, self.start, self.total = stream, label, start, total
        self.began = self.last = time.monotonic()
        self.received = start

    def update(self, received: int) -> None:
        self.received = received
        now = time.monotonic()
        if self.stream is not None and now - self.last >= 0.1:
            self.last = now
            self._draw(self.stream, now)

    def close(self) -> None:
        if self.stream is not None:
            self._draw(self.stream, time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, stream: TextIO, now: float) -> None:
        rate = (self.received - self.start) / max(now - self.began, 1e-6)
        size = _human(self.received)
        if self.total:
            size += f" / {_human(self.total)} {100 * self.received / self.total:5.1f}%"
        stream.write(f"\r{self.label}: {size} {_human(rate)}/s")
        stream.flush()


def _human(count: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"
