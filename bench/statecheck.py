"""What checking the state database costs: opening it, SQLite's `PRAGMA quick_check`
and `PRAGMA integrity_check`, over a database of N files.

    .venv/bin/python bench/statecheck.py                 # 10,000 and 100,000 files
    .venv/bin/python bench/statecheck.py --files 1000 --runs 3

Setup (not measured): a state database written through `Store` with N paths, N
contents (each with a live remote copy) and N outputs (a written caption each),
as a library of N synced photos leaves it. Then each operation is timed on a
fresh connection, `--runs` times (the page cache is warm after the first: the
figures are for a database the OS has cached, as at a daemon's restart; a cold
disk adds its read time, about size / disk speed).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import command_line, machine, table

from mediasync.store import ContentRow, Outcome, OutputRow, PathRow, Store


def build(db: Path, n: int) -> None:
    store = Store(db)
    now = time.time()
    with store.transaction():
        for i in range(n):
            sha = f"{i:064x}"
            path = f"/home/me/Pictures/2024/{i // 500:04d}/IMG_{i:06d}.jpg"
            store.put_path(PathRow(path, "/home/me/Pictures", 2_000_000 + i, 1_700_000_000 * 10**9,
                                   1000 + i, sha, "image", "image/jpeg", None, None, now))
            store.ensure_content(sha, 2_000_000 + i, "image/jpeg", "image", now)
            store.promoted(sha, now, f"files/{i:012x}",
                           f"https://generativelanguage.googleapis.com/v1beta/files/{i:012x}",
                           now + 48 * 3600)
            store.put_output(OutputRow(path, ".caption.md", sha, "p" * 64, "gemini-2.5-flash",
                                       path + ".caption.md", "w" * 64, None, Outcome.WRITTEN,
                                       None, 300, 40, None, 0, now, 500))
    store.close()
    _ = ContentRow  # the rows above are what a synced library holds


def timed(db: Path, what: str) -> float:
    t0 = time.perf_counter()
    if what == "open":
        Store(db).close()
    else:
        con = sqlite3.connect(db)
        try:
            if what == "probe":
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            else:
                assert con.execute(f"PRAGMA {what}").fetchall() == [("ok",)]
        finally:
            con.close()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, action="append",
                    help="files in the database (repeatable; default 10000 and 100000)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    args = ap.parse_args()
    sizes = args.files or [10_000, 100_000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-statecheck-") as tmp:
        for n in sizes:
            db = Path(tmp) / f"state-{n}.db"
            build(db, n)
            size = db.stat().st_size / 1e6
            for what in ("open", "probe", "quick_check", "integrity_check"):
                times = [timed(db, what) for _ in range(args.runs)]
                rows.append([f"{n:,}", f"{size:.1f} MB", what,
                             f"{statistics.median(times) * 1000:.1f} ms",
                             f"{max(times) * 1000:.1f} ms"])
    print(f"$ {command_line()}")
    print(f"machine: {machine()}; SQLite {sqlite3.sqlite_version}")
    print(table(rows, ["files", "database", "operation", "median", "max"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
