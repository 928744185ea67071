"""Progress bars for the long steps (explain, attack, compress, evaluation, dataset synthesis), on tqdm.

Every long step takes a ``progress`` argument: ``True`` draws a bar on stderr, a text stream draws
it there, ``False`` or ``None`` draws nothing. A bar shows what is done, the elapsed time and the
estimated time left. In a terminal it redraws in place; in a log file or a CI job (a stream that
is not a terminal) it writes a few whole lines instead (the start, about one every
``LOG_INTERVAL_S`` seconds, the end), so logs stay readable.

The Python API draws no bar unless asked (``progress=True``); the command line draws them unless
``--quiet``. Steps that no caller can reach with an argument (the one-off synthesis of a built-in
dataset into the cache) use ``"auto"``: a bar when stderr is a terminal and ``set_quiet`` was not
called. ``TQDM_DISABLE=1`` in the environment silences every bar (tqdm reads it).

This module imports tqdm only when a bar is made, so the command line can import it to build its
parser without cost.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Literal

from glassnet.errors import ConfigError

if TYPE_CHECKING:
    from tqdm import tqdm

Progress = bool | IO[str] | Literal["auto"] | None
"""What a ``progress`` argument accepts: True (stderr), a text stream, False or None (silent), or "auto"."""

LOG_INTERVAL_S = 10.0  # not a terminal: at most one line per bar this often (plus the first and the last)
TERMINAL_INTERVAL_S = 0.1
BAR_FORMAT = "{desc}: {percentage:3.0f}% [{bar}] {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"
OPEN_FORMAT = "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]"  # no total known: a count and the time
ASCII = " #"  # plain characters: they read the same in every terminal, log viewer and encoding

_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or allow again) the bars of ``progress="auto"`` steps for this process (``glassnet --quiet``)."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    """Whether ``set_quiet`` silenced the ``progress="auto"`` bars of this process."""
    return _quiet


def progress_stream(progress: Progress) -> IO[str] | None:
    """The stream a bar for ``progress`` writes to, or None for no bar.

    Args:
        progress: True (stderr), a text stream, False or None (no bar), or ``"auto"`` (stderr when it
            is a terminal and ``set_quiet`` was not called).

    Raises:
        ConfigError: ``progress`` is none of these.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return sys.stderr
    if isinstance(progress, str):
        if progress != "auto":
            raise ConfigError(f"progress must be True, False, None, 'auto' or a text stream. Received: {progress!r}")
        return sys.stderr if not _quiet and is_terminal(sys.stderr) else None
    if not callable(getattr(progress, "write", None)):
        raise ConfigError(
            f"progress must be True, False, None, 'auto' or a text stream. Received: {type(progress).__name__}"
        )
    return progress


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a bar redraws in place there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(
    total: float | None,
    desc: str,
    progress: Progress = True,
    *,
    unit: str = "steps",
    leave: bool = True,
    mininterval: float | None = None,
    **options: Any,
) -> tqdm:
    """A tqdm bar for one long step: done/total, percentage, elapsed time and time left.

    Args:
        total: units of work in the step (None when unknown: a count and the elapsed time are shown).
        desc: what the step does, in a few words (``explain``, ``attack``, ``compress``).
        progress: where to draw it (see ``progress_stream``); a disabled bar accepts every call and
            draws nothing, so callers never test whether progress was asked for.
        unit: what one unit of work is, in the plural (``examples``, ``variants``, ``clips``).
        leave: keep the finished bar on screen (False clears it).
        mininterval: seconds between redraws (default: 0.1 in a terminal, ``LOG_INTERVAL_S`` elsewhere).
        **options: more tqdm arguments (``initial``, ``postfix`` ...).

    Returns:
        A ``tqdm`` object: ``update(n)``, ``set_postfix_str(text)``, ``close()``; use it as a context
        manager so it closes when the step fails.
    """
    from tqdm import tqdm

    stream = progress_stream(progress)
    if stream is None:
        return tqdm(total=total, disable=True)
    terminal = is_terminal(stream)
    if mininterval is None:
        mininterval = TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S
    return tqdm(
        total=total,
        desc=desc,
        file=stream if terminal else _LogLines(stream),
        unit=unit,
        leave=leave,
        mininterval=mininterval,
        ascii=ASCII,
        bar_format=BAR_FORMAT if total else OPEN_FORMAT,
        dynamic_ncols=terminal,
        ncols=None if terminal else 100,
        **options,
    )


_CONTROL = re.compile(r"\r|\x1b\[[0-9;]*[A-Za-z]")


class _LogLines:
    """A stream that is not a terminal gets each redraw of a bar as one whole line (no carriage returns,
    no cursor moves, no blank lines)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        line = _CONTROL.sub("", text).rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def cli_progress(args: argparse.Namespace) -> IO[str] | None:
    """The progress a command passes on: stderr, or None under ``--quiet``."""
    return None if getattr(args, "quiet", False) else sys.stderr


def note(bar: tqdm, text: str) -> None:
    """Show ``text`` after ``bar``'s counts (what it is doing now); redraw only when the bar's interval has
    passed, so a log gets no extra lines while a terminal sees the elapsed time tick."""
    bar.set_postfix_str(text, refresh=False)
    if not bar.disable and time.time() - bar.last_print_t >= bar.mininterval:
        bar.refresh()
