"""Folders that go away, instances sharing a key, reloads (issue 8 rows 2, 4, 5, 11, 13).

Real HTTP over loopback to the emulator; the real CLI where the case is end to end.
Mount cases need root and tmpfs; they skip with the reason where the machine refuses.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mediasync.config import parse_config
from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.engine.dispatch import Engine
from mediasync.gemini import GeminiClient
from mediasync.local.folderio import holding_mount, parse_mount_points, read_mount_points
from mediasync.media.samples import png_bytes
from mediasync.rules import availability
from mediasync.store import Meta, Store
from tests.helpers import Running, cli, db_rows, engine_setup, wait_for, write_config


@pytest.fixture
def emu():
    e = Emulator(EmulatorConfig(port=0, processing_delay=0.05)).start()
    yield e
    e.stop()


def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True)


class Mounted:
    """``inbox`` is a bind mount of a tmpfs (``backing``): unmounting ``inbox``
    leaves an empty mount point and keeps the files for the remount. ``at`` puts
    the mount point elsewhere (a disk inside a watched folder)."""

    def __init__(self, root: Path, *, tmpfs: bool = True, at: Path | None = None) -> None:
        self.backing = root / "backing"
        self.inbox = at or root / "inbox"
        self.backing.mkdir()
        self.inbox.mkdir(parents=True)
        if tmpfs:
            r = _sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(self.backing))
            if r.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
        r = _sh("mount", "--bind", str(self.backing), str(self.inbox))
        if r.returncode != 0:
            self.cleanup()
            pytest.skip(f"cannot bind-mount here (needs root): {r.stderr.strip()}")

    def mount(self) -> None:
        r = _sh("mount", "--bind", str(self.backing), str(self.inbox))
        assert r.returncode == 0, r.stderr

    def umount(self) -> None:
        r = _sh("umount", str(self.inbox))
        assert r.returncode == 0, r.stderr

    def __enter__(self) -> Mounted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        # Not os.path.ismount: a bind mount from the same file system fools it.
        for d in (self.inbox, self.backing):
            for _ in range(10):
                if str(d) not in (read_mount_points() or ()):
                    break
                _sh("umount", "-l", str(d))


@pytest.fixture
def mounted(tmp_path):
    with Mounted(tmp_path) as m:
        yield m


@pytest.fixture
def bound(tmp_path):
    """``inbox`` bind-mounts a plain directory of the same file system: the mount
    point and its parent share st_dev, so only mountinfo tells the unmount."""
    with Mounted(tmp_path, tmpfs=False) as m:
        assert os.stat(m.inbox).st_dev == os.stat(tmp_path).st_dev
        yield m


# -- row 4: an unmounted mount point is not a folder of deleted files ------------
@pytest.mark.parametrize(("mount", "seed", "why"), [
    ("mounted", 41, "mount point"),  # a tmpfs: the mount point is another device
    ("bound", 44, "not mounted"),  # same device: only the mount table tells
])
def test_unmounted_folder_keeps_remote_copies_and_sidecars(mount, seed, why, emu, tmp_path,
                                                            request):
    m: Mounted = request.getfixturevalue(mount)
    inbox = m.inbox
    cfg = write_config(tmp_path, emu.base_url, folder=inbox)
    (inbox / "a.png").write_bytes(png_bytes(seed=seed))
    (inbox / "b.png").write_bytes(png_bytes(seed=seed + 1))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["live_files"] == 2
    caption = (inbox / "a.png.caption.md").read_bytes()

    m.umount()
    assert inbox.is_dir() and not (inbox / "a.png").exists()  # the bare mount point
    cli(cfg, "sync")
    assert emu.stats()["live_files"] == 2, "remote copies deleted while unmounted"
    assert db_rows(cfg, "SELECT path FROM paths WHERE gone_at IS NOT NULL") == []
    assert db_rows(cfg, "SELECT COUNT(*) FROM paths") == [(2,)]
    st = cli(cfg, "status")
    assert "UNAVAILABLE" in st.stdout and why in st.stdout, st.stdout

    m.mount()
    before = emu.stats()
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    after = emu.stats()
    assert after["uploads_started"] == before["uploads_started"]
    assert after["requests"].get("generate", 0) == before["requests"].get("generate", 0)
    assert db_rows(cfg, "SELECT DISTINCT outcome FROM outputs") == [("written",)]
    assert (inbox / "a.png.caption.md").read_bytes() == caption
    assert "UNAVAILABLE" not in cli(cfg, "status").stdout


# -- a disk mounted inside a watched folder, pulled --------------------------------
@pytest.fixture
def card(tmp_path):
    """``inbox/card``, a tmpfs bind-mounted inside the plain watched folder ``inbox``
    (an SD card in ~/Pictures)."""
    with Mounted(tmp_path, at=tmp_path / "inbox" / "card") as m:
        yield m


@pytest.mark.parametrize("via_link", [False, True], ids=["folder", "folder_symlink"])
def test_disk_pulled_inside_a_folder_keeps_remote_copies_and_sidecars(
    card, emu, tmp_path, via_link
):
    inbox = tmp_path / "inbox"
    watched = inbox
    if via_link:  # mountinfo names the real path, the config and status the link's
        watched = tmp_path / "link"
        watched.symlink_to(inbox)
    cfg = write_config(tmp_path, emu.base_url, folder=watched)
    shown = watched / "card"
    (inbox / "top.png").write_bytes(png_bytes(seed=47))
    (card.inbox / "a.png").write_bytes(png_bytes(seed=48))
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["live_files"] == 2
    caption = (card.inbox / "a.png.caption.md").read_bytes()
    generated = emu.stats()["requests"]["generate"]

    card.umount()
    assert card.inbox.is_dir() and not (card.inbox / "a.png").exists()
    r = cli(cfg, "sync")
    assert "is not mounted" in r.stderr, r.stderr
    cli(cfg, "sync")  # the record of the pulled disk outlives a scan that finds it empty
    assert db_rows(cfg, "SELECT path FROM paths WHERE gone_at IS NOT NULL") == []
    assert db_rows(cfg, "SELECT COUNT(*) FROM paths") == [(2,)]
    stats = emu.stats()
    assert stats["live_files"] == 2, "the pulled disk's remote copy was deleted"
    assert stats["deletes"] == 0
    st = cli(cfg, "status")
    assert f"waiting: the folder {shown} is not mounted" in st.stdout, st.stdout
    assert f"UNAVAILABLE: {shown}" in st.stdout, st.stdout
    doc = json.loads(cli(cfg, "status", "--json").stdout)
    states = {Path(f["path"]).name: (f["state"], f["message"]) for f in doc["files"]}
    assert states["top.png"] == ("synced", None)  # the rest of the folder is no outage
    assert states["a.png"][0] == "waiting" and str(shown) in states["a.png"][1]
    assert str(shown) in doc["unavailable"]

    card.mount()
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    stats = emu.stats()
    assert stats["uploads_started"] == 2
    assert stats["requests"]["generate"] == generated
    assert stats["deletes"] == 0
    assert db_rows(cfg, "SELECT DISTINCT outcome FROM outputs") == [("written",)]
    assert (card.inbox / "a.png.caption.md").read_bytes() == caption
    st = cli(cfg, "status")
    assert "UNAVAILABLE" not in st.stdout and "waiting" not in st.stdout, st.stdout


def test_a_copy_made_before_the_disk_was_pulled_is_no_rename(card, emu, tmp_path):
    """Copied off the card, then the card pulled: the copy must not take the card
    file's record and sidecars along as a rename would (back, its sidecars would
    look like the owner's and never be regenerated)."""
    cfg = write_config(tmp_path, emu.base_url)
    data = png_bytes(seed=55)
    (card.inbox / "a.png").write_bytes(data)
    assert cli(cfg, "sync").returncode == 0
    card.umount()
    (tmp_path / "inbox" / "copy.png").write_bytes(data)
    cli(cfg, "sync")
    outputs = dict(db_rows(cfg, "SELECT path, outcome FROM outputs"))
    assert outputs == {str(card.inbox / "a.png"): "written",
                       str(tmp_path / "inbox" / "copy.png"): "written"}, outputs
    card.mount()
    assert cli(cfg, "sync").returncode == 0
    assert db_rows(cfg, "SELECT DISTINCT outcome FROM outputs") == [("written",)]
    # The copy's caption is written from the answer paid for the card's file (same
    # bytes, prompt and model: engine/answers.py), not asked again.
    assert emu.stats()["requests"]["generate"] == 1


def test_disk_inside_a_folder_removed_with_its_mount_point_deletes(card, emu, tmp_path):
    """Unmounted and its directory removed: its owner took it away for good."""
    cfg = write_config(tmp_path, emu.base_url)
    (card.inbox / "a.png").write_bytes(png_bytes(seed=54))
    assert cli(cfg, "sync").returncode == 0
    card.umount()
    card.inbox.rmdir()
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert emu.stats()["live_files"] == 0
    assert "UNAVAILABLE" not in cli(cfg, "status").stdout


def test_a_vanished_file_on_a_pulled_disk_is_not_gone(card, emu, tmp_path):
    """Neither the scan queues its path nor does the event path (Identifier.gone, as
    a watcher event or a reconcile that finds the file missing) mark it gone."""
    (card.inbox / "a.png").write_bytes(png_bytes(seed=50))
    config, store = engine_setup(tmp_path, emu.base_url)
    path = str(card.inbox / "a.png")

    async def main() -> tuple[bool, float | None, dict[str, str]]:
        client = GeminiClient("k", emu.base_url)
        try:
            engine = Engine(config, store, client, once=True)
            await engine.scan()
            await engine.run(until_idle=True)
            card.umount()
            await engine.scan()
            queued = engine.busy  # the only file is on the pulled disk: nothing to look at
            engine.mark_dirty(path)  # as a watcher event: the file is missing
            await engine.run(until_idle=True)
            row = store.get_path(path)
            assert row is not None
            return queued, row.gone_at, store.read(Meta.UNAVAILABLE)
        finally:
            await client.aclose()
            store.close()

    queued, gone_at, unavailable = asyncio.run(main())
    assert not queued, "the scan took the pulled disk's file for vanished"
    assert gone_at is None, "a file on the pulled disk was marked gone"
    assert "is not mounted" in unavailable[str(card.inbox)]


def _rescans(log: str) -> int:
    return sum(1 for line in log.splitlines()
               if '"rescan job' in line and "executed successfully" in line)


def test_daemon_logs_a_pulled_disk_once_and_its_return(card, emu, tmp_path):
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "200ms", "rescan_every": "1s"})
    (card.inbox / "a.png").write_bytes(png_bytes(seed=53))
    d = Running(cfg)
    try:
        wait_for(lambda: (card.inbox / "a.png.caption.md").exists(), timeout=20,
                 what="caption", proc=d.proc)
        card.umount()
        wait_for(lambda: "is not mounted" in d.log(), what="the pulled disk seen", proc=d.proc)
        # a few rescans see it gone (the record must keep it from one to the next)
        wait_for(lambda: _rescans(d.log()) >= 3, what="rescans", proc=d.proc)
        assert db_rows(cfg, "SELECT path FROM paths WHERE gone_at IS NOT NULL") == []
        st = cli(cfg, "status")
        assert f"waiting: the folder {card.inbox} is not mounted" in st.stdout, st.stdout
        card.mount()
        wait_for(lambda: f"folder {card.inbox} is available again" in d.log(),
                 what="the disk seen back", proc=d.proc)
    finally:
        code = d.stop()
    log = d.log()
    assert code == 0, log
    assert "Traceback" not in log
    assert log.count(f"WARNING folder {card.inbox} is not mounted") == 1, log
    assert log.count(f"folder {card.inbox} is available again") == 1, log
    assert "is gone" not in log
    stats = emu.stats()
    assert (stats["uploads_started"], stats["deletes"], stats["live_files"]) == (1, 0, 1)
    assert stats["requests"]["generate"] == 1


MOUNTINFO = rb"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 27 254:0 /srv/disk /media/my\040photos rw,relatime shared:1 - ext4 /dev/vda rw
32 27 0:40 / /mnt/back\134slash\011tab rw - tmpfs tmpfs rw
33 27 0:41 / /mnt/caf\303\251 rw - tmpfs tmpfs rw
"""


def test_mount_points_are_read_from_mountinfo_with_escapes():
    points = parse_mount_points(MOUNTINFO)
    assert points == {"/proc", "/", "/media/my photos", "/mnt/back\\slash\ttab", "/mnt/caf\u00e9"}
    assert parse_mount_points(b"") == frozenset()
    assert parse_mount_points(b"short line\n") == frozenset()


def test_holding_mount_is_the_innermost_mount_point_but_not_root():
    points = frozenset({"/", "/media", "/media/my photos", "/proc"})
    assert holding_mount("/media/my photos", points) == "/media/my photos"
    assert holding_mount("/media/my photos/inbox", points) == "/media/my photos"
    assert holding_mount("/media/other", points) == "/media"
    assert holding_mount("/mediax/inbox", points) is None  # a prefix of the name is no parent
    assert holding_mount("/home/me/inbox", points) is None  # on / only: nothing to watch


def test_folder_unavailable_when_its_bind_mount_left_the_mount_table():
    now = frozenset({"/", "/media/my photos"})
    gone = frozenset({"/"})
    assert availability.folder_unavailable(1, 1, 1, "/media/my photos", now) is None
    why = availability.folder_unavailable(1, 1, 1, "/media/my photos", gone)
    assert why is not None and "not mounted" in why
    assert availability.folder_unavailable(1, 1, 1, "/media/my photos", None) is None  # unreadable
    assert availability.folder_unavailable(1, 1, 1, None, gone) is None  # never under a mount point
    missing = availability.folder_unavailable(None, 1, 1, None, now)
    assert missing == "does not exist or is not a directory"


@pytest.mark.parametrize(("mount", "seed"), [(None, 43), ("bound", 46), ("card", 49)],
                         ids=["plain", "bound", "card"])
def test_folder_emptied_for_real_still_deletes(mount, seed, emu, tmp_path, request):
    """The other side of row 4: files deleted from a folder that is there (a plain
    folder, a bind mount still mounted, a disk still mounted inside the watched
    folder) are deleted; neither the mount table nor a recorded sub-mount hides that."""
    where = request.getfixturevalue(mount).inbox if mount else tmp_path / "inbox"
    cfg = write_config(tmp_path, emu.base_url)  # watches tmp_path/inbox in every case
    (where / "a.png").write_bytes(png_bytes(seed=seed))
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["live_files"] == 1
    (where / "a.png").unlink()
    assert cli(cfg, "sync").returncode == 0
    assert emu.stats()["live_files"] == 0
    assert db_rows(cfg, "SELECT COUNT(*) FROM paths") == [(0,)]


# -- row 2: a folder that stops answering stalls only its own work --------------
class HungFolder:
    """A FolderIO gate: every file call under ``folder`` blocks until released."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)
        self.release = threading.Event()
        self.blocked = 0

    def __call__(self, folder: str) -> None:
        if folder == self.folder:
            self.blocked += 1
            self.release.wait(30)


def test_hung_folder_stalls_only_itself(emu, tmp_path):
    hung_dir, ok_dir = tmp_path / "hung", tmp_path / "ok"
    hung_dir.mkdir()
    ok_dir.mkdir()
    (hung_dir / "h.png").write_bytes(png_bytes(seed=51))
    (ok_dir / "o.png").write_bytes(png_bytes(seed=52))
    config = parse_config({
        "api": {"base_url": emu.base_url},
        "daemon": {"state_dir": str(tmp_path / "state"), "settle": "0s",
                   "requests_per_minute": 6000},
        "folders": [{"path": str(hung_dir)}, {"path": str(ok_dir)}],
    })
    from mediasync.local.folderio import FolderIO  # the injection point this fix adds

    gate = HungFolder(hung_dir)

    async def main() -> float:
        store = Store(tmp_path / "state" / "state.db")
        client = GeminiClient("k", emu.base_url)
        engine = Engine(config, store, client, fs=FolderIO(timeout=0.5, gate=gate))
        try:
            await asyncio.wait_for(engine.scan(), 5)
            runner = asyncio.create_task(engine.run())
            for _ in range(200):
                if (ok_dir / "o.png.caption.md").exists():
                    break
                await asyncio.sleep(0.05)
            assert (ok_dir / "o.png.caption.md").exists()
            assert not (hung_dir / "h.png.caption.md").exists()
            t0 = time.monotonic()
            await asyncio.wait_for(engine.stop(), 5)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            return time.monotonic() - t0
        finally:
            gate.release.set()
            await client.aclose()
            store.close()

    stop_took = asyncio.run(main())
    assert gate.blocked >= 1
    assert stop_took < 5.0  # the hung call is never waited for
    # Nothing under the hung folder was taken for deleted.
    assert emu.stats()["live_files"] == 1


# -- row 5: two instances on one key ---------------------------------------------
def test_two_instances_on_one_key_keep_each_others_copies(emu, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    cfg1 = write_config(one, emu.base_url)
    cfg2 = write_config(two, emu.base_url)
    (one / "inbox" / "a.png").write_bytes(png_bytes(seed=61))
    (two / "inbox" / "b.png").write_bytes(png_bytes(seed=62))
    # Instance two's copy looks old enough to be a crash's leftover (orphan grace).
    emu.clock.advance(-3600)
    assert cli(cfg2, "sync").returncode == 0
    emu.clock.advance(3600)
    assert cli(cfg1, "sync").returncode == 0
    assert cli(cfg1, "sync").returncode == 0
    names = {f["displayName"] for f in emu.list_files()}
    assert len(names) == 2, names
    assert emu.stats()["uploads_started"] == 2
    ids = {n.split(":")[1] for n in names}
    assert len(ids) == 2  # each instance names its copies
    # purge removes this instance's copies only
    r = cli(cfg1, "files", "purge", "--yes")
    assert r.returncode == 0, r.stderr
    left = [f["displayName"] for f in emu.list_files()]
    assert len(left) == 1 and "b.png" in left[0]


# -- row 11: a watched folder replaced under the watcher ------------------------
def _daemon(tmp_path: Path, emu: Emulator, folder: Path | None = None) -> Running:
    cfg = write_config(tmp_path, emu.base_url, folder=folder, daemon={"settle": "200ms"})
    return Running(cfg)


# The daemon's health check logs this, then re-arms the watch (Daemon._health, its job).
REARMED = "re-arming it and rescanning"


def test_recreated_folder_is_watched_again(emu, tmp_path):
    d = _daemon(tmp_path, emu)
    inbox = tmp_path / "inbox"
    try:
        shutil.rmtree(inbox)
        inbox.mkdir()
        wait_for(lambda: REARMED in d.log(), what="the watch re-armed", proc=d.proc)
        (inbox / "late.png").write_bytes(png_bytes(seed=71))
        wait_for(lambda: (inbox / "late.png.caption.md").exists(), timeout=20,
                 what="caption after the folder came back", proc=d.proc)
    finally:
        code = d.stop()
    assert code == 0, d.log()
    assert "Traceback" not in d.log()


def test_remounted_folder_is_watched_again(tmp_path, emu):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    if _sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(inbox)).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        d = _daemon(tmp_path, emu, folder=inbox)
        try:
            # A whole new file system at the same path: the old inotify watch is dead.
            assert _sh("umount", str(inbox)).returncode == 0
            assert _sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(inbox)).returncode == 0
            wait_for(lambda: REARMED in d.log(), what="the watch re-armed", proc=d.proc)
            (inbox / "late.png").write_bytes(png_bytes(seed=72))
            wait_for(lambda: (inbox / "late.png.caption.md").exists(), timeout=20,
                     what="caption after the remount", proc=d.proc)
        finally:
            code = d.stop()
        assert code == 0, d.log()
        assert "Traceback" not in d.log()
    finally:
        while os.path.ismount(inbox):
            _sh("umount", "-l", str(inbox))


# -- row 13: SIGHUP with requests in flight --------------------------------------
def test_reload_lets_requests_in_flight_finish(tmp_path):
    e = Emulator(EmulatorConfig(port=0, generate_latency=1.5)).start()
    try:
        d = _daemon(tmp_path, e)
        inbox = tmp_path / "inbox"
        try:
            (inbox / "a.png").write_bytes(png_bytes(seed=81))
            wait_for(lambda: e.stats()["requests"].get("generate", 0) >= 1,
                     what="generate in flight", proc=d.proc)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in d.log(), what="reload", proc=d.proc)
            wait_for(lambda: (inbox / "a.png.caption.md").exists(), timeout=20,
                     what="caption", proc=d.proc)
        finally:
            code = d.stop()
        log = d.log()
        assert code == 0, log
        assert "Traceback" not in log and "unexpected error" not in log, log
        assert e.stats()["requests"]["generate"] == 1, "the generation was cut and redone"
    finally:
        e.stop()
