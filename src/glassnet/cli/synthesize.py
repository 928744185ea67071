"""``glassnet synthesize RUN TEXT --out speech.wav``: speech from a text-to-speech run, as a WAV file.

Import-light (no torch at import): the command line builds its parser from ``add_parser`` and
imports ``glassnet.train.synthesis`` only when the command runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

EXAMPLE = 'glassnet synthesize runs/fastspeech-one-voice "call 555 0123" --out call.wav'


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``synthesize`` subcommand to ``commands`` (the ``add_subparsers`` object of ``glassnet``).

    Args:
        commands: the subparsers action of the ``glassnet`` parser.
        common: the parent parser of the options every command takes (``--debug``, ``--quiet``).
    """
    parser = commands.add_parser(
        "synthesize",
        parents=[common],
        help="speak a text with a text-to-speech run (fastspeech) into a WAV file",
        description="Speak TEXT with a run trained with a text-to-speech model (fastspeech): digits are read one "
        "by one as words, the model draws the log-mel spectrogram with its predicted durations, and "
        "Griffin-Lim turns it into a 16-bit WAV file. The run's evaluation (mel cepstral distortion, the "
        "recogniser's error rates on its speech) is in RUN/results/test.json under free_running.",
        epilog=f"example: {EXAMPLE}",
    )
    parser.add_argument("run", help="run directory of a text-to-speech run")
    parser.add_argument("text", help="what to say (words and digits)")
    parser.add_argument("--out", default="speech.wav", help="the WAV file to write (default speech.wav)")
    parser.add_argument("--speed", type=float, default=1.0, help="speaking rate relative to the voice (0.25-4)")
    parser.add_argument(
        "--iterations", type=int, default=60, help="Griffin-Lim iterations (more: cleaner phase; default 60)"
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Speak ``args.text`` with ``args.run`` into ``args.out``; returns the exit status."""
    from pathlib import Path

    from glassnet.errors import ConfigError
    from glassnet.runs import RunDir, write_bytes
    from glassnet.train.run import Run
    from glassnet.train.synthesis import spoken_text, synthesize_text, wav_bytes

    if not 1 <= args.iterations <= 1000:
        raise ConfigError(f"--iterations must be in [1, 1000]. Received: --iterations {args.iterations}")
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"--out must name a .wav file. Received: --out {args.out}")
    if out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; name a .wav file")
    if RunDir(args.run).owns(args.out):
        raise ConfigError(f"--out {args.out} is one of the run's own files; write the audio elsewhere")
    run = Run.open(args.run)
    start = time.perf_counter()
    wave = synthesize_text(run, args.text, speed=args.speed, iterations=args.iterations)
    rate = int(run.spec.extra["sample_rate"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, wav_bytes(wave, rate))
    print(
        f"synthesized: {spoken_text(args.text)!r}, {len(wave) / rate:.2f} s at {rate} Hz in "
        f"{time.perf_counter() - start:.2f} s -> {out}"
    )
    return 0
