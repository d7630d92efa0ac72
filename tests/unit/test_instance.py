"""The state directory's lock, as `check` reads it."""

from __future__ import annotations

import os
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
