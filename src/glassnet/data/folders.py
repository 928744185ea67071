"""List the files of a dataset's folders so that each real file is used once, whatever links it has.

Folder datasets (images, audio) follow symbolic links, because linking a dataset into place is
common. Links can also form loops (``photos/cat/up -> ..``) or reach one file twice (a class folder
linked into another, a file linked into two splits); read naively, such a folder multiplies its
files and puts copies of one file into both the training and the test split. ``unique_files``
therefore enters a linked folder only once (by device and inode) and never re-enters the dataset
root or one of its class folders through a link, and keeps each file (by device and inode, so hard
links count too) once: at a path without links when it has one, else where it is met first.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

Key = tuple[int, int]  # (st_dev, st_ino): one real file or folder


@dataclass(frozen=True)
class FolderFiles:
    """The files of each folder given to ``unique_files`` and what was skipped on the way.

    Attributes:
        files: one sorted list of paths per folder, in the order of the folders.
        skipped: per folder, the files left out because they are used elsewhere.
        duplicates: files reached more than once (through links or hard links), kept once.
        linked_folders: linked folders not entered because they were already read (link loops included).
    """

    files: list[list[str]]
    skipped: list[int]
    duplicates: int
    linked_folders: int

    def info(self) -> dict[str, int]:
        """The counts for a bundle's ``info``."""
        return {"duplicate_files_skipped": self.duplicates, "linked_folders_skipped": self.linked_folders}

    def warn(self, root: str | os.PathLike[str]) -> None:
        """Say in one warning what was skipped, if anything."""
        parts = []
        if self.linked_folders:
            parts.append(
                f"{self.linked_folders} linked folder(s) already read (a link loop or a second link to one folder)"
            )
        if self.duplicates:
            parts.append(f"{self.duplicates} file(s) reached a second time (through links or hard links)")
        if parts:
            message = f"'{root}': skipped {' and '.join(parts)}; each folder and file is used once"
            warnings.warn(message, UserWarning, stacklevel=3)


def unique_files(
    folders: Sequence[Path], accept: Callable[[str], bool], *, recursive: bool = True, roots: Sequence[Path] = ()
) -> FolderFiles:
    """The regular files whose names ``accept`` takes under each folder, each real file once.

    A folder reached through a link is skipped when it is one of ``roots`` or ``folders`` or a
    folder already read; a file found twice is kept where no link leads to it (else where it is met
    first), so one file never lands in two classes or two splits.

    Args:
        folders: the class folders (of every split), in label order.
        accept: takes a file name (hidden names are never offered).
        recursive: read sub-folders too (hidden ones excepted).
        roots: the dataset folder and its split folders, never re-entered through a link.

    Returns:
        The files of each folder and the counts of what was skipped.
    """
    reserved = {key for key in map(_key, [*folders, *roots]) if key}
    read: set[Key] = set()
    found: list[tuple[int, str, Key, bool]] = []  # (folder, path, file key, reached through a link)
    skipped_folders = 0
    for index, folder in enumerate(folders):
        for entry in _walk(folder, accept, recursive, reserved, read):
            if entry is None:
                skipped_folders += 1
            else:
                found.append((index, *entry))
    keep = _first_home(found)
    files: list[list[str]] = [[] for _ in folders]
    skipped = [0] * len(folders)
    for position, (index, path, _, _) in enumerate(found):
        if position in keep:
            files[index].append(path)
        else:
            skipped[index] += 1
    return FolderFiles(files, skipped, len(found) - len(keep), skipped_folders)


def _walk(
    folder: Path, accept: Callable[[str], bool], recursive: bool, reserved: set[Key], read: set[Key]
) -> Iterator[tuple[str, Key, bool] | None]:
    """``(path, key, reached through a link)`` of each accepted regular file; ``None`` per skipped folder."""
    linked = {str(folder): False}  # the class folder itself may be a link: that is how datasets are linked in
    for current, dirs, names in os.walk(folder, followlinks=True):
        through_link = linked.pop(current, True)
        key = _key(current)
        if through_link and key is not None and (key in reserved or key in read):
            dirs[:] = []
            yield None
            continue
        if key is not None:
            read.add(key)
        # a folder that lies where it is found is never skipped, so a link read earlier cannot hide it
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in dirs:
            child = os.path.join(current, name)
            linked[child] = through_link or os.path.islink(child)
        for name in sorted(names):
            path = os.path.join(current, name)
            if name.startswith(".") or not accept(name):
                continue
            try:
                status = os.stat(path)
            except OSError:  # a broken link is no data file
                continue
            if stat.S_ISREG(status.st_mode):  # a FIFO or a device is not a data file (and would block a reader)
                yield path, (status.st_dev, status.st_ino), through_link or os.path.islink(path)


def _first_home(found: list[tuple[int, str, Key, bool]]) -> set[int]:
    """Positions to keep: per real file, its first occurrence reached without links, else its first one."""
    chosen: dict[Key, int] = {}
    for position, (_, _, key, linked) in enumerate(found):
        if key not in chosen or (found[chosen[key]][3] and not linked):
            chosen[key] = position
    return set(chosen.values())


def _key(path: str | os.PathLike[str]) -> Key | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino
