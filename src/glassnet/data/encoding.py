"""Say where a text file stops being UTF-8: the line and the value of its first undecodable byte.

Readers decode ahead of their parser (a text stream decodes blocks of several KiB, pandas whole
chunks), so the line a parser has reached when decoding fails is not the line of the bad byte.
These helpers find the byte itself and build the one error every CSV reader gives.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from functools import partial
from pathlib import Path

from glassnet.errors import DataError

BLOCK = 1 << 20  # bytes decoded at a time while looking for the bad byte


def not_utf8(path: str | Path, source: str | None = None, lead: str | None = None) -> DataError:
    """The error for a file (optionally gzip-compressed) that is not UTF-8, naming the line of its first bad byte.

    Args:
        path: the file that failed to decode.
        source: the file as the caller names it in messages (default: ``path``).
        lead: how the message starts (default: ``'SOURCE' is not UTF-8 text``).

    Returns:
        A ``DataError`` to raise.
    """
    path = Path(path)
    source = source or str(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0  # newlines in the blocks decoded without error
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for block in iter(partial(handle.read, BLOCK), b""):
                decoder.decode(block)
                lines += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        # exc.object is this block after the few bytes of a character left open by the last one (no newline among them)
        return undecodable(source, exc.object, exc.start, lines, lead)
    except (OSError, EOFError, zlib.error):
        pass
    return DataError(f"{lead or _lead(source)}; {_advice(source)}")


def undecodable(source: str, data: bytes, start: int, lines_before: int = 0, lead: str | None = None) -> DataError:
    """The error for the byte at ``start`` of ``data`` that is not UTF-8.

    Args:
        source: the file, as named in the message.
        data: the bytes that were decoded.
        start: the offset of the bad byte in ``data``.
        lines_before: newlines of the file before ``data``.
        lead: how the message starts (default: ``'SOURCE' is not UTF-8 text``).

    Returns:
        A ``DataError`` to raise.
    """
    line = lines_before + data.count(b"\n", 0, start) + 1
    return DataError(
        f"{lead or _lead(source)}: byte 0x{data[start]:02x} on line {line} is not valid UTF-8; {_advice(source)}"
    )


def _lead(source: str) -> str:
    return f"'{source}' is not UTF-8 text"


def _advice(source: str) -> str:
    if source.lower().endswith(".gz"):
        return f"save the file as UTF-8 (e.g. zcat '{source}' | iconv -f latin1 -t utf-8 | gzip > fixed.csv.gz)"
    return f"save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 '{source}' > fixed{Path(source).suffix or '.csv'})"
