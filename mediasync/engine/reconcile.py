"""One path, one step: compare what should be (config + the file on disk) with
what is (the store + the remote copy) and take the next step — settle, identify,
mirror, outputs (docs/architecture.md, "From an event to a sidecar").
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from mediasync.config import FolderConfig
from mediasync.engine.identify import UNAVAILABLE_RETRY
from mediasync.gemini import ApiError
from mediasync.local.candidates import is_candidate
from mediasync.local.folderio import FolderUnavailable
from mediasync.local.scan import NotRegular, local_facts
from mediasync.rules import desired
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow, LocalFacts, PathRow

if TYPE_CHECKING:
    from mediasync.engine.dispatch import Engine


class Reconciler:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    async def reconcile(self, path: str) -> None:
        """Take the next step for one path: settle, identify, mirror, outputs."""
        folder = self.e.config.folder_for(Path(path))
        rel = PurePath(os.path.relpath(path, folder.path)) if folder else None
        mt = is_candidate(rel, folder, self.e.suffixes) if folder and rel else None
        if folder is None or rel is None or mt is None:
            await self.e.identify.gone(path, folder)
            return
        facts = await self._look(path, folder, rel)
        if facts is None:
            return
        wait = self.e.settle.wait(path, facts, self.e.clock(), self.e.config.daemon.settle)
        if wait > 0:
            self.e.schedule(path, self.e.monotonic() + wait)
            return
        row = await self.e.identify.identify(path, folder, rel, mt.kind, mt.mime, facts)
        if row is None or row.problem or not row.sha256 or self.e.halted:
            return
        sha, ready = row.sha256, None
        if self.e.config.keeps_alive(Path(path)):
            if await self._copy(path, row) is None:
                return
        else:
            # keep_alive = "on_use": a copy is made only when an output is generated.
            ready = _Once(lambda: self._copy(path, row))
        for want in desired.desired(folder, path, row.kind, self.e.config.api.model):
            await self.e.producer.output(path, rel, sha, want, ready)
        self.e.producer.forget_answers(sha)

    async def _look(self, path: str, folder: FolderConfig, rel: PurePath) -> LocalFacts | None:
        """The path's stat (from the scan when fresh), or None when there is nothing to do."""
        try:
            return self.e.scanned.pop(path, None) or await self.e.fs.call(
                str(folder.path), local_facts, path
            )
        except FolderUnavailable:
            self.e.later(path, self.e.clock() + UNAVAILABLE_RETRY)
        except FileNotFoundError:
            await self.e.identify.gone(path, folder)
        except NotRegular as e:
            self.e.note(path, "notregular", "skipping %s: %s, not a regular file", rel, e.what)
            await self.e.identify.gone(path, folder)
        except OSError as e:
            self.e.note(path, "stat", "cannot look at %s: %s", rel, e.strerror or e)
        return None

    async def _copy(self, path: str, row: PathRow) -> ContentRow | None:
        """The content's usable remote copy (uploaded if needed), or None for now."""
        assert row.sha256 is not None
        if self.e.store.get_content(row.sha256) is None:
            self.e.store.ensure_content(row.sha256, row.size, row.mime, row.kind, self.e.clock())
        try:
            return await self.e.mirror.ensure(row.sha256)
        except ContentUnavailable as e:
            if e.changed:  # not a retry: the new bytes need hashing (in `sync` too)
                self.e.schedule(path, self.e.monotonic() + self.e.config.daemon.settle)
            else:
                self.e.later(path, e.retry_at)
        except ApiError as e:
            self.e.halt(e)
        return None


class _Once:
    """The copy asked for at most once per pass: a failure is not retried per output."""

    def __init__(self, make: Callable[[], Awaitable[ContentRow | None]]) -> None:
        self._make = make
        self._asked = False
        self._got: ContentRow | None = None

    async def __call__(self) -> ContentRow | None:
        if not self._asked:
            self._asked = True
            self._got = await self._make()
        return self._got
