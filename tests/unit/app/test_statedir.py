"""The state database's file healed (app/statedir.py): damaged, missing, deleted or
replaced under the open connection."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from mediasync.app.statedir import (
    INSTANCE_FILE,
    KEEP_DAMAGED,
    keep_instance_id,
    move_aside,
    open_state,
    write_back,
)
from mediasync.store import Meta, PathRow, Store, StoreDamaged, is_damage
from tests.helpers import damage_db


def _row(p: str) -> PathRow:
    return PathRow(path=p, folder="/f", size=3, mtime_ns=1, inode=9, sha256="s1", kind="image",
                   mime="image/png", problem=None, gone_at=None, updated_at=0.0)


def _filled(directory: Path) -> Path:
    store = open_state(directory)
    for i in range(50):
        store.put_path(_row(f"/f/{i}.png"))
    store.close()
    return directory / "state.db"


def test_damage_is_told_from_a_busy_or_missing_database(tmp_path):
    db = _filled(tmp_path)
    damage_db(db)
    con = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError) as bad:
        con.execute("SELECT * FROM paths").fetchall()
    con.close()
    assert is_damage(bad.value)
    busy = sqlite3.OperationalError("database is locked")
    assert not is_damage(busy)  # no sqlite_errorcode: never taken for damage
    with pytest.raises(StoreDamaged):
        Store(db, readonly=True)  # `status` gets a StoreDamaged, not a traceback later


def test_damaged_database_is_moved_aside_and_a_new_one_made(tmp_path):
    db = _filled(tmp_path)
    instance = (tmp_path / INSTANCE_FILE).read_text().strip()
    damage_db(db)
    store = open_state(tmp_path, clock=lambda: 1_800_000_000.0)
    try:
        assert store.get_path("/f/1.png") is None  # a new, empty database
        assert store.read(Meta.INSTANCE_ID) == instance  # kept beside the database
        rec = store.read(Meta.RECOVERY)
        assert rec["pending"] is True and "malformed" in rec["what"]
    finally:
        store.close()
    kept = tmp_path / "state.db.damaged-20270115T080000Z"
    assert kept.read_bytes()[100:4096] == bytes(3996)  # as it was found


def test_a_database_moves_aside_with_its_wal_and_shm(tmp_path):
    """SQLite finds a WAL by its database's name: the kept set still opens as one,
    and no WAL is left beside the new database to be replayed into it."""
    db = tmp_path / "state.db"
    for side in ("", "-wal", "-shm"):
        Path(f"{db}{side}").write_bytes(side.encode() or b"db")
    kept = move_aside(db, "damaged", 1_800_000_000.0)
    assert [Path(f"{kept}{side}").read_bytes() for side in ("", "-wal", "-shm")] == [
        b"db", b"-wal", b"-shm"]
    assert list(tmp_path.glob("state.db-*")) == []


def test_quick_check_finds_damage_the_schema_read_does_not(tmp_path):
    db = _filled(tmp_path)
    with contextlib.closing(sqlite3.connect(db)) as c:
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name='paths'").fetchone()[0]
    page = 4096
    data = bytearray(db.read_bytes())
    data[(root - 1) * page + 8:(root - 1) * page + 200] = b"\xff" * 192  # a table page only
    db.write_bytes(bytes(data))
    Store(db).close()  # opens fine: no query reads that page
    with pytest.raises(StoreDamaged, match="quick_check"):
        Store(db, check=True)


def test_only_the_newest_damaged_databases_are_kept(tmp_path):
    for t in range(KEEP_DAMAGED + 2):
        db = _filled(tmp_path)
        damage_db(db)
        open_state(tmp_path, clock=lambda t=t: 1_800_000_000.0 + t).close()
    kept = sorted(p.name for p in tmp_path.glob("state.db.damaged-*"))
    assert len(kept) == KEEP_DAMAGED
    assert kept[-1].endswith("080004Z")


def test_missing_database_where_one_was_is_a_rebuild_a_first_start_is_not(tmp_path):
    first = open_state(tmp_path)
    assert first.read(Meta.RECOVERY) == {}
    first.close()
    for side in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'state.db'}{side}").unlink(missing_ok=True)
    again = open_state(tmp_path)
    assert "missing" in again.read(Meta.RECOVERY)["what"]
    again.close()


def test_instance_id_file_and_database_agree(tmp_path):
    store = Store(tmp_path / "state.db")
    store.write(Meta.INSTANCE_ID, "abcd1234")
    (tmp_path / INSTANCE_FILE).write_text("ffff0000\n")  # the database's wins
    assert keep_instance_id(store, tmp_path) == "abcd1234"
    assert (tmp_path / INSTANCE_FILE).read_text() == "abcd1234\n"
    store.close()


@pytest.mark.parametrize("replaced", [False, True])
def test_deleted_or_replaced_database_is_written_back_from_the_open_one(tmp_path, replaced):
    db = tmp_path / "state.db"
    store = Store(db)
    store.put_path(_row("/f/a.png"))
    db.unlink()  # its -wal and -shm stay: they are the open connection's
    if replaced:
        other = Store(tmp_path / "other.db")
        other.close()
        (tmp_path / "other.db").rename(db)
    assert store.moved()
    store.put_path(_row("/f/b.png"))  # written to the unlinked file: lost at close
    what = write_back(store, 1_800_000_000.0)
    assert not store.moved()
    store.put_path(_row("/f/c.png"))
    store.close()
    again = Store(db)
    assert [r.path for r in again.all_paths()] == ["/f/a.png", "/f/b.png", "/f/c.png"]
    again.close()
    with contextlib.closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert ("was replaced" in what) == replaced
    assert (tmp_path / "state.db.replaced-20270115T080000Z").exists() == replaced


@pytest.mark.parametrize("pending", [True, False])
def test_a_write_back_leaves_a_rebuild_as_pending_as_it_was(tmp_path, pending):
    # A rebuild still matching copies is the same database after a write-back: ending
    # its pending state would make the copies it has not met yet leftovers, deleted.
    from mediasync.app.instance import instance_lock
    from mediasync.app.statedir import StateGuard

    with instance_lock(tmp_path) as lock:
        store = Store(tmp_path / "state.db")
        store.write(Meta.RECOVERY, {"at": 1.0, "what": "rebuilt", "pending": pending})
        (tmp_path / "state.db").unlink()
        assert StateGuard(lock, store, clock=lambda: 2.0).check() is None
        rec = store.read(Meta.RECOVERY)
        assert "wrote it back" in rec["what"] and rec["pending"] is pending
        store.close()


def test_the_instance_file_reaches_the_disk_before_and_after_its_rename(tmp_path, monkeypatch):
    """A power cut after the rename must not leave an empty file: the instance id names
    the remote copies when the database is lost."""
    import os

    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = Store(tmp_path / "state.db")
    value = keep_instance_id(store, tmp_path)
    assert (tmp_path / INSTANCE_FILE).read_text() == value + "\n"
    assert synced[-2:] == [str(tmp_path / f".{INSTANCE_FILE}.tmp"), str(tmp_path)]
