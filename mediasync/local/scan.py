"""Local file I/O for the engine: walking folders, stat and hashing.

Blocking functions: the engine runs them in a worker thread so a slow disk or a
hung network share never stalls the event loop.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import PurePath

from mediasync.config import FolderConfig
from mediasync.local.candidates import ignored_dir, is_candidate, name_candidate
from mediasync.local.sidecar import TEMP_PREFIX
from mediasync.rules.rows import LocalFacts

_BLOCK = 1024 * 1024


def walk_folder(
    folder: FolderConfig, suffixes: Iterable[str], temp_dirs: set[str] | None = None
) -> list[str]:
    """Every candidate media file under a folder (absolute paths, sorted).

    ``temp_dirs`` collects the directories holding our sidecar temp files, so
    the caller can clean those a crash left behind.

    Directories are pruned by name before descending, so NAS metadata trees and
    dot-directories are never read. Symlinks are not followed: a link loop or a
    link out of the folder must not drag the daemon elsewhere.
    """
    suffixes = frozenset(suffixes)
    root = str(folder.path)
    found: list[str] = []
    # Directories are pruned below, so without patterns the name alone decides (no
    # path object per file: over 100,000 files that was most of a walk's time).
    by_name = not folder.include and not folder.exclude

    def onerror(exc: OSError) -> None:
        # An unreadable subfolder must not end the scan of the rest.
        pass

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        if folder.recursive:
            dirnames[:] = [d for d in dirnames if not ignored_dir(d)]
        else:
            dirnames[:] = []
        rel_dir = PurePath(os.path.relpath(dirpath, root))
        for name in filenames:
            if temp_dirs is not None and name.startswith(TEMP_PREFIX):
                temp_dirs.add(dirpath)
            if by_name:
                if name_candidate(name, suffixes) is not None:
                    found.append(os.path.join(dirpath, name))
                continue
            rel = rel_dir / name if str(rel_dir) != "." else PurePath(name)
            if is_candidate(rel, folder, suffixes) is not None:
                found.append(os.path.join(dirpath, name))
    found.sort()
    return found


class NotRegular(Exception):
    """The path exists but is no regular file (FIFO, socket, device, directory)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class LinkSkipped(NotRegular):
    """A symbolic link that is not followed: ``what`` says why; ``facts`` are the
    link's own (lstat), so `status` can list it as skipped."""

    def __init__(self, what: str, facts: LocalFacts) -> None:
        super().__init__(what)
        self.facts = facts


NOT_FOLLOWED = "a symbolic link; not followed (follow_symlinks is off for this folder)"


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def local_facts(path: str, within: str | None = None) -> LocalFacts:
    """lstat a path; FileNotFoundError when gone, NotRegular for anything not a file.

    A symbolic link raises LinkSkipped, unless ``within`` (the folder of a
    ``follow_symlinks`` folder) holds what it points to: then it is that file's stat
    (a hash read through the link checks the same file).
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return _through_link(path, within, _facts(st))
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(_describe(st.st_mode))
    return _facts(st)


def _through_link(path: str, within: str | None, own: LocalFacts) -> LocalFacts:
    if within is None:
        raise LinkSkipped(NOT_FOLLOWED, own)
    real, root = os.path.realpath(path), os.path.realpath(within)
    if os.path.commonpath([real, root]) != root:
        raise LinkSkipped("a symbolic link to outside the folder; never followed", own)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise LinkSkipped("a symbolic link to nothing (its target is missing)", own) from None
    if not stat.S_ISREG(st.st_mode):
        raise LinkSkipped(f"a symbolic link to {_describe(st.st_mode)}; not followed", own)
    return _facts(st)


def stat_all(paths: Iterable[str], within: str | None = None) -> dict[str, LocalFacts]:
    """lstat many paths in one go (one thread hop per scan, not one per file)."""
    out: dict[str, LocalFacts] = {}
    for p in paths:
        try:
            out[p] = local_facts(p, within)
        except (OSError, NotRegular):
            continue  # reconcile looks again and reports it
    return out


def missing(paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that do not exist (``lexists``: a dangling link exists)."""
    return {p for p in paths if not os.path.lexists(p)}


class ChangedWhileHashing(Exception):
    """The file was written to while we read it; try again once it settles."""


def _read_hashed(path: str, expect: LocalFacts | None) -> tuple[str, os.stat_result]:
    """SHA-256 of the regular file at ``path`` and its fstat after the read; with
    ``expect``, ChangedWhileHashing unless the file is that one before the read."""
    h = hashlib.sha256()
    # O_NONBLOCK: should a FIFO replace the file after our stat, open must not hang.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(_describe(st.st_mode))
        if expect is not None and _facts(st) != expect:
            raise ChangedWhileHashing(path)
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
        after = os.fstat(f.fileno()) if expect is not None else st
    return h.hexdigest(), after


def _facts(st: os.stat_result) -> LocalFacts:
    return LocalFacts(st.st_size, st.st_mtime_ns, st.st_ino)


def hash_file(path: str, expect: LocalFacts) -> str:
    """SHA-256 of a file, checked to be the same file before and after reading."""
    sha, after = _read_hashed(path, expect)
    if _facts(after) != expect:
        raise ChangedWhileHashing(path)
    return sha


def digest(path: str) -> str:
    """SHA-256 of whatever the file holds now (no stat check: the caller compares)."""
    return _read_hashed(path, None)[0]
