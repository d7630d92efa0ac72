"""The watcher's health check: a dead watch is noticed, a busy folder is not one."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from watchdog.observers.api import BaseObserver

from mediasync.app.watch import Identity, Watcher, folder_identity
from mediasync.config import parse_config
from mediasync.local.folderio import FolderIO
from tests.helpers import wait_for

# folder → (inode, ctime) added to what the file system says: a remount or a
# recreated folder as the watch sees it, without mounting anything.
Shifts = dict[str, tuple[int, int]]


def _shifted(shifts: Shifts):
    def identity(path: str) -> Identity | None:
        real = folder_identity(path)
        ino, ctime = shifts.get(path, (0, 0))
        return None if real is None else (real[0], real[1] + ino, real[2] + ctime)
    return identity


def _watcher(tmp_path: Path, shifts: Shifts | None = None) -> tuple[Watcher, str]:
    folder = tmp_path / "inbox"
    folder.mkdir()
    config = parse_config({"folders": [{"path": str(folder)}]}, source=tmp_path / "c.toml")
    loop = asyncio.new_event_loop()
    w = Watcher(config.folders, config.sidecar_suffixes(), loop, lambda p: None, lambda w: None,
                identity=_shifted(shifts if shifts is not None else {}))
    loop.run_until_complete(w.start())
    return w, str(folder)


def test_files_added_move_the_folder_ctime_but_the_watch_is_healthy(tmp_path):
    w, key = _watcher(tmp_path)
    loop = w.loop
    try:
        before = w.watched(key)
        for i in range(3):
            (Path(key) / f"p{i}.png").write_bytes(b"x")
        wait_for(lambda: key in w.events_since_check(), what="an event")
        assert loop.run_until_complete(w.healthy())
        assert w.watched(key) != before  # the new ctime is taken as the watched one
        assert loop.run_until_complete(w.healthy())
    finally:
        w.stop()
        loop.close()


def test_a_changed_folder_with_no_event_is_a_dead_watch(tmp_path):
    shifts: Shifts = {}
    w, key = _watcher(tmp_path, shifts)
    loop = w.loop
    try:
        shifts[key] = (0, 1)  # a new ctime and no event: as a remounted tmpfs root looks
        assert loop.run_until_complete(w.healthy())  # its event may be late: one check more
        assert not loop.run_until_complete(w.healthy())  # still unexplained: dead
        shifts[key] = (1, 0)  # a recreated folder (a new inode), even with events
        w.saw(str(Path(key) / "new.png"))
        assert not loop.run_until_complete(w.healthy())
    finally:
        w.stop()
        loop.close()


def test_an_event_that_arrives_after_the_health_check_still_explains_the_change(tmp_path):
    w, key = _watcher(tmp_path)
    loop = w.loop
    try:
        before = w.watched(key)
        # No observer: the change's event is in no one's hands until the test hands it
        # over, as when the check runs before it arrives (polling: up to 2 s late).
        w.stop()
        (Path(key) / "late.png").write_bytes(b"x")
        assert loop.run_until_complete(w.healthy())
        w.saw(str(Path(key) / "late.png"))  # the event arrives before the next check
        assert loop.run_until_complete(w.healthy())
        assert w.watched(key) != before
        assert loop.run_until_complete(w.healthy())
    finally:
        w.stop()
        loop.close()


class _Hung:
    """A FolderIO gate: the folder's calls block until released (no dead NFS needed)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.release = threading.Event()

    def __call__(self, folder: str) -> None:
        if folder == self.folder:
            self.release.wait(10)


def test_a_folder_that_did_not_answer_at_set_up_is_re_armed_once_it_does(tmp_path, monkeypatch):
    monkeypatch.setattr("mediasync.app.watch.START_TIMEOUT", 0.2)  # a shorter clock, not a wait
    folder = tmp_path / "share"
    folder.mkdir()
    key = str(folder)
    config = parse_config({"folders": [{"path": key}]}, source=tmp_path / "c.toml")
    gate = _Hung(key)
    loop = asyncio.new_event_loop()
    w = Watcher(config.folders, config.sidecar_suffixes(), loop, lambda p: None,
                lambda w: None, fs=FolderIO(timeout=0.2, gate=gate))

    def observers() -> list[BaseObserver]:
        return [t for t in threading.enumerate() if isinstance(t, BaseObserver) and t.is_alive()]

    before = observers()
    try:
        assert loop.run_until_complete(w.start()) == [f"cannot watch {key}: it does not answer"]
        assert loop.run_until_complete(w.healthy())  # still hung: nothing to re-arm yet
        gate.release.set()
        wait_for(lambda: not w.fs.hung(key), what="the share to answer")
        assert not loop.run_until_complete(w.healthy())  # answers now: re-arm and rescan
        # The set-up that came back late started an observer nobody owns: it is stopped.
        wait_for(lambda: observers() == before, what="the late observer to stop")
    finally:
        gate.release.set()
        w.stop()
        loop.close()
