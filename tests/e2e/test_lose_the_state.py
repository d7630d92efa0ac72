"""Lose the state, keep the work (issue 18, items 1-4): a damaged, deleted or
unlocked state database heals without uploading or paying again, and without
taking mediasync's sidecars for the owner's edits. The real CLI and daemon
against the emulator over loopback.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from mediasync.emulator import Emulator, EmulatorConfig
from mediasync.media.samples import png_bytes
from tests.helpers import Running, cli, damage_db, db_rows, wait_for, write_config

PROMPT = '[[folders.prompts]]\nkinds = ["image"]\nprompt = "{}"\nsidecar = ".caption.md"\n'


@pytest.fixture
def emu():
    e = Emulator(EmulatorConfig(port=0, processing_delay=0.05)).start()
    yield e
    e.stop()


def _setup(tmp_path: Path, emu: Emulator, prompt: str = "Say one.") -> tuple[Path, Path]:
    cfg = write_config(tmp_path, emu.base_url, daemon={"settle": "200ms"},
                       prompts=PROMPT.format(prompt))
    inbox = tmp_path / "inbox"
    for i in (1, 2):
        (inbox / f"p{i}.png").write_bytes(png_bytes(seed=180 + i))
    return cfg, inbox


def _reprompt(tmp_path: Path, emu: Emulator, prompt: str) -> Path:
    return write_config(tmp_path, emu.base_url, daemon={"settle": "200ms"},
                        prompts=PROMPT.format(prompt))


def _counts(emu: Emulator) -> tuple[int, int]:
    s = emu.stats()
    return s["uploads_started"], s["requests"].get("generate", 0)


def _status(cfg: Path) -> dict:
    r = cli(cfg, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _sidecars(doc: dict) -> dict[str, str]:
    return {s["name"]: s["outcome"] for f in doc["files"] for s in f["sidecars"]}


# -- 1: a damaged database -----------------------------------------------------------
def test_damaged_database_is_kept_aside_and_rebuilt_without_paying_again(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    assert cli(cfg, "sync").returncode == 0
    (inbox / "p2.png.caption.md").write_text("my own words\n")  # the owner's edit
    state = tmp_path / "state"
    damage_db(state / "state.db")
    before = _counts(emu)

    r = cli(cfg, "status")  # never a traceback: one line saying what heals it
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "damaged" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr  # was 2, for ever
    assert "Traceback" not in r.stderr
    assert r.stderr.count("the state database was damaged") == 1
    kept = list(state.glob("state.db.damaged-*"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0  # kept for the owner
    assert _counts(emu) == before  # adopted the live copies; nothing generated again
    assert len(emu.list_files()) == 2
    assert (inbox / "p2.png.caption.md").read_text() == "my own words\n"
    doc = _status(cfg)
    assert doc["recovery"]["what"].startswith("the state database was damaged")
    assert doc["recovery"]["pending"] is False  # the pass met every file
    assert {f["state"] for f in doc["files"]} == {"synced"}
    assert _sidecars(doc) == {"p1.png.caption.md": "written", "p2.png.caption.md": "kept_edit"}
    assert "RECOVERED" in cli(cfg, "status").stdout

    # Ours is ours again: a new prompt regenerates it, the owner's edit stays.
    cfg = _reprompt(tmp_path, emu, "Say two.")
    assert cli(cfg, "sync").returncode == 0
    assert "Say two." in (inbox / "p1.png.caption.md").read_text()
    assert (inbox / "p2.png.caption.md").read_text() == "my own words\n"
    assert _counts(emu) == (before[0], before[1] + 1)


def test_daemon_starts_on_a_damaged_database_instead_of_exiting(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    assert cli(cfg, "sync").returncode == 0
    damage_db(tmp_path / "state" / "state.db")
    before = _counts(emu)
    d = Running(cfg)  # exited 2 at once before: systemd restarted it for ever
    try:
        wait_for(lambda: "met every file again" in d.log(), what="rebuild done", proc=d.proc)
        assert _counts(emu) == before
    finally:
        assert d.stop() == 0, d.log()
    assert "Traceback" not in d.log()
    assert {f["state"] for f in _status(cfg)["files"]} == {"synced"}


# -- 2: a database deleted while the daemon runs --------------------------------------
def test_database_deleted_while_running_is_written_back(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    d = Running(cfg)
    try:
        wait_for(lambda: (inbox / "p2.png.caption.md").exists()
                 and (inbox / "p1.png.caption.md").exists(), what="captions", proc=d.proc)
        wait_for(lambda: len(db_rows(cfg, "SELECT * FROM outputs WHERE outcome='written'"))
                 == 2, what="recorded", proc=d.proc)
        before = _counts(emu)
        (tmp_path / "state" / "state.db").unlink()
        wait_for(lambda: "was deleted while mediasync ran; wrote it back" in d.log(),
                 what="write-back", proc=d.proc)
        doc = _status(cfg)
        assert _sidecars(doc) == {"p1.png.caption.md": "written",
                                  "p2.png.caption.md": "written"}
        assert "was deleted while mediasync ran" in doc["recovery"]["what"]
        # A new prompt reaches the sidecars: they are still ours, not "the owner's".
        _reprompt(tmp_path, emu, "Say two.")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: all("Say two." in (inbox / f"p{i}.png.caption.md").read_text()
                             for i in (1, 2)), what="regenerated", proc=d.proc)
        assert _counts(emu) == (before[0], before[1] + 2)  # no upload again
    finally:
        assert d.stop() == 0, d.log()
    assert "Traceback" not in d.log()


def test_database_deleted_while_stopped_is_rebuilt_from_listing_and_marks(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    assert cli(cfg, "sync").returncode == 0
    before = _counts(emu)
    for side in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'state' / 'state.db'}{side}").unlink(missing_ok=True)
    r = cli(cfg, "sync")
    assert r.returncode == 0, r.stderr
    assert "the state database was missing" in r.stderr
    assert _counts(emu) == before  # the issue measured 2 uploads again, 2 orphans
    assert len(emu.list_files()) == 2
    doc = _status(cfg)  # was "kept the owner's edit" for every sidecar, for good
    assert _sidecars(doc) == {"p1.png.caption.md": "written", "p2.png.caption.md": "written"}
    cfg = _reprompt(tmp_path, emu, "Say two.")
    assert cli(cfg, "sync").returncode == 0
    assert all("Say two." in (inbox / f"p{i}.png.caption.md").read_text() for i in (1, 2))


# -- 3: the state folder removed: the lock is lost ------------------------------------
def test_lock_lost_with_the_state_folder_is_taken_again_and_no_sync_runs_beside(tmp_path,
                                                                                emu):
    cfg, inbox = _setup(tmp_path, emu)
    d = Running(cfg)
    try:
        wait_for(lambda: len(db_rows(cfg, "SELECT * FROM outputs WHERE outcome='written'"))
                 == 2, what="captions", proc=d.proc)
        before = _counts(emu)
        shutil.rmtree(tmp_path / "state")
        r = cli(cfg, "sync")  # ran beside the daemon: 4 uploads, 3 generations
        assert r.returncode == 4, r.stderr
        assert f"pid {d.proc.pid}" in r.stderr
        wait_for(lambda: "took it again" in d.log() and "wrote it back" in d.log(),
                 what="lock and database back", proc=d.proc)
        assert (tmp_path / "state" / "lock").read_text() == str(d.proc.pid)
        assert _counts(emu) == before
        assert len(emu.list_files()) == 2
        assert cli(cfg, "sync").returncode == 4
    finally:
        assert d.stop() == 0, d.log()
    assert _sidecars(_status(cfg)) == {"p1.png.caption.md": "written",
                                       "p2.png.caption.md": "written"}


def test_daemon_stops_when_another_took_its_lost_lock(tmp_path, emu):
    cfg, inbox = _setup(tmp_path, emu)
    d = Running(cfg)
    state = tmp_path / "state"
    try:
        wait_for(lambda: (inbox / "p1.png.caption.md").exists(), what="caption", proc=d.proc)
        shutil.rmtree(state)
        state.mkdir()
        # Another mediasync (one that cannot see the daemon's socket: another network
        # namespace, an older version) holds the new lock file.
        fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        try:
            assert d.proc.wait(timeout=30) == 4
        finally:
            os.close(fd)
    finally:
        d.stop()
    assert "another mediasync took the state directory" in d.log()
    assert "pid 4242" in d.log()
    assert "Traceback" not in d.log()
