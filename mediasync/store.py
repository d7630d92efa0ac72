"""Every durable fact, in SQLite (WAL, one writer: the daemon's event loop).

Three tables carry the state docs/architecture.md describes:
- ``paths``: what is on disk, per path (stat cache + content hash);
- ``contents``: per SHA-256, the live remote copy and any copy being uploaded;
- ``outputs``: per (path, sidecar suffix), what was generated and written.
``doomed`` holds remote files we created and must delete (crash-safe removal).
Readers (``mediasync status``) open the same file read-only while the daemon runs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from mediasync.rules.batching import ENDED, WAITING, ItemRow, JobRow
from mediasync.rules.rows import ContentRow, Outcome, OutputRow, PathRow

__all__ = [
    "SCHEMA_VERSION", "ContentRow", "Meta", "MetaKey", "OutputRow", "PathRow", "Store",
    "StoreError",
]

SCHEMA_VERSION = 5

_SCHEMA_V1 = """
CREATE TABLE paths (
    path TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT,
    kind TEXT NOT NULL,
    mime TEXT NOT NULL,
    problem TEXT,
    gone_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX paths_sha ON paths(sha256);
CREATE TABLE contents (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    kind TEXT NOT NULL,
    remote_name TEXT,
    uri TEXT,
    expires_at REAL,
    next_url TEXT,
    next_offset INTEGER,
    next_granularity INTEGER,
    next_name TEXT,
    next_uri TEXT,
    next_expires_at REAL,
    error TEXT,
    retry_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    uploads INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE outputs (
    path TEXT NOT NULL,
    suffix TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    sidecar TEXT NOT NULL,
    written_hash TEXT,
    pending_hash TEXT,
    outcome TEXT NOT NULL,
    message TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    retry_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    PRIMARY KEY (path, suffix)
);
CREATE TABLE doomed (
    remote_name TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Thought tokens (2.5 models think by default; billed as output) apart from output.
_SCHEMA_V2 = """
ALTER TABLE outputs ADD COLUMN thoughts_tokens INTEGER NOT NULL DEFAULT 0;
"""

# Tokens spent, per Pacific day and model: an append-only ledger (an output row is
# replaced when it is generated again; the bill is not), for costs and the daily cap.
_SCHEMA_V3 = """
CREATE TABLE usage (
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    thoughts_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model)
);
"""

# Provenance (issue 16): the model and service tier that served each output (an answer's
# modelVersion and usageMetadata.serviceTier; a silent re-route shows here), and the
# ledger per tier as well as per model, so each call is priced at the tier that served
# it. SQLite cannot change a primary key: the ledger is copied into a new table.
_SCHEMA_V4 = """
ALTER TABLE outputs ADD COLUMN model_version TEXT;
ALTER TABLE outputs ADD COLUMN service_tier TEXT;
CREATE TABLE usage_by_tier (
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL DEFAULT 'standard',
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    thoughts_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model, tier)
);
INSERT INTO usage_by_tier (day, model, tier, requests, prompt_tokens, output_tokens,
    thoughts_tokens)
    SELECT day, model, 'standard', requests, prompt_tokens, output_tokens, thoughts_tokens
    FROM usage;
DROP TABLE usage;
ALTER TABLE usage_by_tier RENAME TO usage;
"""

# Batch jobs (issue 17): a job is recorded before it is created (its key goes in the
# display name), its items are the outputs it answers, matched by request key only
# (outputs asking the same request, .srt and .vtt of one prompt, share one key).
_SCHEMA_V5 = """
CREATE TABLE batch_jobs (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    max_wait REAL NOT NULL,
    name TEXT,
    input_file TEXT,
    service_state TEXT,
    stats TEXT,
    next_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
CREATE TABLE batch_items (
    job_key TEXT NOT NULL,
    request_key TEXT NOT NULL,
    path TEXT NOT NULL,
    suffix TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    file_uri TEXT NOT NULL,
    state TEXT NOT NULL,
    answer TEXT,
    error TEXT,
    PRIMARY KEY (job_key, path, suffix)
);
CREATE INDEX batch_items_output ON batch_items(path, suffix);
CREATE INDEX batch_items_request ON batch_items(job_key, request_key);
"""

_MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4, 5: _SCHEMA_V5}


T = TypeVar("T")


@dataclass(frozen=True)
class MetaKey(Generic[T]):
    """One fact of the ``meta`` table: its name and its form, stated once. A JSON value
    that cannot be read, or is of another shape, reads as the default: a damaged
    entry is learned again, never a crash."""

    name: str
    default: Callable[[], T]
    is_json: bool = False


def _text(name: str) -> MetaKey[str]:
    return MetaKey(name, str)


class Meta:
    """Every key of the ``meta`` table."""

    INSTANCE_ID = _text("instance_id")  # this state directory's id in remote display names
    HALTED = _text("halted")  # why API calls are halted (the key was refused), or ""
    # folder or sub-mount → why it cannot be looked at now, for `status`
    UNAVAILABLE: MetaKey[dict[str, str]] = MetaKey("unavailable", dict, True)
    QUOTA_PAUSES: MetaKey[list[Any]] = MetaKey("quota_pauses", list, True)  # Pause.to_json()s
    # Models the service does not serve and tiers the key may not use, until the config
    # changes (ConfigPause.to_json()s): `status`, the STATUS line, /healthz read them.
    HELD: MetaKey[list[Any]] = MetaKey("held", list, True)
    LEARNED_LIMITS: MetaKey[dict[str, Any]] = MetaKey("learned_limits", dict, True)

    @staticmethod
    def folder_dev(folder: str) -> MetaKey[str]:
        """The folder's st_dev when last seen with files (an unmount tells)."""
        return _text(f"folder_dev:{folder}")

    @staticmethod
    def folder_mount(folder: str) -> MetaKey[str]:
        """The mount point that held the folder when last seen with files."""
        return _text(f"folder_mount:{folder}")

    @staticmethod
    def folder_submounts(folder: str) -> MetaKey[list[str]]:
        """Mount points inside the folder (relative to it) once seen holding files."""
        return MetaKey(f"folder_submounts:{folder}", list, True)


def _columns(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


class StoreError(Exception):
    """The state database cannot be opened or is from a newer mediasync."""


class _CopyTransitions:
    """Named transitions of a content's remote copy (states.Copy): each says which
    state it leads to, so no caller writes an inconsistent combination of columns."""

    _db: sqlite3.Connection

    def update_content(self, sha256: str, now: float, **values: Any) -> None:
        """Set columns of a content row; callers use the named transitions below."""
        if not values:
            return
        cols = ", ".join(f"{k}=?" for k in values)
        self._db.execute(
            f"UPDATE contents SET {cols}, updated_at=? WHERE sha256=?",
            [*values.values(), now, sha256],
        )

    def session_recorded(self, sha256: str, now: float, url: str, offset: int,
                         granularity: int) -> None:
        """→ uploading: the upload URL and the bytes acknowledged (before the first one)."""
        self.update_content(sha256, now, next_url=url, next_offset=offset,
                            next_granularity=granularity)

    def session_dropped(self, sha256: str, now: float) -> None:
        """The upload session is over or unusable: the next upload starts afresh."""
        self.update_content(sha256, now, next_url=None, next_offset=None)

    def uploaded(self, sha256: str, now: float, name: str, uri: str, expires_at: float,
                 uploads: int) -> None:
        """uploading → processing: the service holds the bytes as ``name``."""
        self.update_content(sha256, now, next_url=None, next_offset=None, next_name=name,
                            next_uri=uri, next_expires_at=expires_at, uploads=uploads)

    def processing_dropped(self, sha256: str, now: float, *, error: str | None = None,
                           retry_at: float | None = None, attempts: int | None = None) -> None:
        """processing → none (gone) or waiting/failed (FAILED, with ``error``)."""
        values: dict[str, Any] = dict(next_name=None, next_uri=None, next_expires_at=None)
        if error is not None:
            values.update(error=error, retry_at=retry_at, attempts=attempts)
        self.update_content(sha256, now, **values)

    def promoted(self, sha256: str, now: float, name: str, uri: str,
                 expires_at: float) -> None:
        """→ serving: this copy is ACTIVE and used from now on; errors are cleared."""
        self.update_content(sha256, now, remote_name=name, uri=uri, expires_at=expires_at,
                            next_name=None, next_uri=None, next_expires_at=None, error=None,
                            retry_at=None, attempts=0)

    def copy_failed(self, sha256: str, now: float, error: str, retry_at: float | None,
                    attempts: int) -> None:
        """→ waiting (``retry_at``) or failed (None): why no new copy was made."""
        self.update_content(sha256, now, error=error, retry_at=retry_at, attempts=attempts)

    def copy_gone(self, sha256: str, now: float) -> None:
        """serving → none: the service no longer has the copy (purged, expired)."""
        self.update_content(sha256, now, remote_name=None, uri=None, expires_at=None)

    def expiry_seen(self, sha256: str, now: float, expires_at: float) -> None:
        """The listing names another expiry time for the live copy: the server wins."""
        self.update_content(sha256, now, expires_at=expires_at)


class Store(_CopyTransitions):
    """A thin typed layer over the state database. Every write commits at once."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                self._db.row_factory = sqlite3.Row
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=5, isolation_level=None)
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a process crash; only an OS crash
                # can lose the last commits, which the next rescan repairs.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the state database: {exc}") from exc

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer mediasync (schema {version} > {SCHEMA_VERSION})"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx():
                for stmt in _MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version={v}")

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> Store._Tx:
        return Store._Tx(self._db)

    def transaction(self) -> Store._Tx:
        """Group several writes into one commit (used by bulk scans)."""
        return self._tx()

    @property
    def changes(self) -> int:
        """Rows written through this connection so far (a cheap "did anything change")."""
        return self._db.total_changes

    def close(self) -> None:
        self._db.close()

    # -- paths ----------------------------------------------------------------
    def get_path(self, path: str) -> PathRow | None:
        row = self._db.execute("SELECT * FROM paths WHERE path=?", (path,)).fetchone()
        return PathRow(**row) if row else None

    def all_paths(self) -> Iterator[PathRow]:
        for row in self._db.execute("SELECT * FROM paths ORDER BY path"):
            yield PathRow(**row)

    def put_path(self, row: PathRow) -> None:
        cols = _columns(PathRow)
        self._db.execute(
            f"INSERT OR REPLACE INTO paths ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
            [getattr(row, c) for c in cols],
        )

    def mark_gone(self, path: str, now: float) -> None:
        self._db.execute(
            "UPDATE paths SET gone_at=? WHERE path=? AND gone_at IS NULL", (now, path)
        )

    def delete_path(self, path: str) -> None:
        self._db.execute("DELETE FROM paths WHERE path=?", (path,))
        self._db.execute("DELETE FROM outputs WHERE path=?", (path,))

    def gone_paths(self) -> list[PathRow]:
        rows = self._db.execute("SELECT * FROM paths WHERE gone_at IS NOT NULL")
        return [PathRow(**r) for r in rows]

    def find_twin(self, path: str, inode: int, size: int, mtime_ns: int) -> PathRow | None:
        """Another recorded path with the same stat identity (a rename keeps all three)."""
        row = self._db.execute(
            "SELECT * FROM paths WHERE path<>? AND inode=? AND size=? AND mtime_ns=?"
            " AND sha256 IS NOT NULL ORDER BY gone_at IS NULL LIMIT 1",
            (path, inode, size, mtime_ns),
        ).fetchone()
        return PathRow(**row) if row else None

    def paths_with_sha(self, sha256: str, *, exclude: str) -> list[PathRow]:
        rows = self._db.execute(
            "SELECT * FROM paths WHERE sha256=? AND path<>? ORDER BY gone_at IS NULL, path",
            (sha256, exclude),
        )
        return [PathRow(**r) for r in rows]

    def live_paths_for(self, sha256: str) -> list[str]:
        rows = self._db.execute(
            "SELECT path FROM paths WHERE sha256=? AND gone_at IS NULL ORDER BY path", (sha256,)
        )
        return [r[0] for r in rows]

    # -- contents -------------------------------------------------------------
    def get_content(self, sha256: str) -> ContentRow | None:
        row = self._db.execute("SELECT * FROM contents WHERE sha256=?", (sha256,)).fetchone()
        return ContentRow(**row) if row else None

    def all_contents(self) -> list[ContentRow]:
        return [ContentRow(**r) for r in self._db.execute("SELECT * FROM contents")]

    def ensure_content(
        self, sha256: str, size: int, mime: str, kind: str, now: float
    ) -> ContentRow:
        self._db.execute(
            "INSERT OR IGNORE INTO contents (sha256, size, mime, kind, updated_at)"
            " VALUES (?,?,?,?,?)",
            (sha256, size, mime, kind, now),
        )
        row = self.get_content(sha256)
        assert row is not None
        return row

    def delete_content(self, sha256: str) -> None:
        self._db.execute("DELETE FROM contents WHERE sha256=?", (sha256,))

    def unreferenced_contents(self) -> list[ContentRow]:
        # Vanished paths still inside their grace period keep their content:
        # they may be a rename whose new name has not settled yet.
        rows = self._db.execute(
            "SELECT * FROM contents c WHERE NOT EXISTS"
            " (SELECT 1 FROM paths p WHERE p.sha256=c.sha256)"
        )
        return [ContentRow(**r) for r in rows]

    # -- outputs --------------------------------------------------------------
    def get_outputs(self, path: str) -> dict[str, OutputRow]:
        rows = self._db.execute("SELECT * FROM outputs WHERE path=?", (path,))
        return {r["suffix"]: OutputRow(**r) for r in rows}

    def all_outputs(self) -> list[OutputRow]:
        return [OutputRow(**r) for r in self._db.execute("SELECT * FROM outputs")]

    def put_output(self, row: OutputRow) -> None:
        cols = _columns(OutputRow)
        self._db.execute(
            f"INSERT OR REPLACE INTO outputs ({','.join(cols)})"
            f" VALUES ({','.join('?' * len(cols))})",
            [getattr(row, c) for c in cols],
        )

    def sidecar_owner(self, sidecar: str, exclude: str) -> str | None:
        """Another live file whose output is written to ``sidecar`` (two media sharing a
        name stem share stem-named sidecars: clip.mp4 and clip.mov → clip.en.srt)."""
        row = self._db.execute(
            "SELECT o.path FROM outputs o JOIN paths p ON p.path = o.path"
            " WHERE o.sidecar=? AND o.path!=? AND o.outcome IN (?, ?)"
            " AND p.gone_at IS NULL LIMIT 1",
            (sidecar, exclude, Outcome.WRITTEN, Outcome.WRITING)).fetchone()
        return row["path"] if row else None

    def delete_output(self, path: str, suffix: str) -> None:
        self._db.execute("DELETE FROM outputs WHERE path=? AND suffix=?", (path, suffix))

    def move_outputs(self, old: str, new: str, sidecars: dict[str, str]) -> None:
        """Re-key a renamed file's outputs; ``sidecars`` maps suffix → new sidecar path."""
        with self._tx():
            self._db.execute("DELETE FROM outputs WHERE path=?", (new,))
            for suffix, sidecar in sidecars.items():
                self._db.execute(
                    "UPDATE outputs SET path=?, sidecar=? WHERE path=? AND suffix=?",
                    (new, sidecar, old, suffix),
                )
            self._db.execute("DELETE FROM outputs WHERE path=?", (old,))
            # An answer on its way in a batch job follows the rename too.
            self._db.execute("UPDATE batch_items SET path=? WHERE path=?", (new, old))

    # -- doomed remote files --------------------------------------------------
    def doom(self, remote_name: str, reason: str, now: float) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO doomed (remote_name, reason, since) VALUES (?,?,?)",
            (remote_name, reason, now),
        )

    def doomed(self) -> list[str]:
        """Remote files to delete; a copy an open batch job names waits until it ends."""
        return [r[0] for r in self._db.execute(
            "SELECT remote_name FROM doomed d WHERE NOT EXISTS (SELECT 1 FROM batch_items i"
            " WHERE i.state=? AND i.file_uri LIKE '%/' || d.remote_name) ORDER BY since",
            (WAITING,))]

    def undoom(self, remote_name: str) -> None:
        self._db.execute("DELETE FROM doomed WHERE remote_name=?", (remote_name,))

    def known_remote_names(self) -> set[str]:
        names: set[str] = set()
        for a, b in self._db.execute("SELECT remote_name, next_name FROM contents"):
            names.update(n for n in (a, b) if n)
        names.update(self.doomed())
        return names

    # -- meta -----------------------------------------------------------------
    def read(self, key: MetaKey[T]) -> T:
        """A ``meta`` fact, or its default when absent or unreadable."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key.name,)).fetchone()
        if row is None:
            return key.default()
        if not key.is_json:
            return row[0]
        try:
            value = json.loads(row[0])
        except ValueError:
            return key.default()
        return value if isinstance(value, type(key.default())) else key.default()

    def write(self, key: MetaKey[T], value: T) -> None:
        text = json.dumps(value, sort_keys=True) if key.is_json else value
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)",
                         (key.name, text))

    # -- usage ledger ---------------------------------------------------------
    def add_usage(self, day: str, model: str, prompt: int, output: int, thoughts: int,
                  tier: str = "standard") -> None:
        """One call: ``model`` and ``tier`` as they served it (billing follows them)."""
        self._db.execute(
            "INSERT INTO usage (day, model, tier, requests, prompt_tokens, output_tokens, "
            "thoughts_tokens) VALUES (?,?,?,1,?,?,?) ON CONFLICT (day, model, tier) DO UPDATE "
            "SET requests=requests+1, prompt_tokens=prompt_tokens+excluded.prompt_tokens, "
            "output_tokens=output_tokens+excluded.output_tokens, "
            "thoughts_tokens=thoughts_tokens+excluded.thoughts_tokens",
            (day, model, tier, prompt, output, thoughts),
        )

    def usage(self, day: str | None = None) -> list[tuple[str, str, int, int, int, int, str]]:
        """(day, model, requests, prompt, output, thoughts, tier) rows; only ``day``'s if
        given."""
        where, args = ("WHERE day=? ", (day,)) if day is not None else ("", ())
        return [tuple(r) for r in self._db.execute(  # type: ignore[misc]
            "SELECT day, model, requests, prompt_tokens, output_tokens, thoughts_tokens, tier "
            f"FROM usage {where}ORDER BY day, model, tier", args)]

    # -- batch jobs -------------------------------------------------------------
    def put_job(self, job: JobRow, items: Sequence[ItemRow] = ()) -> None:
        """Record a job (and, when given, its items) in one commit."""
        with self._tx():
            for table, row in (("batch_jobs", job), *(("batch_items", i) for i in items)):
                cols = _columns(type(row))
                self._db.execute(f"INSERT OR REPLACE INTO {table} ({','.join(cols)})"
                                 f" VALUES ({','.join('?' * len(cols))})",
                                 [getattr(row, c) for c in cols])

    def jobs(self, *, open_only: bool = True) -> list[JobRow]:
        where, args = ("WHERE state!=? ", (ENDED,)) if open_only else ("", ())
        return [JobRow(**r) for r in self._db.execute(
            f"SELECT * FROM batch_jobs {where}ORDER BY created_at", args)]

    def job_items(self, key: str) -> list[ItemRow]:
        return [ItemRow(**r) for r in self._db.execute(
            "SELECT * FROM batch_items WHERE job_key=? ORDER BY rowid", (key,))]

    def item_for(self, path: str, suffix: str) -> ItemRow | None:
        """The latest batch item of an output (any state), or None."""
        row = self._db.execute("SELECT * FROM batch_items WHERE path=? AND suffix=?"
                               " ORDER BY rowid DESC LIMIT 1", (path, suffix)).fetchone()
        return ItemRow(**row) if row else None

    def set_items(self, key: str, state: str, request_keys: list[str] | None = None, *,
                  answer: str | None = None, error: str | None = None) -> None:
        """Move a job's waiting items (all), or those of ``request_keys``, to ``state``."""
        if request_keys is None:
            self._db.execute("UPDATE batch_items SET state=? WHERE job_key=? AND state=?",
                             (state, key, WAITING))
            return
        self._db.executemany(
            "UPDATE batch_items SET state=?, answer=?, error=? WHERE job_key=? AND request_key=?",
            [(state, answer, error, key, k) for k in request_keys])

    def copies_held_by_jobs(self) -> set[str]:
        """Contents (SHA-256) an open batch job references: in use, never to delete."""
        return {r[0] for r in self._db.execute(
            "SELECT DISTINCT sha256 FROM batch_items WHERE state=?", (WAITING,))}

    def counts(self) -> dict[str, int]:
        """Progress figures for `sync`'s terminal line. Per-file states (synced,
        waiting, failed…) come from report.build, the one decoder, not from here."""
        q = self._db.execute
        return {
            "files": q("SELECT COUNT(*) FROM paths WHERE gone_at IS NULL").fetchone()[0],
            "mirrored": q(
                    "SELECT COUNT(*) FROM contents WHERE remote_name IS NOT NULL"
            ).fetchone()[0],
            "uploading": q(
                "SELECT COUNT(*) FROM contents WHERE next_url IS NOT NULL OR next_name IS NOT NULL"
            ).fetchone()[0],
            "bytes_mirrored": q(
                "SELECT COALESCE(SUM(size), 0) FROM contents WHERE remote_name IS NOT NULL"
            ).fetchone()[0],
            "bytes_uploading": q(
                "SELECT COALESCE(SUM(next_offset), 0) FROM contents WHERE next_url IS NOT NULL"
            ).fetchone()[0],
            "sidecars": q("SELECT COUNT(*) FROM outputs WHERE outcome=?",
                          (Outcome.WRITTEN,)).fetchone()[0],
        }

