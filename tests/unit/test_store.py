"""The state database: schema, crash-safe facts, read-only readers."""

from __future__ import annotations

import sqlite3

import pytest

from mediasync.store import SCHEMA_VERSION, OutputRow, PathRow, Store, StoreError


def _path(p: str, sha: str | None = "s1", **kw) -> PathRow:
    base = dict(path=p, folder="/f", size=3, mtime_ns=1, inode=9, sha256=sha, kind="image",
                mime="image/png", problem=None, gone_at=None, updated_at=0.0)
    return PathRow(**{**base, **kw})


def test_schema_version_and_reopen(tmp_path):
    s = Store(tmp_path / "state.db")
    s.put_path(_path("/f/a.png"))
    s.close()
    s = Store(tmp_path / "state.db")
    assert s.get_path("/f/a.png").sha256 == "s1"
    assert s._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "state.db"
    sqlite3.connect(db).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer mediasync"):
        Store(db)


def test_unreferenced_contents_wait_for_gone_paths_to_be_forgotten(tmp_path):
    s = Store(tmp_path / "state.db")
    s.put_path(_path("/f/a.png"))
    s.ensure_content("s1", 3, "image/png", "image", 0.0)
    assert s.unreferenced_contents() == []
    s.mark_gone("/f/a.png", 5.0)
    assert s.unreferenced_contents() == []  # still inside its grace: maybe a rename
    s.delete_path("/f/a.png")
    assert [c.sha256 for c in s.unreferenced_contents()] == ["s1"]


def test_find_twin_and_move_outputs(tmp_path):
    s = Store(tmp_path / "state.db")
    s.put_path(_path("/f/old.png", gone_at=1.0))
    assert s.find_twin("/f/new.png", 9, 3, 1).path == "/f/old.png"
    assert s.find_twin("/f/old.png", 9, 3, 1) is None
    s.put_output(OutputRow("/f/old.png", ".c.md", "s1", "p", "m", "/f/old.png.c.md", "h", None,
                           "written", None, 1, 2, None, 0, 0.0))
    s.move_outputs("/f/old.png", "/f/new.png", {".c.md": "/f/new.png.c.md"})
    assert s.get_outputs("/f/old.png") == {}
    assert s.get_outputs("/f/new.png")[".c.md"].sidecar == "/f/new.png.c.md"


def test_readonly_reader_sees_committed_rows_while_writer_is_open(tmp_path):
    w = Store(tmp_path / "state.db")
    w.put_path(_path("/f/a.png"))
    r = Store(tmp_path / "state.db", readonly=True)
    assert r.counts()["files"] == 1
    r.close()
    w.close()


def test_migration_4_keeps_the_ledger_as_standard_and_adds_provenance(tmp_path):
    from mediasync.store import _MIGRATIONS

    db = tmp_path / "state.db"
    old = sqlite3.connect(db)
    for v in (1, 2, 3):
        old.executescript(_MIGRATIONS[v])
    old.execute("PRAGMA user_version=3")
    old.execute("INSERT INTO usage VALUES ('2026-11-30', 'gemini-2.5-flash', 4, 100, 20, 30)")
    old.commit()
    old.close()
    s = Store(db)
    assert s.usage() == [("2026-11-30", "gemini-2.5-flash", 4, 100, 20, 30, "standard")]
    s.add_usage("2026-11-30", "gemini-2.5-flash", 10, 2, 0, "flex")
    s.add_usage("2026-11-30", "gemini-2.5-flash", 10, 2, 0, "flex")
    assert s.usage(day="2026-11-30")[0][-1] == "flex"  # ordered by tier
    assert s.usage(day="2026-11-30")[0][2:6] == (2, 20, 4, 0)
    row = OutputRow("/f/a.png", ".c.md", "s1", "p", "m", "/f/a.png.c.md", "h", None, "written",
                    None, 1, 2, None, 0, 0.0, 0, "gemini-3.5-flash-lite", "flex")
    s.put_output(row)
    assert s.get_outputs("/f/a.png")[".c.md"] == row


def test_migration_5_batch_jobs_items_and_copies_held_by_open_jobs(tmp_path):
    from mediasync.rules.batching import ENDED, INTERACTIVE, OPEN, WAITING, ItemRow, JobRow
    from mediasync.store import _MIGRATIONS

    db = tmp_path / "state.db"
    old = sqlite3.connect(db)
    for v in (1, 2, 3, 4):
        old.executescript(_MIGRATIONS[v])
    old.execute("PRAGMA user_version=4")
    old.commit()
    old.close()
    s = Store(db)
    job = JobRow("k1", "m", OPEN, 1.0, 3600.0, name="batches/x")
    items = [ItemRow("k1", f"o{i}", f"/f/{i}.png", ".c.md", f"s{i}", "p", "m",
                     f"http://h/v1beta/files/c{i}", WAITING) for i in range(2)]
    s.put_job(job, items)
    assert s.jobs() == [job] and s.job_items("k1") == items
    assert s.item_for("/f/1.png", ".c.md") == items[1]
    assert s.copies_held_by_jobs() == {"s0", "s1"}
    # A copy an open job names is not deleted, even when doomed (a renewal replaced it).
    s.doom("files/c0", "renewed", 1.0)
    s.doom("files/other", "no longer needed", 2.0)
    assert s.doomed() == ["files/other"]
    s.set_items("k1", INTERACTIVE)
    s.put_job(JobRow("k1", "m", ENDED, 1.0, 3600.0, name="batches/x"))
    assert s.copies_held_by_jobs() == set() and s.jobs() == []
    assert s.doomed() == ["files/c0", "files/other"] and len(s.jobs(open_only=False)) == 1
