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


def test_xmp_marks_move_with_their_sidecar(tmp_path):
    s = Store(tmp_path / "state.db")
    s.put_output(OutputRow("/f/old.png", ".xmp", "s1", "p", "m", "/f/old.png.xmp", "h", None,
                           "written", None, 1, 2, None, 0, 0.0))
    s.put_xmp_marks("/f/old.png.xmp", '{"description": "d"}', 1.0)
    s.put_xmp_marks("/f/new.png.xmp", '{"description": "stale"}', 1.0)
    s.move_outputs("/f/old.png", "/f/new.png", {".xmp": "/f/new.png.xmp"})
    assert s.get_xmp_marks("/f/new.png.xmp") == '{"description": "d"}'
    assert s.get_xmp_marks("/f/old.png.xmp") is None


def test_readonly_reader_sees_committed_rows_while_writer_is_open(tmp_path):
    w = Store(tmp_path / "state.db")
    w.put_path(_path("/f/a.png"))
    r = Store(tmp_path / "state.db", readonly=True)
    assert r.counts()["files"] == 1
    r.close()
    w.close()
