"""Sidecar files: naming, atomic writes, and never overwriting the owner's edits.

A sidecar belongs to mediasync only while its bytes hash to what mediasync
last wrote (recorded by the caller in the store, and with the sidecar itself:
local/marks.py). Anything else — edited by the owner, or there before mediasync
ever wrote one — is the owner's and is kept. No HTTP here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from mediasync.local import marks

TEMP_PREFIX = ".mediasync-tmp-"  # a dotfile: the watcher ignores it

State = Literal["missing", "ours", "edited", "foreign"]

# Filesystems without hard links (vfat, some FUSE/SMB mounts) answer these.
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def text_hash(data: bytes | str) -> str:
    """SHA-256 hex of the bytes (str is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class NotRegularFile(OSError):
    """Something other than a regular file is there (a FIFO, directory, device)."""


def _open_regular(path: Path) -> int | None:
    """A read-only descriptor of the regular file at ``path``; None when it is missing.

    Raises NotRegularFile for anything else, and OSError (ELOOP) for a symlink:
    O_NOFOLLOW because a symlink put there is never ours to read through or
    replace, O_NONBLOCK because opening a FIFO would wait for a writer for ever.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_regular(path: Path) -> bytes | None:
    """The bytes of the regular file at ``path``; None when it is missing.

    Raises NotRegularFile or another OSError when something else is there.
    """
    fd = _open_regular(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def as_written(text: str) -> str:
    """The text a sidecar gets: it ends with a newline. Hash this, not the answer."""
    return text if text.endswith("\n") else text + "\n"


def _file_hash(path: Path) -> str | None:
    """Hash of a regular file's bytes; None when it is missing."""
    fd = _open_regular(path)
    if fd is None:
        return None
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
    return h.hexdigest()


def inspect(path: Path, recorded_hash: str | None) -> State:
    """Who owns the sidecar at ``path``, given the hash of what we last wrote there.

    missing: nothing there. ours: its bytes are what we wrote. edited: we wrote
    one and the owner changed it. foreign: we never wrote one; the owner's.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(st.st_mode):
        try:
            digest = _file_hash(path)
        except OSError:
            digest = "unreadable"  # never matches: an unreadable file is not ours to replace
        if digest is None:
            return "missing"  # removed between lstat and open
        if recorded_hash is None:
            return "foreign"
        return "ours" if digest == recorded_hash else "edited"
    # A directory, symlink or device there: we only ever write regular files.
    return "foreign" if recorded_hash is None else "edited"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and network shares) refuse fsync on a directory
    finally:
        os.close(fd)


# Temp files this process is writing: never "stale", whatever their mtime says
# (a file server's clock behind ours, or our clock stepped forward, makes a
# young file look old to clean_stale_temps).
_IN_FLIGHT: set[str] = set()
_IN_FLIGHT_LOCK = threading.Lock()


def make_temp(directory: Path, data: bytes,
              before_close: Callable[[int], None] | None = None) -> Path:
    """Write ``data`` to a new temp file in ``directory`` (synced; ``before_close(fd)``
    runs first, e.g. to set our mark), marked in flight so `clean_stale_temps` leaves
    it alone until `release_temp`. The first step of every sidecar write."""
    while True:
        tmp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.add(str(tmp))
        try:
            # 0o644 through the umask, like any new file the owner would create.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o644)
        except FileExistsError:
            release_temp(tmp)
            continue
        except BaseException:
            release_temp(tmp)
            raise
        break
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if before_close is not None:
            before_close(fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        release_temp(tmp)
        raise
    os.close(fd)
    return tmp


def release_temp(tmp: Path) -> None:
    """The write that made ``tmp`` ended (renamed, removed, or left by a failure)."""
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.discard(str(tmp))


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _keep_access(tmp: Path, path: Path) -> None:
    """Give the new file the old one's mode, owner and group (a private 660 XMP with
    GPS data must not become 644). Owner and group as far as we may set them; where
    the group cannot be kept its bits are dropped, never handed to our own group.

    The file is replaced by rename, so other hard links to the old file keep the old
    bytes: writing in place would keep the link, but a crash or a full disk midway
    would leave the owner's file half written.
    """
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        try:
            os.chown(tmp, -1, st.st_gid)  # allowed when we are in the owner's group
        except OSError:
            mode &= ~0o070
    try:
        os.chmod(tmp, mode)
    except OSError:
        pass  # a file system without modes (vfat, some shares): nothing to keep


def write_atomic(path: Path, text: str, *, expected: str | None,
                 mark: marks.Mark | None = None) -> str | None:
    """Write ``text`` to ``path`` atomically unless the file there is the owner's.

    ``expected`` is the hash we recorded for our last write (None: never wrote).
    ``mark``: what the text answers (its ``sha256`` is filled in here), set on the
    temp file before the rename, so the bytes never appear without it.
    Returns the hash of the bytes written, or None when the owner's file was kept.
    Readers see the old file or the new one, never a partial one.
    """
    path = Path(path)
    data = as_written(text).encode("utf-8")
    if inspect(path, expected) not in ("missing", "ours"):
        return None
    stamp = None
    if mark is not None:
        marked = marks.with_hash(mark, text_hash(data))

        def stamp(fd: int) -> None:
            marks.set_on(fd, path, marked)

    tmp = make_temp(path.parent, data, stamp)
    try:
        for _ in range(3):
            # Re-check just before the swap: the owner may have edited meanwhile.
            state = inspect(path, expected)
            if state == "ours":
                _keep_access(tmp, path)
                os.replace(tmp, path)
                break
            if state != "missing":
                _unlink_quietly(tmp)
                return None
            # link() refuses to clobber, so a file created since is never lost.
            try:
                os.link(tmp, path)
            except FileExistsError:
                continue  # someone created it just now: look again
            except OSError as e:
                if e.errno not in _NO_LINK:
                    raise
                os.replace(tmp, path)
                break
            os.unlink(tmp)
            break
        else:
            raise OSError(errno.EAGAIN, "sidecar keeps appearing and vanishing", str(path))
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        release_temp(tmp)
    _fsync_dir(path.parent)
    return text_hash(data)


def move_sidecar(old: Path, new: Path) -> bool:
    """Move a sidecar after its source was renamed; never clobbers ``new``.

    Returns whether it moved. A missing ``old`` or an existing ``new`` is False.
    """
    old, new = Path(old), Path(new)
    if not os.path.lexists(old) or os.path.lexists(new):
        return False
    try:
        # link() fails if new exists: no window in which a file there is replaced.
        os.link(old, new, follow_symlinks=False)
    except FileExistsError:
        return False
    except FileNotFoundError:
        return False  # old vanished meanwhile
    except OSError as e:
        if e.errno not in _NO_LINK:
            raise
        # No hard links here: the check above is the best this filesystem allows.
        if os.path.lexists(new):
            return False
        os.rename(old, new)
    else:
        os.unlink(old)
    marks.follow(old, new)
    _fsync_dir(new.parent)
    if old.parent != new.parent:
        _fsync_dir(old.parent)
    return True


def clean_stale_temps(directory: Path, older_than: float, now: float) -> int:
    """Remove our temp files older than ``older_than`` seconds (left by a crash)."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return 0
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        with _IN_FLIGHT_LOCK:
            if str(directory / entry.name) in _IN_FLIGHT:  # as make_temp names it
                continue  # ours, being written right now
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime > now - older_than:
                continue  # young: a write may be in progress
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed += 1
    return removed
