"""Every durable fact, in SQLite (WAL, one writer: the daemon's event loop).

Three tables carry the state docs/architecture.md describes:
- ``paths``: what is on disk, per path (stat cache + content hash);
- ``contents``: per SHA-256, the live remote copy and any copy being uploaded;
- ``outputs``: per (path, sidecar suffix), what was generated and written.
``doomed`` holds remote files we created and must delete (crash-safe removal).
Readers (``mediasync status``) open the same file read-only while the daemon runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from mediasync.rules.batching import ENDED, WAITING, ItemRow, JobRow
from mediasync.rules.naming import shown
from mediasync.rules.rows import (
    ContentRow,
    CopyFacts,
    CopyRef,
    Outcome,
    OutputFacts,
    OutputRow,
    PathFacts,
    PathRow,
)

__all__ = [
    "SCHEMA_VERSION", "ContentRow", "Meta", "MetaKey", "OutputRow", "PathRow", "Store",
    "StoreDamaged", "StoreError", "StoredAnswer", "is_damage",
]

SCHEMA_VERSION = 11

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

# A rename is recognised by its stat identity (Store.find_twin, asked for every new
# file): without an index that question scanned the whole table, quadratic over a
# first sync of a large library.
_SCHEMA_V4 = """
CREATE INDEX paths_stat ON paths(inode, size, mtime_ns);
"""

# The size of a remote copy that is not the original's bytes (an upload proxy, issue
# 15): of the live copy and of the one being made. NULL: the original, ``size``.
_SCHEMA_COPY_BYTES = """
ALTER TABLE contents ADD COLUMN remote_bytes INTEGER;
ALTER TABLE contents ADD COLUMN next_bytes INTEGER;
"""

# Retry times past the year 3000 came from a server delay taken at its word (wire/03's
# 9223372036854775807 s, before delays were clamped): due now, so those files heal.
_SCHEMA_HEAL_FAR_RETRIES = """
UPDATE contents SET retry_at = 0 WHERE retry_at > 32503680000;
UPDATE outputs SET retry_at = 0 WHERE retry_at > 32503680000;
"""

# Provenance (issue 16): the model and service tier that served each output (an answer's
# modelVersion and usageMetadata.serviceTier; a silent re-route shows here), and the
# ledger per tier as well as per model, so each call is priced at the tier that served
# it. SQLite cannot change a primary key: the ledger is copied into a new table.
_SCHEMA_PROVENANCE = """
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

# Paid answers by what decides them (content, model, prompt as sent, system, schema,
# knobs, ranges): one generation for every path holding the same bytes, in this pass
# and later ones (issue 18, item 8). The owner's captions and transcripts, kept only
# while their content is (Store.delete_content). text NULL: no text (a block).
_SCHEMA_ANSWERS = """
CREATE TABLE answers (
    key TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    text TEXT,
    finish TEXT,
    block TEXT,
    paid_by TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX answers_sha ON answers(sha256);
"""

# What mediasync last wrote into each XMP sidecar (outputs/xmp.Marks as JSON): a tool
# that regenerates the XMP from its own database drops the marks inside the file, and
# these still tell our caption and keywords from the owner's (issue 18, item 11).
_SCHEMA_XMP_MARKS = """
CREATE TABLE xmp_marks (
    sidecar TEXT PRIMARY KEY,
    marks TEXT NOT NULL,
    at REAL NOT NULL
);
"""

# Batch jobs (issue 17): a job is recorded before it is created (its key goes in the
# display name), its items are the outputs it answers, matched by request key only
# (outputs asking the same request, .srt and .vtt of one prompt, share one key).
_SCHEMA_BATCHES = """
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

# A batch item's answer key (engine/answers.py): what decides its answer, the knobs
# too; an item asked under other knobs is not the answer now. NULL in older rows.
_SCHEMA_ITEM_ANSWER_KEY = "ALTER TABLE batch_items ADD COLUMN answer_key TEXT"

_MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4,
               5: _SCHEMA_HEAL_FAR_RETRIES, 6: _SCHEMA_COPY_BYTES, 7: _SCHEMA_PROVENANCE,
               8: _SCHEMA_ANSWERS, 9: _SCHEMA_XMP_MARKS, 10: _SCHEMA_BATCHES,
               11: _SCHEMA_ITEM_ANSWER_KEY}


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
    # event → digests of the subjects already notified (app/notify.py): not sent again
    NOTIFIED: MetaKey[dict[str, Any]] = MetaKey("notified", dict, True)
    # The project's store: its size as a full-store answer named it ({"bytes": n}), and
    # who used it at the last listing ({"mine", "other_instances", "other_uploads", "at"}).
    STORE_SIZE: MetaKey[dict[str, Any]] = MetaKey("store_size", dict, True)
    STORE_USAGE: MetaKey[dict[str, Any]] = MetaKey("store_usage", dict, True)
    # The database was rebuilt or written back (app/statedir.py): at, what, pending
    RECOVERY: MetaKey[dict[str, Any]] = MetaKey("recovery", dict, True)

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


@dataclass(frozen=True)
class StoredAnswer:
    """A paid answer as the ``answers`` table keeps it."""

    text: str | None
    finish: str | None
    block: str | None
    paid_by: str  # the path whose output paid for it


def _columns(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


# Columns in the order of the row types' fields: a row is made from a tuple by position.
_PATH_COLS = _columns(PathRow)
_CONTENT_COLS = _columns(ContentRow)
_OUTPUT_COLS = _columns(OutputRow)


def _cols(table: str, cols: list[str]) -> str:
    return ", ".join(f"{table}.{c}" for c in cols)


class StoreError(Exception):
    """The state database cannot be opened or is from a newer mediasync."""


class StoreDamaged(StoreError):
    """The state database's file is damaged (SQLite: malformed, or not a database)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: the state database is damaged: {detail}")
        self.detail = detail


# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
# Never SQLITE_BUSY, _IOERR, _FULL, _CANTOPEN: those are transient, not damage.
_DAMAGE_CODES = {11, 26}


def is_damage(exc: BaseException) -> bool:
    """``exc`` says the database file is damaged (not locked, full or unreadable now)."""
    if isinstance(exc, StoreDamaged):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and (
        code & 0xFF) in _DAMAGE_CODES


def _key(path: str) -> str | bytes:
    """A path as the database holds it: text, or the name's bytes when it is not
    UTF-8 (the OS handed it over surrogate-escaped; SQLite text must be UTF-8).
    Valid names stay text, so rows written before need no migration."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _path(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _free_text(value: Any) -> Any:
    """Free text (a message naming a file) that SQLite can hold: an undecodable
    name in it is shown escaped (\\xe9), as `status` shows names."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return shown(value)
    return value


def _item(row: sqlite3.Row) -> ItemRow:
    return ItemRow(**{**dict(row), "path": _path(row["path"])})


def _path_row(row: sqlite3.Row) -> PathRow:
    values = dict(row)
    values["path"] = _path(values["path"])
    return PathRow(**values)


def _output_row(row: sqlite3.Row) -> OutputRow:
    values = dict(row)
    values["path"], values["sidecar"] = _path(values["path"]), _path(values["sidecar"])
    return OutputRow(**values)


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
            [*map(_free_text, values.values()), now, sha256],
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
                 uploads: int, proxy_bytes: int | None = None) -> None:
        """uploading → processing: the service holds the bytes as ``name`` (a proxy of
        ``proxy_bytes`` bytes, or the original)."""
        self.update_content(sha256, now, next_url=None, next_offset=None, next_name=name,
                            next_uri=uri, next_expires_at=expires_at, uploads=uploads,
                            next_bytes=proxy_bytes)

    def processing_dropped(self, sha256: str, now: float, *, error: str | None = None,
                           retry_at: float | None = None, attempts: int | None = None) -> None:
        """processing → none (gone) or waiting/failed (FAILED, with ``error``)."""
        values: dict[str, Any] = dict(next_name=None, next_uri=None, next_expires_at=None,
                                      next_bytes=None)
        if error is not None:
            values.update(error=error, retry_at=retry_at, attempts=attempts)
        self.update_content(sha256, now, **values)

    def promoted(self, sha256: str, now: float, name: str, uri: str,
                 expires_at: float) -> None:
        """→ serving: this copy is ACTIVE and used from now on; errors are cleared."""
        self._db.execute("UPDATE contents SET remote_bytes=next_bytes WHERE sha256=?",
                         (sha256,))
        self.update_content(sha256, now, remote_name=name, uri=uri, expires_at=expires_at,
                            next_name=None, next_uri=None, next_expires_at=None, error=None,
                            retry_at=None, attempts=0, next_bytes=None)

    def copy_failed(self, sha256: str, now: float, error: str, retry_at: float | None,
                    attempts: int) -> None:
        """→ waiting (``retry_at``) or failed (None): why no new copy was made."""
        self.update_content(sha256, now, error=error, retry_at=retry_at, attempts=attempts)

    def copy_gone(self, sha256: str, now: float) -> None:
        """serving → none: the service no longer has the copy (purged, expired)."""
        self.update_content(sha256, now, remote_name=None, uri=None, expires_at=None,
                            remote_bytes=None)

    def expiry_seen(self, sha256: str, now: float, expires_at: float) -> None:
        """The listing names another expiry time for the live copy: the server wins."""
        self.update_content(sha256, now, expires_at=expires_at)


class Store(_CopyTransitions):
    """A thin typed layer over the state database. Every write commits at once."""

    def __init__(self, path: Path, *, readonly: bool = False, check: bool = False) -> None:
        """``check``: run SQLite's quick_check too (every page read: about 0.3 s per
        100,000 files, docs/benchmarks.md), so damage is found at the start, not
        in the middle of a pass. Damage raises StoreDamaged."""
        self.path = path
        self.created = False  # this open made the database (it was not there)
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                self._db.row_factory = sqlite3.Row
                # Reading the schema finds a damaged first page now, not in a caller.
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._connect()
                self._migrate()
                if check:
                    found = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
                    if found != ["ok"]:
                        self._db.close()
                        raise StoreDamaged(path, "quick_check: " + "; ".join(found))
            self._ino = os.stat(path).st_ino
        except sqlite3.Error as exc:
            if hasattr(self, "_db"):
                self._db.close()  # before the file is moved aside
            if is_damage(exc):
                raise StoreDamaged(path, str(exc)) from exc
            raise StoreError(f"{path}: cannot open the state database: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the state database: {exc}") from exc

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only an OS crash
        # can lose the last commits, which the next rescan repairs.
        self._db.execute("PRAGMA synchronous=NORMAL")

    # -- the file under us (app/statedir.py heals it) ---------------------------
    def moved(self) -> bool:
        """The file at our path is no longer the one we write (deleted or replaced);
        SQLite goes on writing to the unlinked one, which is lost when we close."""
        try:
            return os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def copy_to(self, target: Path) -> None:
        """Write everything this connection holds to a new database file ``target``
        (SQLite's online backup: a consistent copy, WAL included)."""
        dst = sqlite3.connect(target)
        try:
            self._db.backup(dst)
        finally:
            dst.close()

    def reopen(self) -> None:
        """Go on with the file now at our path (the caller put it there). SQLite does
        not checkpoint a moved file when it closes, nor delete its -wal by name."""
        self._db.close()
        self._connect()
        self._ino = os.stat(self.path).st_ino

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not self._db.execute("SELECT 1 FROM sqlite_master").fetchone():
            self.created = True
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
        row = self._db.execute("SELECT * FROM paths WHERE path=?", (_key(path),)).fetchone()
        return _path_row(row) if row else None

    def all_paths(self) -> Iterator[PathRow]:
        for row in self._db.execute("SELECT * FROM paths ORDER BY path"):
            yield _path_row(row)

    def live_files(self) -> Iterator[tuple[PathRow, ContentRow | None, dict[str, OutputRow]]]:
        """Every live path (in path order) with its content's row and its outputs by
        suffix, one at a time: one query, and memory that does not grow with the
        library (`status`, a scan's check of the files at rest)."""
        np, nc = len(_PATH_COLS), len(_CONTENT_COLS)
        cur = self._db.cursor()
        cur.row_factory = None  # plain tuples, cut into rows below
        cur.execute(
            f"SELECT {_cols('p', _PATH_COLS)}, {_cols('c', _CONTENT_COLS)}, "
            f"{_cols('o', _OUTPUT_COLS)} FROM paths p"
            " LEFT JOIN contents c ON c.sha256 = p.sha256"
            " LEFT JOIN outputs o ON o.path = p.path"
            " WHERE p.gone_at IS NULL ORDER BY p.path")
        key: object = None  # the path as stored: bytes for a name that is not UTF-8
        row: PathRow | None = None
        content: ContentRow | None = None
        outputs: dict[str, OutputRow] = {}
        for r in cur:
            if row is None or r[0] != key:
                if row is not None:
                    yield row, content, outputs
                key = r[0]
                row = PathRow(*r[:np])
                if not isinstance(row.path, str):  # a name that is not UTF-8 (_key)
                    row = dataclasses.replace(row, path=_path(row.path))
                content = ContentRow(*r[np:np + nc]) if r[np] is not None else None
                outputs = {}
            if r[np + nc] is not None:
                out = OutputRow(*r[np + nc:])
                if not (isinstance(out.path, str) and isinstance(out.sidecar, str)):
                    out = dataclasses.replace(out, path=_path(out.path),
                                              sidecar=_path(out.sidecar))
                outputs[out.suffix] = out
        if row is not None:
            yield row, content, outputs

    def cut_paths(self, parts: int, least: int) -> list[object]:
        """Stored paths that cut the live ones into ``parts`` ranges of about the same
        size, for `status` to read each on a core of its own; none when there are
        fewer than ``least``. As stored (bytes for a name that is not UTF-8), to be
        handed back to ``report_files``."""
        (n,) = self._db.execute("SELECT count(*) FROM paths WHERE gone_at IS NULL").fetchone()
        if parts < 2 or n < max(least, parts):
            return []
        cur = self._db.cursor()
        cur.row_factory = None
        return [cur.execute("SELECT path FROM paths WHERE gone_at IS NULL ORDER BY path"
                            " LIMIT 1 OFFSET ?", (n * i // parts,)).fetchone()[0]
                for i in range(1, parts)]

    def report_files(self, start: object = None, stop: object = None) -> Iterator[
            tuple[PathFacts, CopyFacts | None, dict[str, OutputFacts]]]:
        """``live_files`` with only the columns `status` reads (rules/rows.py, "What
        `status` reads"): the same files in the same order, in light tuples. With
        ``start`` and ``stop`` (from ``cut_paths``), only those from ``start`` on and
        before ``stop``."""
        np, nc = len(PathFacts._fields), len(CopyFacts._fields)
        new = tuple.__new__
        # Bounds written out only when given, so the index is searched for them.
        range_ = (" AND p.path >= ?" if start is not None else "") + (
            " AND p.path < ?" if stop is not None else "")
        bounds = [b for b in (start, stop) if b is not None]
        cur = self._db.cursor()
        cur.row_factory = None
        cur.execute(
            f"SELECT {_cols('p', PathFacts._fields)}, {_cols('c', CopyFacts._fields)}, "
            f"{_cols('o', OutputFacts._fields)} FROM paths p"
            " LEFT JOIN contents c ON c.sha256 = p.sha256"
            " LEFT JOIN outputs o ON o.path = p.path"
            f" WHERE p.gone_at IS NULL{range_} ORDER BY p.path", bounds)
        key: object = None
        row: PathFacts | None = None
        content: CopyFacts | None = None
        outputs: dict[str, OutputFacts] = {}
        # c.size and o.suffix are never NULL in a row that exists: they tell a missing one.
        for r in cur:
            if row is None or r[0] != key:
                if row is not None:
                    yield row, content, outputs
                key = r[0]
                row = new(PathFacts, r[:np])
                if not isinstance(key, str):  # a name that is not UTF-8 (_key)
                    row = row._replace(path=_path(key))
                content = new(CopyFacts, r[np:np + nc]) if r[np] is not None else None
                outputs = {}
            if r[np + nc] is not None:
                out = new(OutputFacts, r[np + nc:])
                if not isinstance(out.sidecar, str):
                    out = out._replace(sidecar=_path(out.sidecar))
                outputs[out.suffix] = out
        if row is not None:
            yield row, content, outputs

    def put_path(self, row: PathRow) -> None:
        cols = _columns(PathRow)
        values = [getattr(row, c) for c in cols]
        values[0], values[cols.index("problem")] = _key(row.path), _free_text(row.problem)
        self._db.execute(
            f"INSERT OR REPLACE INTO paths ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
            values,
        )

    def mark_gone(self, path: str, now: float) -> None:
        self._db.execute(
            "UPDATE paths SET gone_at=? WHERE path=? AND gone_at IS NULL", (now, _key(path))
        )

    def delete_path(self, path: str) -> None:
        self._db.execute("DELETE FROM paths WHERE path=?", (_key(path),))
        self._db.execute("DELETE FROM outputs WHERE path=?", (_key(path),))

    def live_path_names(self) -> Iterator[str]:
        """The recorded paths not marked gone, one at a time (names only: a scan asks
        for all of them, and needs no set of 100,000 beside the one it found)."""
        cur = self._db.cursor()
        cur.row_factory = None
        for r in cur.execute("SELECT path FROM paths WHERE gone_at IS NULL"):
            yield _path(r[0])

    def gone_paths(self) -> list[PathRow]:
        rows = self._db.execute("SELECT * FROM paths WHERE gone_at IS NOT NULL")
        return [_path_row(r) for r in rows]

    def find_twin(self, path: str, inode: int, size: int, mtime_ns: int) -> PathRow | None:
        """Another recorded path with the same stat identity (a rename keeps all three)."""
        row = self._db.execute(
            "SELECT * FROM paths WHERE path<>? AND inode=? AND size=? AND mtime_ns=?"
            " AND sha256 IS NOT NULL ORDER BY gone_at IS NULL LIMIT 1",
            (_key(path), inode, size, mtime_ns),
        ).fetchone()
        return _path_row(row) if row else None

    def paths_with_sha(self, sha256: str, *, exclude: str) -> list[PathRow]:
        rows = self._db.execute(
            "SELECT * FROM paths WHERE sha256=? AND path<>? ORDER BY gone_at IS NULL, path",
            (sha256, _key(exclude)),
        )
        return [_path_row(r) for r in rows]

    def live_paths_for(self, sha256: str) -> list[str]:
        rows = self._db.execute(
            "SELECT path FROM paths WHERE sha256=? AND gone_at IS NULL ORDER BY path", (sha256,)
        )
        return [_path(r[0]) for r in rows]

    # -- contents -------------------------------------------------------------
    def get_content(self, sha256: str) -> ContentRow | None:
        row = self._db.execute("SELECT * FROM contents WHERE sha256=?", (sha256,)).fetchone()
        return ContentRow(**row) if row else None

    def all_contents(self) -> list[ContentRow]:
        return list(self.each_content())

    def each_content(self) -> Iterator[ContentRow]:
        """Every content row, one at a time (a pass over 100,000 need not hold them all)."""
        cur = self._db.cursor()
        cur.row_factory = None
        for r in cur.execute(f"SELECT {_cols('contents', _CONTENT_COLS)} FROM contents"):
            yield ContentRow(*r)

    def copy_refs(self) -> list[CopyRef]:
        """Every content row as a listing is reconciled against it (``CopyRef``)."""
        cur = self._db.cursor()
        cur.row_factory = None
        cur.execute("SELECT sha256, size, remote_name, expires_at, next_url, next_name"
                    " FROM contents")
        return [CopyRef._make(r) for r in cur]

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
        self._db.execute("DELETE FROM answers WHERE sha256=?", (sha256,))

    def copies_held(self, now: float) -> list[tuple[str, int, int]]:
        """(sha256, bytes of its live copy, bytes of the copy uploaded and not ACTIVE
        yet) of every content with a copy of ours in the service's store."""
        rows = self._db.execute(
            "SELECT sha256,"
            " CASE WHEN remote_name IS NOT NULL AND expires_at > ?"
            "  THEN COALESCE(remote_bytes, size) ELSE 0 END,"
            " CASE WHEN next_name IS NOT NULL THEN COALESCE(next_bytes, size) ELSE 0 END"
            " FROM contents"
            " WHERE (remote_name IS NOT NULL AND expires_at > ?) OR next_name IS NOT NULL",
            (now, now))
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def held_bytes(self, now: float, uploading: Sequence[str] = ()) -> tuple[int, int]:
        """(bytes of all our copies in the service's store, as ``copies_held`` counts
        them; the part of it that is the not-yet-ACTIVE copies of ``uploading``), summed
        by SQLite: asked before every upload, where a list of 100,000 rows was most of
        a first sync's time."""
        total = self._db.execute(
            "SELECT COALESCE(SUM("
            " CASE WHEN remote_name IS NOT NULL AND expires_at > ?"
            "  THEN COALESCE(remote_bytes, size) ELSE 0 END +"
            " CASE WHEN next_name IS NOT NULL THEN COALESCE(next_bytes, size) ELSE 0 END"
            "), 0) FROM contents", (now,)).fetchone()[0]
        making = 0
        for i in range(0, len(uploading), 500):
            part = list(uploading[i:i + 500])
            making += self._db.execute(
                "SELECT COALESCE(SUM(COALESCE(next_bytes, size)), 0) FROM contents"
                f" WHERE next_name IS NOT NULL AND sha256 IN ({','.join('?' * len(part))})",
                part).fetchone()[0]
        return int(total), int(making)

    def library_fits(self, limit: int) -> bool:
        """Whether the library (``library_bytes``) and room to renew its largest file fit
        in ``limit`` bytes. The content table's own sum, which no live path's content
        exceeds, answers first: it needs no grouping of 100,000 paths."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(size), 0) FROM contents").fetchone()
        if row[0] + row[1] <= limit:
            return True
        total, largest = self.library_bytes()
        return total + largest <= limit

    def library_bytes(self) -> tuple[int, int]:
        """(total, largest) size of the distinct contents of the live paths."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(size), 0) FROM (SELECT MAX(size)"
            " AS size FROM paths WHERE gone_at IS NULL AND sha256 IS NOT NULL"
            " AND problem IS NULL GROUP BY sha256)").fetchone()
        return int(row[0]), int(row[1])

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
        rows = self._db.execute("SELECT * FROM outputs WHERE path=?", (_key(path),))
        return {r["suffix"]: _output_row(r) for r in rows}

    def all_outputs(self) -> list[OutputRow]:
        return [_output_row(r) for r in self._db.execute("SELECT * FROM outputs")]

    def outputs_by_path(self) -> dict[str, dict[str, OutputRow]]:
        """Every output row, by path and suffix (the storage budget's plan reads all)."""
        out: dict[str, dict[str, OutputRow]] = {}
        for o in self.all_outputs():
            out.setdefault(o.path, {})[o.suffix] = o
        return out

    def put_output(self, row: OutputRow) -> None:
        cols = _columns(OutputRow)
        values = [getattr(row, c) for c in cols]
        for c, convert in (("path", _key), ("sidecar", _key), ("message", _free_text)):
            values[cols.index(c)] = convert(getattr(row, c))
        self._db.execute(
            f"INSERT OR REPLACE INTO outputs ({','.join(cols)})"
            f" VALUES ({','.join('?' * len(cols))})",
            values,
        )

    def sidecar_owner(self, sidecar: str, exclude: str) -> str | None:
        """Another live file whose output is written to ``sidecar`` (two media sharing a
        name stem share stem-named sidecars: clip.mp4 and clip.mov → clip.en.srt)."""
        row = self._db.execute(
            "SELECT o.path FROM outputs o JOIN paths p ON p.path = o.path"
            " WHERE o.sidecar=? AND o.path!=? AND o.outcome IN (?, ?)"
            " AND p.gone_at IS NULL LIMIT 1",
            (_key(sidecar), _key(exclude), Outcome.WRITTEN, Outcome.WRITING)).fetchone()
        return _path(row["path"]) if row else None

    def delete_output(self, path: str, suffix: str) -> None:
        self._db.execute("DELETE FROM outputs WHERE path=? AND suffix=?", (_key(path), suffix))

    def move_outputs(self, old: str, new: str, sidecars: dict[str, str]) -> None:
        """Re-key a renamed file's outputs; ``sidecars`` maps suffix → new sidecar path."""
        old_k, new_k = _key(old), _key(new)
        with self._tx():
            self._db.execute("DELETE FROM outputs WHERE path=?", (new_k,))
            for suffix, sidecar in sidecars.items():
                # What we wrote into a moved XMP sidecar moves with it.
                self._db.execute(
                    "UPDATE OR REPLACE xmp_marks SET sidecar=? WHERE sidecar="
                    "(SELECT sidecar FROM outputs WHERE path=? AND suffix=?)",
                    (_key(sidecar), old_k, suffix),
                )
                self._db.execute(
                    "UPDATE outputs SET path=?, sidecar=? WHERE path=? AND suffix=?",
                    (new_k, _key(sidecar), old_k, suffix),
                )
            self._db.execute("DELETE FROM outputs WHERE path=?", (old_k,))
            # An answer on its way in a batch job follows the rename too.
            # As with the outputs above, the moved file's items win over the new path's.
            self._db.execute("UPDATE OR REPLACE batch_items SET path=? WHERE path=?",
                             (new_k, old_k))

    def shift_times(self, delta: float) -> None:
        """Move our own recorded times (retries, paths seen gone) by ``delta`` seconds:
        the wall clock stepped (engine/clockjump.py). Server times (expiries) stay."""
        with self._tx():
            self._db.execute("UPDATE outputs SET retry_at=retry_at+? WHERE retry_at IS NOT NULL",
                             (delta,))
            self._db.execute("UPDATE contents SET retry_at=retry_at+? WHERE retry_at IS NOT NULL",
                             (delta,))
            self._db.execute("UPDATE paths SET gone_at=gone_at+? WHERE gone_at IS NOT NULL",
                             (delta,))
            # A batch job's next look and its age (max_wait) are ours too.
            self._db.execute("UPDATE batch_jobs SET created_at=created_at+?,"
                             " next_at=next_at+?", (delta, delta))

    # -- paid answers ---------------------------------------------------------
    def get_answer(self, key: str) -> StoredAnswer | None:
        row = self._db.execute("SELECT text, finish, block, paid_by FROM answers WHERE key=?",
                               (key,)).fetchone()
        return StoredAnswer(row[0], row[1], row[2], _path(row[3])) if row else None

    def put_answer(self, key: str, sha256: str, answer: StoredAnswer, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, sha256, text, finish, block, paid_by, at)"
            " VALUES (?,?,?,?,?,?,?)",
            (key, sha256, answer.text, answer.finish, answer.block, _key(answer.paid_by), now))

    def delete_answer(self, key: str) -> None:
        self._db.execute("DELETE FROM answers WHERE key=?", (key,))

    # -- what we wrote into XMP sidecars -------------------------------------
    def get_xmp_marks(self, sidecar: str) -> str | None:
        row = self._db.execute("SELECT marks FROM xmp_marks WHERE sidecar=?",
                               (_key(sidecar),)).fetchone()
        return row[0] if row else None

    def put_xmp_marks(self, sidecar: str, marks: str, now: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO xmp_marks (sidecar, marks, at) VALUES (?,?,?)",
                         (_key(sidecar), marks, now))

    # -- doomed remote files --------------------------------------------------
    def doom(self, remote_name: str, reason: str, now: float) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO doomed (remote_name, reason, since) VALUES (?,?,?)",
            (remote_name, reason, now),
        )

    def doomed(self) -> list[str]:
        """Remote files to delete; a copy an open batch job names waits until it ends."""
        # The job's URIs read once (batch items are kept after their jobs end: a LIKE
        # per doomed name scanned them all each time).
        held = [r[0] for r in self._db.execute(
            "SELECT DISTINCT file_uri FROM batch_items WHERE state=?", (WAITING,))]
        tails = {"/".join(uri.rsplit("/", 2)[-2:])  # ".../files/x": files/x
                 for uri in held if uri.count("/") >= 2}

        def in_a_job(name: str) -> bool:
            if name.count("/") == 1:
                return name in tails
            return any(uri.endswith("/" + name) for uri in held)

        return [r[0] for r in self._db.execute("SELECT remote_name FROM doomed ORDER BY since")
                if not in_a_job(r[0])]

    def still_doomed(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` still to delete, a copy an open batch job holds included
        (it is in the service's store until the job ends)."""
        out: set[str] = set()
        for i in range(0, len(names), 500):
            part = list(names[i:i + 500])
            marks = ",".join("?" * len(part))
            out.update(r[0] for r in self._db.execute(
                f"SELECT remote_name FROM doomed WHERE remote_name IN ({marks})", part))
        return out

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
                                 [_key(getattr(row, c)) if c == "path" else getattr(row, c)
                                  for c in cols])

    def jobs(self, *, open_only: bool = True) -> list[JobRow]:
        where, args = ("WHERE state!=? ", (ENDED,)) if open_only else ("", ())
        return [JobRow(**r) for r in self._db.execute(
            f"SELECT * FROM batch_jobs {where}ORDER BY created_at", args)]

    def job_items(self, key: str) -> list[ItemRow]:
        return [_item(r) for r in self._db.execute(
            "SELECT * FROM batch_items WHERE job_key=? ORDER BY rowid", (key,))]

    def item_for(self, path: str, suffix: str) -> ItemRow | None:
        """The latest batch item of an output (any state), or None."""
        row = self._db.execute("SELECT * FROM batch_items WHERE path=? AND suffix=?"
                               " ORDER BY rowid DESC LIMIT 1", (_key(path), suffix)).fetchone()
        return _item(row) if row else None

    def set_item(self, item: ItemRow, state: str) -> None:
        """Move one output's item to ``state`` (its answer and error let go). Its request
        line may answer other outputs too (the same bytes at another path): they keep
        theirs."""
        self._db.execute(
            "UPDATE batch_items SET state=?, answer=NULL, error=NULL"
            " WHERE job_key=? AND path=? AND suffix=?",
            (state, item.job_key, _key(item.path), item.suffix))

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

