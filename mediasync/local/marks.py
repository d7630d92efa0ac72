"""Who wrote a sidecar, recorded with the sidecar itself, so that mediasync knows
its own sidecars without its database (a rebuilt one adopts them: docs/architecture.md,
"Losing the state").

A mark says: these bytes (their SHA-256) are mediasync's answer to this prompt and
model for this content of that media file (its name: clip.mp4 and clip.wav share
clip.en.srt, which is only ever the one's that wrote it). It is the extended
attribute ``user.mediasync`` (JSON), set on the temp file before the rename, so
the bytes and their mark appear together. A sidecar is ours only while its bytes
still hash to its mark: an edit by its owner breaks that, and a copy (``cp`` drops
extended attributes) has none; both are the owner's, the safe direction.

Where the file system has no user extended attributes (vfat/exFAT, many SMB and
NFS mounts, tmpfs before Linux 6.6) the mark goes to a hidden file in the same
directory instead, ``.mediasync-marks``: one JSON line per sidecar written, the
last line for a name wins. It is read only where extended attributes are refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

XATTR = "user.mediasync"
MARKS_FILE = ".mediasync-marks"  # a dotfile: never a candidate, never watched
COMPACT_AT = 256 * 1024  # bytes: then the file keeps one line per sidecar still there

# The file system takes no user extended attributes (or none this large).
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOSPC, errno.E2BIG}
_LOCK = threading.Lock()  # one writer of a marks file at a time (the folders' threads)


@dataclass(frozen=True)
class Mark:
    sha256: str  # of the bytes mediasync wrote
    content: str  # SHA-256 of the media file the answer is about
    prompt: str  # the prompt's hash (rows.Desired.prompt_hash)
    model: str
    source: str  # the media file's name (in its directory)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> Mark | None:
        try:
            d = json.loads(data)
            return cls(str(d["sha256"]), str(d["content"]), str(d["prompt"]), str(d["model"]),
                       str(d["source"]))
        except (ValueError, KeyError, TypeError):
            return None  # not ours, or damaged: no mark


def set_on(fd: int, path: Path, mark: Mark) -> None:
    """Mark the open temp file ``fd`` that becomes ``path``; where the file system
    refuses, record the mark in the directory's marks file."""
    try:
        os.setxattr(fd, XATTR, mark.encode())
        return
    except OSError as e:
        if e.errno not in _NO_XATTR:
            raise
    _append(path.parent, path.name, mark)


def read(path: Path) -> Mark | None:
    """The mark of the sidecar at ``path`` (not checked against its bytes), or None."""
    try:
        return Mark.decode(os.getxattr(path, XATTR, follow_symlinks=False))
    except OSError as e:
        if e.errno not in _NO_XATTR:
            return None  # ENODATA: no mark; ENOENT: no file
    return _recorded(path.parent).get(path.name)


def ours(path: Path) -> Mark | None:
    """The mark of the sidecar at ``path`` when its bytes are still the marked ones."""
    mark = read(path)
    if mark is None:
        return None
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
    return mark if h.hexdigest() == mark.sha256 else None


def follow(old: Path, new: Path) -> None:
    """A sidecar was moved (its file renamed): a mark kept in a marks file follows
    it; an extended attribute travels with the file by itself."""
    try:
        os.getxattr(new, XATTR, follow_symlinks=False)
        return
    except OSError as e:
        if e.errno not in _NO_XATTR:
            return
    mark = _recorded(old.parent).get(old.name)
    if mark is not None:
        _append(new.parent, new.name, mark)


def with_hash(mark: Mark, sha256: str) -> Mark:
    return replace(mark, sha256=sha256)


def _recorded(directory: Path) -> dict[str, Mark]:
    """name → mark, from the directory's marks file (the last line per name wins)."""
    try:
        text = (directory / MARKS_FILE).read_text(errors="surrogateescape")
    except OSError:
        return {}
    found: dict[str, Mark] = {}
    for line in text.splitlines():
        try:
            d = json.loads(line)
            name = d.pop("name")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut by a crash
        mark = Mark.decode(json.dumps(d))
        if isinstance(name, str) and mark is not None:
            found[name] = mark
    return found


def _append(directory: Path, name: str, mark: Mark) -> None:
    line = json.dumps({"name": name, **asdict(mark)}, sort_keys=True) + "\n"
    target = directory / MARKS_FILE
    with _LOCK:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > COMPACT_AT:
            _compact(directory, name)


def _compact(directory: Path, writing: str) -> None:
    """One line per sidecar still in the directory (or being written), atomically."""
    kept = {n: m for n, m in _recorded(directory).items()
            if n == writing or os.path.lexists(directory / n)}
    tmp = directory / f"{MARKS_FILE}.tmp"
    with open(tmp, "w", errors="surrogateescape") as f:
        for n, m in kept.items():
            f.write(json.dumps({"name": n, **asdict(m)}, sort_keys=True) + "\n")
    os.replace(tmp, directory / MARKS_FILE)
