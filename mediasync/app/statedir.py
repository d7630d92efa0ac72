"""The state directory's files, healed: a damaged database is moved aside and
rebuilt, a missing one rebuilt, one deleted under the running daemon written back,
a lost lock taken again (docs/architecture.md, "Losing the state").

A rebuild is no separate pass: the engine starts from an empty database and, as it
meets each file, adopts what is already there instead of paying again: the remote
copies of this instance the listing names (remote/adopt.py), and the sidecars whose
marks (local/marks.py) say mediasync wrote them. So the instance id must outlive
the database: it is kept in a small file beside it too (``instance-id``).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mediasync.app.instance import STATE_FILE, InstanceLock, InstanceLocked
from mediasync.store import Meta, Store, StoreDamaged

log = logging.getLogger("mediasync")

INSTANCE_FILE = "instance-id"
KEEP_DAMAGED = 3  # damaged databases kept for the owner; older ones are deleted
_SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's files beside a database


def open_state(directory: Path, *, damaged: str | None = None,
               clock: Callable[[], float] = time.time) -> Store:
    """The state database, writable, with its instance id. A damaged one (found by
    quick_check, or ``damaged``: the reason a query gave) is moved aside and a new one
    made; so is a missing one where the instance-id file says one was. Either is said
    once in the log, and in `status` (meta ``recovery``) until the rebuild is done."""
    db = directory / STATE_FILE
    had_instance = (directory / INSTANCE_FILE).exists()
    store = None
    if damaged is None:
        try:
            store = Store(db, check=True)
        except StoreDamaged as e:
            damaged = e.detail
    what = None
    if damaged is not None:
        kept = move_aside(db, "damaged", clock())
        store = Store(db)
        what = (f"the state database was damaged ({damaged}); kept it as {kept.name} and "
                "started a new one: each file is matched again with its remote copy and "
                "its sidecars, nothing is paid for twice")
    elif store is not None and store.created and had_instance:
        what = ("the state database was missing; started a new one: each file is matched "
                "again with its remote copy and its sidecars, nothing is paid for twice")
    assert store is not None
    keep_instance_id(store, directory)
    if what is not None:
        log.warning("%s", what)
        store.write(Meta.RECOVERY, {"at": clock(), "what": what, "pending": True})
    return store


def keep_instance_id(store: Store, directory: Path) -> str:
    """The instance id in the database and in the file beside it, made once. The
    database's wins (it names the remote copies); the file outlives a lost database."""
    value = store.read(Meta.INSTANCE_ID)
    path = directory / INSTANCE_FILE
    try:
        on_file = path.read_text().strip()
    except OSError:
        on_file = ""
    if not value:
        value = on_file or secrets.token_hex(4)
        store.write(Meta.INSTANCE_ID, value)
    if on_file != value:
        _write_atomic(path, value + "\n")
    return value


def _write_atomic(path: Path, text: str) -> None:
    """Whole or not at all, also across a power cut: the instance id it holds names
    the remote copies when the database is lost, so an empty file after a crash
    would orphan them."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the rename itself
    finally:
        os.close(fd)


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def move_aside(db: Path, why: str, now: float) -> Path:
    """Rename ``db`` with its -wal and -shm to ``<db>.<why>-<time>`` (SQLite finds a
    WAL by the database's name, so the kept set still opens); returns the new name."""
    target = db.with_name(f"{db.name}.{why}-{_stamp(now)}")
    n = 1
    while os.path.lexists(target):
        n += 1
        target = db.with_name(f"{db.name}.{why}-{_stamp(now)}.{n}")
    os.rename(db, target)
    for side in _SIDE_FILES:
        try:
            os.rename(f"{db}{side}", f"{target}{side}")
        except FileNotFoundError:
            pass
    _prune(db, why)
    return target


def _prune(db: Path, why: str) -> None:
    """Keep the newest KEEP_DAMAGED databases moved aside for one reason."""
    kept = sorted(p for p in db.parent.glob(f"{db.name}.{why}-*")
                  if not p.name.endswith(_SIDE_FILES))
    for old in kept[:-KEEP_DAMAGED]:
        for p in (old, *(Path(f"{old}{side}") for side in _SIDE_FILES)):
            p.unlink(missing_ok=True)
        log.info("deleted %s (keeping the %d newest)", old.name, KEEP_DAMAGED)


def write_back(store: Store, now: float) -> str:
    """Our database file was deleted or replaced while open: write what the open
    connection holds to the path again and go on with it. Returns what happened."""
    db = store.path
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restore")
    for p in (tmp, *(Path(f"{tmp}{side}") for side in _SIDE_FILES)):
        p.unlink(missing_ok=True)
    store.copy_to(tmp)
    what = f"the state database {db} was deleted while mediasync ran; wrote it back"
    if db.exists():
        replaced = move_aside(db, "replaced", now)
        what = (f"the state database {db} was replaced while mediasync ran; kept the other "
                f"file as {replaced.name} and wrote ours back")
    # Whatever -wal or -shm is left at the path was the moved database's: beside the
    # copy put there now, SQLite would replay it into it.
    for side in _SIDE_FILES:
        Path(f"{db}{side}").unlink(missing_ok=True)
    os.replace(tmp, db)
    store.reopen()
    return what


class StateGuard:
    """What the daemon checks every few seconds: its lock file, its database file,
    the instance-id file. ``check`` heals what can be healed and returns why the
    daemon must stop (another mediasync took the directory), else None."""

    def __init__(self, lock: InstanceLock, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self.lock = lock
        self.store = store
        self.clock = clock

    def check(self) -> str | None:
        if self.lock.lost():
            try:
                self.lock.retake()
            except InstanceLocked as e:
                return (f"the lock file {self.lock.path} was removed and another mediasync "
                        f"took the state directory since ({e}); stopping")
            except OSError as e:
                log.warning("the lock file %s was removed; cannot take it again yet: %s",
                            self.lock.path, e.strerror or e)
                return None
            log.warning("the lock file %s was removed; took it again", self.lock.path)
        if self.store.moved():
            try:
                what = write_back(self.store, self.clock())
            except OSError as e:
                log.warning("the state database %s is gone; cannot write it back yet: %s",
                            self.store.path, e.strerror or e)
                return None
            log.warning("%s", what)
            # A rebuild still matching copies stays pending: the written-back database
            # is the same one, mid-way.
            pending = bool(self.store.read(Meta.RECOVERY).get("pending"))
            self.store.write(Meta.RECOVERY, {"at": self.clock(), "what": what,
                                             "pending": pending})
        if not (self.lock.directory / INSTANCE_FILE).exists():
            try:
                keep_instance_id(self.store, self.lock.directory)
            except OSError as e:
                log.debug("cannot write the instance id yet: %s", e)
        return None
