"""The state directory and its one-instance lock: one daemon or `sync` per directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
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
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released by close below
    except BlockingIOError:
        return _pid_in(fd)
    finally:
        os.close(fd)
    return None


@contextlib.contextmanager
def instance_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            raise InstanceLocked(
                f"another mediasync (pid {pid}) is using {directory}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
