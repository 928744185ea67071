"""Run-directory layout, atomic file writes, the run lock and staged stage outputs.

A run is one directory (see DESIGN.md): every stage reads it and writes its own files into it.
Files are written to a temporary name in the same directory and renamed, so an interrupted
write never leaves a half-written file in place of a good one.

Every command that writes into a run holds the run's lock (``RUN/.lock``: an exclusive ``flock``
that the system releases when its holder dies, with the holder's PID and command written in it for
the message a second process gets), so two processes never write one run. A stage's results,
figures and report are written inside a ``transaction``: they go to temporary names and are renamed
into place together when the stage succeeds (figures first, ``results/*.json`` and ``report.html``
last), so a failed or killed stage leaves the previous outputs as they were.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from glassnet.errors import RunError

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "report.html"
RESULTS_DIR = "results"
FIGURES_DIR = "figures"
CHECKPOINTS_DIR = "checkpoints"
MAX_RESULT_BYTES = 200_000_000  # results/<stage>.json; the largest a stage writes is a few MB
LOCK_FILE = ".lock"
PREVIOUS_DIR = ".previous"  # a run being replaced by `train --overwrite`, until the new one is complete
STAGED = (RESULTS_DIR, FIGURES_DIR, REPORT_FILE)  # what a transaction defers until its stage succeeds


class RunDir:
    """Paths of one run directory; creating the object touches nothing on disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def model_json(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def report(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def results_dir(self) -> Path:
        return self.path / RESULTS_DIR

    @property
    def figures_dir(self) -> Path:
        return self.path / FIGURES_DIR

    def result_file(self, stage: str) -> Path:
        """Path of ``results/<stage>.json``."""
        return self.results_dir / f"{stage}.json"

    def figure(self, name: str) -> Path:
        """Path of ``figures/<name>.png``."""
        return self.figures_dir / f"{name}.png"

    def owns(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is (or would be) one of the files glassnet keeps in this run: its config,
        model, metrics, report, lock, or anything under its results, figures, checkpoints, exports."""
        try:
            relative = _resolved(Path(path)).relative_to(self.path.resolve())
        except ValueError:
            return False
        if not relative.parts:
            return True
        own_files = {CONFIG_FILE, MODEL_FILE, WEIGHTS_FILE, METRICS_FILE, REPORT_FILE, LOCK_FILE, "metrics.csv"}
        own_dirs = {RESULTS_DIR, FIGURES_DIR, CHECKPOINTS_DIR, PREVIOUS_DIR, "compressed", "tensorboard"}
        return relative.parts[0] in (own_dirs if len(relative.parts) > 1 else own_files | own_dirs)

    def has_model(self) -> bool:
        return self.model_json.is_file() and self.weights.is_file()

    def require_model(self) -> None:
        """Raise a ``RunError`` that says what is missing unless the run holds a saved model."""
        if not self.path.exists():
            raise RunError(
                f"run directory '{self.path}' does not exist; train one first, e.g. "
                f"`glassnet train --data digits --model cnn --out {self.path}` (a model) or "
                f"`glassnet train --env CartPole-v1 --algo ppo --steps 100000 --out {self.path}` (an agent)"
            )
        if not self.path.is_dir():
            raise RunError(f"'{self.path}' is a file, not a run directory")
        missing = [p.name for p in (self.model_json, self.weights) if not p.is_file()]
        if missing:
            previous = self.path / PREVIOUS_DIR
            hint = (
                f"; the run it replaced is kept in '{previous}' and comes back at the next command that writes "
                "into this run (e.g. `glassnet report`)"
                if previous.is_dir()
                else " (was training interrupted before the model was saved?)"
            )
            raise RunError(f"'{self.path}' is not a complete run: {', '.join(missing)} missing{hint}")

    def read_result(self, stage: str) -> dict[str, Any] | None:
        """Return ``results/<stage>.json`` as a dict, or None when the stage has not run."""
        path = self.result_file(stage)
        if not path.is_file():
            return None
        try:
            if path.stat().st_size > MAX_RESULT_BYTES:
                raise RunError(
                    f"{path} is {path.stat().st_size:,} bytes, more than a stage writes "
                    f"({MAX_RESULT_BYTES:,} at most); re-run the stage to rewrite it"
                )
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {path}: {exc}; re-run the stage to rewrite it") from exc
        except RecursionError as exc:  # json recurses once per nesting level
            raise RunError(f"cannot read {path}: it nests too deeply; re-run the stage to rewrite it") from exc

    def write_result(self, stage: str, data: dict[str, Any]) -> Path:
        """Write ``results/<stage>.json`` atomically and return its path."""
        path = self.result_file(stage)
        write_json(path, data)
        return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    The temporary file lives in the target's directory so the rename is atomic; on any error it
    is removed and the previous file at ``path`` (if any) is left untouched. Inside a
    ``transaction`` on the run that holds ``path``, a stage output (``results/``, ``figures/``,
    ``report.html``) keeps its temporary name until the transaction commits.

    Raises:
        RunError: the directory cannot be written (permissions, a read-only file system, a full
            disk), or ``path`` lies in a run but a symbolic link would take the write outside it.
    """
    path = Path(path)
    transaction = _transaction_of(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path.parent, exc) from exc
    os.close(fd)
    try:
        try:
            write(tmp)
        except OSError as exc:
            if exc.errno in _UNWRITABLE:
                raise _unwritable(path.parent, exc) from exc
            raise
        # mkstemp makes 0600 files, and a writer may replace ours with its own (safetensors renames
        # a 0600 temporary over it): give the result the usual permissions once it is written
        os.chmod(tmp, 0o666 & ~_umask())
        if transaction is not None and transaction.defers(path):
            transaction.pending.append((Path(tmp), path))
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _unwritable(directory: Path, exc: OSError) -> RunError:
    reason = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return RunError(f"cannot write into '{directory}': {reason}; make it writable or choose another output directory")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON; NaN and infinities become null (strict JSON)."""
    write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def to_jsonable(value: Any) -> Any:
    """Convert tensors, NumPy values, tuples and paths into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return str(value)
    return value


# --- the run lock -------------------------------------------------------------------------------


class _Lock:
    """A run lock this process holds (re-entered by nested commands, e.g. the demo's stages)."""

    def __init__(self, lexical: Path, resolved: Path, fd: int, flocked: bool) -> None:
        self.lexical, self.resolved, self.fd, self.flocked = lexical, resolved, fd, flocked
        self.depth = 1


_LOCKS: dict[Path, _Lock] = {}


@contextlib.contextmanager
def lock_run(
    path: str | os.PathLike[str], command: str, *, create: bool = False, recover: bool = True
) -> Iterator[None]:
    """Hold the exclusive lock of the run at ``path`` while the block runs.

    The lock is ``RUN/.lock``, locked with ``flock`` (the system drops it when the holder dies, so a
    killed process never leaves a stale lock) and holding the holder's PID, command and start time;
    the holder deletes it as it lets go;
    where ``flock`` is missing, the file is created exclusively and a lock whose PID is no longer
    alive counts as stale. A process that already holds the lock re-enters it. Workers other than
    rank 0 of a distributed run write nothing and take no lock.

    After taking the lock, a replacement of the run that was killed before it finished (``train
    --overwrite``, see ``replace_run``) is undone unless ``recover`` is false, and temporary files
    of killed writes are removed.

    Args:
        path: the run directory.
        command: what the holder is doing, for the message another process gets.
        create: create the directory when it is missing (training); otherwise a missing directory
            takes no lock and the command reports it.
        recover: restore ``RUN/.previous`` left by an interrupted overwrite.

    Raises:
        RunError: another process holds the lock, or the directory cannot be written.
    """
    lexical = Path(os.path.abspath(path))
    if os.environ.get("RANK", "0") not in ("", "0"):
        yield
        return
    if create:
        try:
            lexical.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise RunError(f"'{lexical}' is a file, not a run directory; choose a directory") from exc
        except OSError as exc:
            raise _unwritable(lexical.parent, exc) from exc
    if not lexical.is_dir():
        yield
        return
    resolved = lexical.resolve()
    held = _LOCKS.get(resolved)
    if held is not None:
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    held = _acquire(lexical, resolved, command)
    _LOCKS[resolved] = held
    try:
        _remove_temporaries(resolved)
        if recover:
            restore_previous(resolved)
        yield
    finally:
        del _LOCKS[resolved]
        _release(held)


def _acquire(lexical: Path, resolved: Path, command: str) -> _Lock:
    lock_file = resolved / LOCK_FILE
    holder = json.dumps({"pid": os.getpid(), "command": command, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    try:
        import fcntl
    except ImportError:  # no flock (Windows): an exclusively created file, stale when its PID is gone
        return _acquire_exclusive(lexical, resolved, lock_file, holder)
    for _ in range(10):
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _unwritable(lexical, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(lexical, lock_file) from None
        except OSError as exc:  # a file system without flock (some network mounts)
            os.close(fd)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            return _acquire_exclusive(lexical, resolved, lock_file, holder)
        try:  # the holder deletes the file as it lets go: a lock on a deleted file is no lock, try again
            current = os.stat(lock_file)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.write(fd, holder.encode())
            return _Lock(lexical, resolved, fd, flocked=True)
        os.close(fd)
    raise _busy(lexical, lock_file)


def _acquire_exclusive(lexical: Path, resolved: Path, lock_file: Path, holder: str) -> _Lock:
    for _ in range(2):
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _holder_alive(lock_file):
                raise _busy(lexical, lock_file) from None
            lock_file.unlink(missing_ok=True)  # stale: its holder is gone
            continue
        except OSError as exc:
            raise _unwritable(lexical, exc) from exc
        os.write(fd, holder.encode())
        return _Lock(lexical, resolved, fd, flocked=False)
    raise _busy(lexical, lock_file)


def _holder_alive(lock_file: Path) -> bool:
    pid = _holder(lock_file).get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, owned by another user
    return True


def _holder(lock_file: Path) -> dict[str, Any]:
    try:
        holder = json.loads(lock_file.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _busy(lexical: Path, lock_file: Path) -> RunError:
    holder = _holder(lock_file)
    who = (
        f"process {holder.get('pid', '?')} (`glassnet {holder.get('command', '?')}`, since {holder.get('since', '?')})"
    )
    return RunError(
        f"'{lexical}' is in use by {who}; wait for it to finish, or write to another run directory "
        "(a killed process frees the run by itself)"
    )


def _release(held: _Lock) -> None:
    """Delete the lock file (still holding the lock, so no one else can hold a lock on it) and let go;
    a run is left as the command wrote it, without a lock file."""
    with contextlib.suppress(OSError):
        (held.resolved / LOCK_FILE).unlink()
    if held.flocked:
        import fcntl

        fcntl.flock(held.fd, fcntl.LOCK_UN)
    os.close(held.fd)


def _remove_temporaries(root: Path) -> None:
    """Delete the ``.NAME.XXXX.tmp`` files that killed writes left (no one else writes: we hold the lock)."""
    for folder in (root, root / RESULTS_DIR, root / FIGURES_DIR, root / CHECKPOINTS_DIR):
        if folder.is_dir() and not folder.is_symlink():
            for tmp in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()


# --- replacing a run (train --overwrite) ----------------------------------------------------------


def replace_run(path: str | os.PathLike[str]) -> Path:
    """Move everything in the run at ``path`` into ``RUN/.previous`` before a new run is trained there.

    Call ``discard_previous`` once the new run is complete; until then ``restore_previous`` (which the
    next command holding the lock calls by itself after a kill) puts the old run back as it was.
    """
    root = Path(path)
    previous = root / PREVIOUS_DIR
    restore_previous(root)
    previous.mkdir()
    for entry in root.iterdir():
        if entry.name not in (LOCK_FILE, PREVIOUS_DIR):
            entry.rename(previous / entry.name)
    return previous


def restore_previous(path: str | os.PathLike[str]) -> bool:
    """Undo an unfinished ``replace_run``: drop what the new attempt wrote and move the old run back."""
    root = Path(path)
    previous = root / PREVIOUS_DIR
    if not previous.is_dir():
        return False
    import shutil

    for entry in root.iterdir():
        if entry.name not in (LOCK_FILE, PREVIOUS_DIR):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for entry in previous.iterdir():
        entry.rename(root / entry.name)
    previous.rmdir()
    return True


def discard_previous(path: str | os.PathLike[str]) -> None:
    """Delete the run that ``replace_run`` kept aside, once its replacement is complete."""
    import shutil

    shutil.rmtree(Path(path) / PREVIOUS_DIR, ignore_errors=True)


# --- transactions: a stage's outputs appear together, or not at all -------------------------------


class _Transaction:
    def __init__(self, lexical: Path, resolved: Path) -> None:
        self.lexical, self.resolved = lexical, resolved
        self.pending: list[tuple[Path, Path]] = []  # (temporary file, target)

    def contains(self, path: Path) -> bool:
        return _inside(Path(os.path.abspath(path)), self.lexical) or _inside(_resolved(path), self.resolved)

    def defers(self, path: Path) -> bool:
        relative = _resolved(path).relative_to(self.resolved)
        return bool(relative.parts) and relative.parts[0] in STAGED

    def commit(self) -> None:
        """Rename the staged files into place: figures and other files, then results, then the report."""
        rank = {RESULTS_DIR: 1, REPORT_FILE: 2}
        for tmp, target in sorted(self.pending, key=lambda p: rank.get(self._top(p[1]), 0)):
            os.replace(tmp, target)
        self.pending.clear()

    def abort(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending.clear()

    def _top(self, path: Path) -> str:
        return _resolved(path).relative_to(self.resolved).parts[0]


_TRANSACTIONS: list[_Transaction] = []


@contextlib.contextmanager
def transaction(path: str | os.PathLike[str], command: str) -> Iterator[None]:
    """Hold the run's lock and stage its results, figures and report until the block succeeds.

    A nested transaction on the same run (a stage that runs another) first commits what the outer
    one has staged, so the inner stage reads the outer stage's files.
    """
    with lock_run(path, command):
        lexical = Path(os.path.abspath(path))
        if not lexical.is_dir():
            yield
            return
        for outer in _TRANSACTIONS:
            if outer.resolved == lexical.resolve():
                outer.commit()
        current = _Transaction(lexical, lexical.resolve())
        _TRANSACTIONS.append(current)
        try:
            yield
        except BaseException:
            _TRANSACTIONS.remove(current)
            current.abort()
            raise
        _TRANSACTIONS.remove(current)
        current.commit()


F = TypeVar("F", bound=Callable[..., Any])


def writes_run(command: str) -> Callable[[F], F]:
    """Run the decorated ``function(run, ...)`` inside a ``transaction`` on ``run`` (a path or a
    ``RunDir``); a first argument that is neither (a model in memory) runs it as it is."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
            path = run.path if isinstance(run, RunDir) else run
            if not isinstance(path, (str, os.PathLike)):
                return function(run, *args, **kwargs)
            with transaction(path, command):
                return function(run, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _transaction_of(path: Path) -> _Transaction | None:
    """The innermost transaction whose run holds ``path``; a write that a symbolic link takes out of a
    run this process has locked is refused."""
    for held in _LOCKS.values():
        lexical = Path(os.path.abspath(path))
        inside = _inside(lexical, held.lexical) or _inside(lexical, held.resolved)
        if inside and not _inside(_resolved(path), held.resolved):
            raise RunError(
                f"'{path}' leads outside the run '{held.lexical}' through a symbolic link (it resolves to "
                f"'{_resolved(path)}'); glassnet writes a run's files only inside it: replace the link "
                "with a folder"
            )
    for current in reversed(_TRANSACTIONS):
        if current.contains(path):
            return current
    return None


def _resolved(path: Path) -> Path:
    return Path(path).parent.resolve() / Path(path).name


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
