"""What the reliability tests share: run the command line, check a refusal, snapshot files.

Imported by the tests of this folder as ``reliability_checks`` (conftest.py puts the folder on the path).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from glassnet.cli import main

PREFIX = "glassnet: error: "


def cli(capsys, args):
    """Run the command line in-process; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, args, *fragments):
    """ARGS must exit 2 with one error line on stderr, no traceback, naming each fragment; returns stderr."""
    code, _, err = cli(capsys, args)
    assert code == 2, err
    lines = err.strip().splitlines()  # a command may say what it starts first ("resuming RUN")
    assert lines and lines[-1].startswith(PREFIX) and err.count(PREFIX) == 1, err
    assert all(line.startswith("glassnet") for line in lines), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


def snapshot(root) -> dict[str, str]:
    """sha256 of every file under ``root`` (symbolic links by their target), by relative path."""
    root = Path(root)
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(root))] = "link:" + str(path.readlink())
        elif path.is_file():
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files
