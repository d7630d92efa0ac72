"""The state database: schema, crash-safe facts, read-only readers."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from mediasync.rules.rows import CopyFacts, OutputFacts, PathFacts
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
    assert _sql(tmp_path / "state.db", "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert _sql(tmp_path / "state.db", "PRAGMA journal_mode")[0][0] == "wal"


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


def _sql(db: Path, statement: str, params: tuple = ()) -> list[tuple]:
    """One statement on the database file, from a connection of its own (as another
    program, or an older mediasync, would see it)."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as c:
        return c.execute(statement, params).fetchall()


def _back_to_version_3(db: Path) -> None:
    """Undo every migration after 3, as a database an older daemon wrote (the store
    closed)."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as c:
        _undo_after_3(c)


def _undo_after_3(c: sqlite3.Connection) -> None:
    c.execute("DROP INDEX paths_stat")
    for col in ("remote_bytes", "next_bytes"):
        c.execute(f"ALTER TABLE contents DROP COLUMN {col}")
    for col in ("model_version", "service_tier"):
        c.execute(f"ALTER TABLE outputs DROP COLUMN {col}")
    c.executescript("DROP TABLE usage; CREATE TABLE usage (day TEXT NOT NULL, model TEXT "
                        "NOT NULL, requests INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER "
                        "NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, "
                        "thoughts_tokens INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (day, model));")
    c.executescript("DROP TABLE answers; DROP TABLE xmp_marks; DROP TABLE batch_items; "
                    "DROP TABLE batch_jobs;")
    c.execute("PRAGMA user_version=3")


def test_find_twin_is_looked_up_by_index_and_prefers_a_vanished_path(tmp_path):
    """Asked for every new file: a scan of the table per file was quadratic over a
    first sync. The answer is the one the scan gave: a path of that stat identity
    with a hash, other than the asker, a vanished one first."""
    s = Store(tmp_path / "state.db")
    plan = _sql(tmp_path / "state.db",
                "EXPLAIN QUERY PLAN SELECT * FROM paths WHERE path<>? AND inode=? AND size=? AND "
                "mtime_ns=? AND sha256 IS NOT NULL ORDER BY gone_at IS NULL LIMIT 1",
                ("/f/x", 1, 2, 3))
    assert any("USING INDEX paths_stat" in row[-1] for row in plan), plan
    s.put_path(_path("/f/live.png"))
    s.put_path(_path("/f/gone.png", gone_at=1.0))
    s.put_path(_path("/f/nohash.png", sha=None, gone_at=1.0))
    s.put_path(_path("/f/other.png", inode=10, gone_at=1.0))
    assert s.find_twin("/f/new.png", 9, 3, 1).path == "/f/gone.png"
    assert s.find_twin("/f/gone.png", 9, 3, 1).path == "/f/live.png"
    assert s.find_twin("/f/new.png", 9, 3, 2) is None


def test_a_version_3_database_gets_the_stat_index(tmp_path):
    db = tmp_path / "state.db"
    s = Store(db)
    s.put_path(_path("/f/a.png"))
    s.close()
    _back_to_version_3(db)
    s = Store(db)
    assert _sql(db, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    names = {r[0] for r in _sql(db, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert "paths_stat" in names
    assert s.get_path("/f/a.png") is not None


def test_live_files_gives_each_live_path_with_its_content_and_outputs(tmp_path):
    """One joined query, rows one at a time: the same as reading the three tables
    whole and matching them up, as `status` did."""
    import random

    rng = random.Random(5)
    s = Store(tmp_path / "state.db")
    dirs = ["a", "b", "c", "d\udce9"]  # "\udce9": the byte 0xe9, a name not UTF-8
    for i in range(300):
        sha = f"sha{rng.randrange(120)}" if rng.random() < 0.9 else None
        s.put_path(_path(f"/f/{rng.choice(dirs)}/{i:03d}.png", sha=sha,
                         gone_at=1.0 if rng.random() < 0.15 else None,
                         problem=None if sha else "empty file"))
        for suffix in rng.sample([".c.md", ".xmp", ".t.txt"], rng.randrange(4)):
            path = (f"/f/x/{i:03d}.png" if rng.random() < 0.1 else
                    f"/f/{rng.choice(dirs)}/{i:03d}.png")
            s.put_output(OutputRow(path, suffix, "s", "p", "m", path + suffix, "h", None,
                                   "written", None, 1, 2, None, 0, 0.0))
    for n in range(0, 140, 2):  # some contents known, some not; some unreferenced
        s.ensure_content(f"sha{n}", n, "image/png", "image", 0.0)
        if n % 3:
            s.promoted(f"sha{n}", 1.0, f"files/{n}", "u", 99.0)
    contents = {c.sha256: c for c in s.all_contents()}
    outputs: dict[str, dict[str, OutputRow]] = {}
    for o in s.all_outputs():
        outputs.setdefault(o.path, {})[o.suffix] = o
    want = [(r, contents.get(r.sha256 or ""), outputs.get(r.path, {}))
            for r in s.all_paths() if r.gone_at is None]
    assert list(s.live_files()) == want
    assert len(want) > 200 and any(c is None for _, c, _ in want)
    assert any(not r.path.isascii() and len(o) > 1 for r, _, o in want)
    assert set(s.live_path_names()) == {r.path for r, _, _ in want}
    # `status`'s narrow reading: the same files and order, each field as the full row's.
    narrow = list(s.report_files())
    assert [r.path for r, _, _ in narrow] == [r.path for r, _, _ in want]
    for (pf, cf, of), (row, content, outs) in zip(narrow, want, strict=True):
        assert pf == tuple(getattr(row, f) for f in PathFacts._fields)
        assert cf == (None if content is None else
                      tuple(getattr(content, f) for f in CopyFacts._fields))
        assert of == {k: tuple(getattr(o, f) for f in OutputFacts._fields)
                      for k, o in outs.items()}


def test_retry_times_from_an_unclamped_server_delay_heal_on_upgrade(tmp_path):
    # Before delays were clamped, wire/03's RetryInfo (INT64_MAX s) was recorded as a
    # retry time some 10^14 days ahead: the migration makes those rows due now.
    db = tmp_path / "state.db"
    s = Store(db)
    s.ensure_content("far", 3, "image/png", "image", 0.0)
    s.ensure_content("near", 3, "image/png", "image", 0.0)
    s.copy_failed("far", 1.0, "the project's 20 GB of file storage is full", 9.2e18, 1)
    s.copy_failed("near", 1.0, "503", 1_800_000_600.0, 1)
    s.put_output(OutputRow("/f/a.png", ".c.md", "far", "p", "m", "/f/a.png.c.md", None, None,
                           "failed", "429", 0, 0, 9.2e18, 1, 0.0))
    s.close()
    _back_to_version_3(db)  # as an old daemon left it
    s = Store(db)
    assert s.get_content("far").retry_at == 0 and s.get_content("far").error  # waiting, due
    assert s.get_content("near").retry_at == 1_800_000_600.0
    assert s.get_outputs("/f/a.png")[".c.md"].retry_at == 0


def test_the_provenance_migration_keeps_the_ledger_as_standard_and_adds_provenance(tmp_path):
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


def test_the_batch_migration_jobs_items_and_copies_held_by_open_jobs(tmp_path):
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


def test_held_bytes_sums_what_copies_held_lists(tmp_path):
    """Asked before every upload: SQLite's sum, the same as adding up the list."""
    import random

    rng = random.Random(7)
    s = Store(tmp_path / "state.db")
    shas = []
    for i in range(200):
        sha = f"c{i:03d}"
        shas.append(sha)
        s.ensure_content(sha, rng.randrange(1, 1000), "image/png", "image", 0.0)
        if rng.random() < 0.7:
            s.promoted(sha, 1.0, f"files/{i}", "u", rng.choice([50.0, 150.0]))
        if rng.random() < 0.3:  # a new copy uploaded, not ACTIVE yet (a proxy, maybe)
            s.uploaded(sha, 1.0, f"files/n{i}", "u2", 200.0, 1,
                       rng.choice([None, rng.randrange(1, 100)]))
    uploading = rng.sample(shas, 20)
    held = s.copies_held(100.0)
    want_making = sum(m for sha, _, m in held if sha in uploading)
    assert s.held_bytes(100.0, uploading) == (sum(lv + m for _, lv, m in held), want_making)
    assert s.held_bytes(100.0)[1] == 0 and s.held_bytes(100.0)[0] > 0


def test_library_fits_answers_as_the_exact_sum_of_the_live_paths(tmp_path):
    """The content table's sum answers first: an upper bound, so a content no live path
    holds (a vanished file's, kept for its grace period) only sends it to the exact sum."""
    s = Store(tmp_path / "state.db")
    for i, size in enumerate((100, 300)):
        s.ensure_content(f"s{i}", size, "image/png", "image", 0.0)
        s.put_path(_path(f"/m/{i}.png", f"s{i}", size=size))
    s.ensure_content("gone", 5000, "image/png", "image", 0.0)  # no live path
    s.put_path(_path("/m/bad.png", "s9", size=9000, problem="empty file"))
    total, largest = s.library_bytes()
    assert (total, largest) == (400, 300)
    for limit in (699, 700, 5699, 5700, 10**6):
        assert s.library_fits(limit) is (limit >= total + largest), limit


def test_a_clock_step_moves_batch_jobs_and_a_rename_moves_their_items(tmp_path):
    """shift_times: a batch job's next look and its age are our own times, as retries
    are. move_outputs: a moved file's items win over the new path's (no key clash)."""
    from mediasync.rules.batching import OPEN, WAITING, ItemRow, JobRow

    s = Store(tmp_path / "state.db")
    s.put_job(JobRow("k1", "m", OPEN, 1000.0, 3600.0, name="batches/x", next_at=1500.0),
              [ItemRow("k1", f"r{p}", f"/f/{p}.png", ".c.md", f"s{p}", "p", "m", "u", WAITING)
               for p in ("a", "b")])
    s.shift_times(-600.0)
    job = s.jobs()[0]
    assert (job.created_at, job.next_at) == (400.0, 900.0)
    s.move_outputs("/f/a.png", "/f/b.png", {})
    assert [(i.path, i.request_key) for i in s.job_items("k1")] == [("/f/b.png", "ra")]
