"""The state directory and its one-instance lock: one daemon or `sync` per directory.

Two locks, because a lock file can be deleted under its holder (``rm -rf`` of the
state directory): an ``flock`` on ``lock`` in the directory, and an abstract unix
socket named after the directory's real path, which no file operation can remove
and the kernel frees when the process ends. The daemon looks at its lock file
every few seconds (``InstanceLock.lost``) and takes it again (``retake``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from mediasync.config import Config

STATE_FILE = "state.db"
LOCK_FILE = "lock"  # holds the pid of the process that has the lock


class InstanceLocked(Exception):
    """Another mediasync holds this state directory."""


def state_dir(config: Config, env: Mapping[str, str]) -> Path:
    # systemd's StateDirectory= hands the path in; it wins over the config file.
    override = env.get("MEDIASYNC_STATE_DIR")
    return Path(override) if override else config.daemon.state_dir


def _pid_in(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"


def lock_holder(directory: Path) -> str | None:
    """The pid of the mediasync holding ``directory``'s lock, or None when none does."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return _socket_holder(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released by close below
    except BlockingIOError:
        return _pid_in(fd)
    finally:
        os.close(fd)
    return _socket_holder(directory)


def _socket_name(directory: Path) -> bytes:
    real = os.path.realpath(directory).encode("utf-8", "surrogateescape")
    return b"\0mediasync-lock:" + hashlib.sha256(real).hexdigest()[:32].encode()


def _socket_holder(directory: Path) -> str | None:
    """The pid listening on the directory's abstract socket, or None (no one, or
    a mediasync of another network namespace)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.setblocking(False)
        s.connect(_socket_name(directory))
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return str(struct.unpack("3i", creds)[0])
    except OSError:
        return None
    finally:
        s.close()


class InstanceLock:
    """Holds ``directory`` for this process: see the module's docstring."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._sock: socket.socket | None = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_FILE

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bind()
        try:
            self._take_file()
        except BaseException:
            self.release()
            raise

    def _bind(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(_socket_name(self.directory))
            sock.listen(8)  # never accepted: a contender's connect names our pid
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                return  # no abstract sockets here: the lock file alone guards
            pid = _socket_holder(self.directory) or "?"
            raise InstanceLocked(
                f"another mediasync (pid {pid}) is using {self.directory}; stop it first"
            ) from None
        self._sock = sock

    def _take_file(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise InstanceLocked(
                f"another mediasync (pid {pid}) is using {self.directory}; stop it first"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def lost(self) -> bool:
        """The lock file we hold is no longer at its path (deleted, or replaced)."""
        if self._fd is None:
            return True
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True

    def retake(self) -> None:
        """Take the lock file at its path again; InstanceLocked when another holds it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._take_file()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@contextlib.contextmanager
def instance_lock(directory: Path) -> Iterator[InstanceLock]:
    lock = InstanceLock(directory)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
