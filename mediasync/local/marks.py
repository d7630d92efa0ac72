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
last line for a name wins. Such a line is read only where extended attributes are
refused.

An XMP sidecar's field marks (what is ours in it: outputs/xmp.Marks as JSON, kept
opaque here) also go to that file, always, as a line of their own kind keyed by
the sidecar's name, with the mark of the answer merged (``keep_xmp``,
``xmp_marks``, ``xmp_answer``). The XMP holds the field marks inside too, and the
store keeps a copy, but a tool that regenerates the XMP from its own database
(darktable) replaces the file, dropping both the marks inside and its extended
attribute, and a damaged database is rebuilt without them. The folder's marks
file is reached by neither loss, so our caption is still told from the owner's
(issue 18, item 11), and the answer merged is not paid for again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

XATTR = "user.mediasync"
MARKS_FILE = ".mediasync-marks"  # a dotfile: never a candidate, never watched
COMPACT_AT = 256 * 1024  # bytes: then the file keeps one line per sidecar still there
KEEP_RECENT = 64  # lines a compaction keeps whatever is on disk (writes under way)

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
    return _lines(path.parent).marks.get(path.name)


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
    """A sidecar was moved (its file renamed): what a marks file keeps for it (its
    mark, an XMP's field marks) follows it; an extended attribute travels with the
    file by itself."""
    lines = _lines(old.parent)
    xmp = lines.xmp.get(old.name)
    if xmp is not None:
        keep_xmp(new, xmp.marks, xmp.answer)
    try:
        os.getxattr(new, XATTR, follow_symlinks=False)
        return
    except OSError as e:
        if e.errno not in _NO_XATTR:
            return
    mark = lines.marks.get(old.name)
    if mark is not None:
        try:
            _append(new.parent, new.name, mark)
        except OSError:
            pass  # the move is done; without its mark the sidecar counts as the owner's


def with_hash(mark: Mark, sha256: str) -> Mark:
    return replace(mark, sha256=sha256)


@dataclass(frozen=True)
class XmpLine:
    """What mediasync last merged into an XMP sidecar."""
    marks: str  # what is ours in it (outputs/xmp.Marks as JSON)
    answer: Mark | None  # the answer merged (its sha256: the bytes written)

    def encode(self, name: str) -> dict[str, object]:
        line: dict[str, object] = {"xmp": name, "marks": self.marks}
        if self.answer is not None:
            line["answer"] = asdict(self.answer)
        return line


def keep_xmp(path: Path, xmp: str, answer: Mark | None) -> None:
    """Remember what is ours in the XMP sidecar at ``path`` (outputs/xmp.Marks as
    JSON) and the answer merged, written just now, in its directory's marks file. A
    second copy beside the store's: a folder that refuses it (read-only, full)
    loses only this copy."""
    try:
        _append(path.parent, path.name, XmpLine(xmp, answer).encode(path.name))
    except OSError:
        pass


def xmp_marks(path: Path) -> str | None:
    """The field marks ``keep_xmp`` last remembered for the XMP sidecar at ``path``,
    or None (none, or no readable marks file)."""
    line = _lines(path.parent).xmp.get(path.name)
    return line.marks if line else None


def xmp_answer(path: Path) -> Mark | None:
    """The answer mediasync last merged into the XMP sidecar at ``path``, while a
    file is there: another tool may have rewritten it since, but an XMP is merged
    into field by field, so what was merged is still the answer it holds."""
    if not os.path.lexists(path):  # first: it spares reading the marks file
        return None
    line = _lines(path.parent).xmp.get(path.name)
    return line.answer if line else None


@dataclass
class _Lines:
    """A marks file read: name → sidecar mark, name → what was merged into an XMP."""
    marks: dict[str, Mark]
    xmp: dict[str, XmpLine]
    order: list[str] = field(default_factory=list)  # each line's name, in file order

    def encoded(self, names: set[str]) -> list[dict[str, object]]:
        """The lines that keep what is recorded for ``names``."""
        return ([{"name": n, **asdict(m)} for n, m in self.marks.items() if n in names]
                + [x.encode(n) for n, x in self.xmp.items() if n in names])


def _lines(directory: Path) -> _Lines:
    """The directory's marks file, the last line per name and kind winning; a
    missing or unreadable file records nothing, a damaged line is skipped."""
    found = _Lines({}, {})
    try:
        text = (directory / MARKS_FILE).read_text(errors="surrogateescape")
    except OSError:
        return found
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if not isinstance(d, dict):
            continue
        if "xmp" in d:  # what was merged into an XMP sidecar
            name, xmp = d.get("xmp"), d.get("marks")
            if isinstance(name, str) and isinstance(xmp, str):
                found.order.append(name)
                answer = d.get("answer")
                found.xmp[name] = XmpLine(xmp, Mark.decode(json.dumps(answer))
                                          if isinstance(answer, dict) else None)
            continue
        name = d.pop("name", None)
        mark = Mark.decode(json.dumps(d))
        if isinstance(name, str) and mark is not None:
            found.order.append(name)
            found.marks[name] = mark
    return found


def _append(directory: Path, name: str, record: Mark | dict[str, object]) -> None:
    fields = {"name": name, **asdict(record)} if isinstance(record, Mark) else record
    line = json.dumps(fields, sort_keys=True) + "\n"
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
    """One line per sidecar (and per XMP sidecar's field marks) still in the
    directory (or being written), atomically and durably: on the file systems this
    file serves, a crash must not leave it empty."""
    lines = _lines(directory)
    # The newest lines stay whether or not their file is there: another folder thread
    # may have marked a temp file it has not renamed into place yet.
    recent = set(lines.order[-KEEP_RECENT:])
    names = {n for n in (*lines.marks, *lines.xmp)
             if n == writing or n in recent or os.path.lexists(directory / n)}
    tmp = directory / f"{MARKS_FILE}.tmp"
    with open(tmp, "w", errors="surrogateescape") as f:
        for fields in lines.encoded(names):
            f.write(json.dumps(fields, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MARKS_FILE)
