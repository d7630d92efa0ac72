"""The state directory's lock, as `check` reads it, and as the daemon keeps it."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from mediasync.app.instance import InstanceLocked, instance_lock, lock_holder


def test_lock_holder_names_the_pid_only_while_held(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert lock_holder(state) is None  # never ran
    with instance_lock(state):
        assert lock_holder(state) == str(os.getpid())
        with pytest.raises(InstanceLocked, match=f"pid {os.getpid()}"), instance_lock(state):
            pass
    assert lock_holder(state) is None  # the file stays, the lock is gone


def test_lock_file_removed_is_seen_and_taken_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with instance_lock(state) as lock:
        assert not lock.lost()
        shutil.rmtree(state)
        assert lock.lost()
        lock.retake()  # free: taken again, the directory made again
        assert not lock.lost()
        assert (state / "lock").read_text() == str(os.getpid())


def test_retake_refused_while_another_holds_the_new_lock_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with instance_lock(state) as lock:
        (state / "lock").unlink()
        fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, b"777")
            with pytest.raises(InstanceLocked, match="pid 777"):
                lock.retake()
        finally:
            os.close(fd)


def test_a_second_instance_is_refused_even_with_the_lock_file_gone(tmp_path: Path) -> None:
    """The abstract socket named after the directory: no file operation removes it."""
    state = tmp_path / "state"
    with instance_lock(state):
        shutil.rmtree(state)
        assert lock_holder(state) == str(os.getpid())
        with pytest.raises(InstanceLocked, match=f"pid {os.getpid()}"), instance_lock(state):
            pass
    with instance_lock(state):  # released with the process's hold
        pass
