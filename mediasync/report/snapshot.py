"""One reading of the state database for the status page, /metrics and notifications
(issue 19), decoded by `status`'s own functions (``status.build``, ``quota_state``,
``counts``), so the page and `mediasync status --json` cannot disagree.

Built off the event loop from a read-only connection of its own; the endpoint
serves the last one built and never reads the store itself.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediasync.config import Config
from mediasync.report import status
from mediasync.report.status import FileReport
from mediasync.store import Meta, Store

# The order the page lists files that are not done: what needs a person first.
STATE_ORDER = ("failed", "waiting", "uploading", "processing", "pending")


@dataclass
class Snapshot:
    taken_at: float  # wall clock when read
    took: float  # seconds reading and decoding took
    folders: list[str]  # the configured folders, in the config's order
    reports: list[FileReport]
    halted: str | None
    unavailable: dict[str, str]
    quota: dict[str, Any]  # status.quota_state: pauses, costs per model, the daily cap
    remote_bytes: int  # bytes of our live copies on the service
    store_bytes: int  # state.db with its WAL and shared-memory files
    per_folder: dict[str, dict[str, int]] = field(default_factory=dict)  # folder → state → n
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)  # folder → outcome → n
    not_done: list[FileReport] = field(default_factory=list)  # STATE_ORDER, then path
    held: dict[str, str] = field(default_factory=dict)  # models/tiers held (status.held)
    _haystack: list[str] | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        """Files per state over every folder (the STATUS line's figures)."""
        totals: dict[str, int] = {}
        for counts in self.per_folder.values():
            for state, n in counts.items():
                totals[state] = totals.get(state, 0) + n
        return totals

    def find(self, query: str = "", state: str = "", offset: int = 0,
             limit: int = 50) -> tuple[list[FileReport], int]:
        """One page of the files that are not done, matching ``query`` (in the path or
        the reason, case-insensitive) and ``state``; and how many match in all."""
        rows = self.not_done
        if query:
            if self._haystack is None:  # built on the first search, once per snapshot
                self._haystack = [f"{r.path}\n{r.message or ''}".casefold() for r in rows]
            q = query.casefold()
            rows = [r for r, text in zip(rows, self._haystack, strict=True) if q in text]
        if state:
            rows = [r for r in rows if r.state == state]
        return rows[offset:offset + limit], len(rows)


def store_size(db: Path) -> int:
    """Bytes of the database on disk, its write-ahead log and index included."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(f"{db}{suffix}").st_size
        except OSError:
            pass
    return total


def build(db: Path, config: Config, now: float | None = None) -> Snapshot:
    """Read the store once (read-only; WAL lets the daemon write meanwhile) and decode
    it as `mediasync status --json` does. Blocking: run it in a thread."""
    start = time.monotonic()
    now = time.time() if now is None else now
    store = Store(db, readonly=True)
    try:
        halted = store.read(Meta.HALTED) or None
        reports = status.build(store, config, now)
        unavailable = status.unavailable_folders(store)
        quota = status.quota_state(store, config, now)
        remote = int(store.counts()["bytes_mirrored"])
        held = status.held(store, config)
    finally:
        store.close()
    snap = Snapshot(taken_at=now, took=0.0, folders=[str(f.path) for f in config.folders],
                    reports=reports, halted=halted, unavailable=unavailable, quota=quota,
                    remote_bytes=remote, store_bytes=store_size(db), held=held)
    _summarise(snap)
    snap.took = time.monotonic() - start
    return snap


def _summarise(snap: Snapshot) -> None:
    per_folder: dict[str, list[FileReport]] = {f: [] for f in snap.folders}
    for r in snap.reports:
        per_folder.setdefault(r.folder, []).append(r)
    snap.per_folder = {f: status.counts(rs) for f, rs in per_folder.items()}
    for f, rs in per_folder.items():
        outcomes: dict[str, int] = {}
        for r in rs:
            for s in r.sidecars:
                outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
        snap.outputs[f] = outcomes
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    snap.not_done = sorted((r for r in snap.reports if not r.ok),
                           key=lambda r: (rank.get(r.state, len(rank)), r.path))


def empty(config: Config, now: float) -> Snapshot:
    """What is shown before the first reading is done."""
    return Snapshot(taken_at=now, took=0.0, folders=[str(f.path) for f in config.folders],
                    reports=[], halted=None, unavailable={},
                    quota={"paused": [], "costs": {}, "cap": {}}, remote_bytes=0, store_bytes=0,
                    per_folder={str(f.path): {} for f in config.folders})
