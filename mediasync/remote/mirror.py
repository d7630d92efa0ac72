"""The remote side of a content: upload (resumable, across restarts), wait for
ACTIVE, renew before expiry, reconcile with the server's listing, delete.

Every step is recorded in the store before and after it runs, so a crash at any
point resumes from the database (docs/architecture.md, "State machines").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from mediasync.gemini import (
    ApiError,
    File,
    FileChanged,
    GeminiClient,
)
from mediasync.gemini.models import epoch
from mediasync.local.folderio import FolderIO
from mediasync.remote.incomplete import Lenient
from mediasync.remote.refresh import Refresher
from mediasync.remote.renewals import Renewals
from mediasync.remote.uploads import Uploader
from mediasync.rules import failures, states, steps
from mediasync.rules.failures import ContentUnavailable, classify
from mediasync.rules.rows import ContentRow
from mediasync.store import Store

log = logging.getLogger("mediasync")



class CopyVanished(Exception):
    """The copy being processed is gone (purged, or expired meanwhile): upload anew."""


class Mirror:
    def __init__(
        self,
        client: GeminiClient,
        store: Store,
        *,
        renew_before: float,
        upload_slots: asyncio.Semaphore,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        fs: FolderIO | None = None,
        instance: str | None = None,
    ) -> None:
        self.client = client
        self.fs = fs or FolderIO()
        self.instance = instance  # in display names: whose copies a refresh may delete
        self.store = store
        self.renew_before = renew_before
        self.upload_slots = upload_slots
        self.clock = clock
        self.sleep = sleep
        self._locks: dict[str, _Lock] = {}
        self.renewals = Renewals(self)
        self.lenient = Lenient(self)
        self._refresher = Refresher(self)
        self._uploader = Uploader(self)
        # Told each new copy's expiry (the daemon plans its renewal check by it).
        self.on_copy: Callable[[float], None] | None = None
        self.on_renewed: Callable[[], None] | None = None  # a fresh copy replaced one (metrics)
        self.jitter: Callable[[], float] = random.random
        # Whether a content's copy is renewed before it expires (keep_alive; the
        # engine answers from its config). Otherwise it lapses and is made on use.
        self.keeps_alive: Callable[[str], bool] = lambda sha: True

    @contextlib.asynccontextmanager
    async def lock(self, sha: str) -> AsyncIterator[None]:
        """One upload, poll or renewal of a content at a time. The lock is dropped when
        nobody holds or awaits it: a daemon sees every content of a library over months."""
        entry = self._locks.get(sha)
        if entry is None:
            entry = self._locks[sha] = _Lock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(sha) is entry:
                del self._locks[sha]

    # -- the copy a generation uses --------------------------------------------
    async def ensure(self, sha: str) -> ContentRow:
        """A content with a usable ACTIVE remote copy; uploads it when needed.

        Raises ContentUnavailable when there is none now (failed, or waiting to
        retry), and lets ApiError of kind "auth" through to the engine.
        """
        for _ in range(4):
            c = self.store.get_content(sha)
            assert c is not None
            step = steps.remote_step(c, self.clock(), self.renew_before)
            if step in ("ready", "renew"):
                if step == "renew" and self.keeps_alive(sha):
                    self.renewals.start(sha)
                return c
            if step == "failed":
                raise ContentUnavailable(c.error or "failed", None)
            if step == "wait":
                raise ContentUnavailable(c.error or "waiting to retry", c.retry_at)
            async with self.lock(sha):
                c = self.store.get_content(sha)
                assert c is not None
                if steps.remote_step(c, self.clock(), self.renew_before) in ("ready", "renew"):
                    continue
                await self.make_copy(c)
        retry = self.clock() + failures.backoff(1, self.jitter())
        raise ContentUnavailable("the remote copy keeps disappearing; will retry", retry)


    # -- upload, poll, promote -------------------------------------------------
    def label(self, sha: str) -> str:
        paths = self.store.live_paths_for(sha)
        return os.path.basename(paths[0]) if paths else sha[:12]


    async def make_copy(self, c: ContentRow) -> None:
        sha = c.sha256
        try:
            if not c.next_name:
                await self._uploader.upload(c)
            await self._await_active(sha)
        except CopyVanished:
            return  # next_name is dropped: the caller's next look uploads again
        except ApiError as e:
            # Judged at the time of the failure: an upload may have taken an hour.
            now = self.clock()
            # A renewal that fails never takes the working copy away (issue 8, row 9).
            v = failures.judge_api(e, c.attempts + 1, now, self.jitter(),
                                   serving=states.usable(c, now))
            if v.kind == "config":
                raise
            if v.kind == "permanent":
                msg = v.reason
                self.store.session_dropped(sha, now)
            elif e.storage_full:
                msg = v.reason
            elif not v.counts:
                msg = f"waiting: {v.reason}"  # paused until the quota's reset
            else:
                msg = f"upload failed, will retry: {v.reason}"
            self.store.copy_failed(sha, now, msg, v.retry_at, c.attempts + (1 if v.counts else 0))
            (log.error if v.counts else log.warning)("%s: %s", self.label(sha), msg)
            raise ContentUnavailable(msg, v.retry_at) from e
        except (FileChanged, FileNotFoundError, PermissionError) as e:
            self.store.session_dropped(sha, self.clock())
            msg = f"the file changed or vanished during upload: {e}"
            raise ContentUnavailable(msg, None, changed=True) from e


    async def _await_active(self, sha: str) -> None:
        c = self.store.get_content(sha)
        assert c is not None
        if not c.next_name:
            return
        try:
            file = await self.client.wait_processed(c.next_name, sleep=self.sleep)
        except ApiError as e:
            if classify(e) != "gone":
                raise
            # Purged or expired before it became ACTIVE: it never will (issue 8, row 3).
            self.store.processing_dropped(sha, self.clock())
            log.warning("%s: the copy being processed is gone; uploading again",
                        self.label(sha))
            raise CopyVanished from e
        self.settle_state(sha, file)

    def settle_state(self, sha: str, file: File) -> None:
        now = self.clock()
        c = self.store.get_content(sha)
        if c is None:  # retired while it was uploaded: nothing needs it
            self.store.doom(file.name, "no longer needed", now)
            return
        if file.state == "FAILED":
            msg = f"the service could not process it: {file.error_message or 'FAILED'}"
            # Permanent for these bytes, unless a working copy still serves (a renewal).
            retry = None
            if states.usable(c, now):
                retry = now + failures.backoff(c.attempts + 1, self.jitter())
            self.store.doom(file.name, "processing failed", now)
            self.store.processing_dropped(sha, now, error=msg, retry_at=retry,
                                          attempts=c.attempts + 1)
            log.error("%s: %s", self.label(sha), msg)
            return
        if file.state != "ACTIVE":
            self.lenient.warn_once("nostate", f"the service's answer for {file.name} names no "
                                   f"state ({file.state}); using the copy as ACTIVE")
        old = c.remote_name
        expires = epoch(file.expiration_time) or c.next_expires_at or self.lenient.expiry(file)
        with self.store.transaction():
            self.store.promoted(sha, now, file.name,
                                file.uri or c.next_uri or self.client.file_uri(file.name),
                                expires)
            if old and old != file.name:
                self.store.doom(old, "renewed", now)
        if old and old != file.name:
            log.info("renewed %s: %s replaces %s", self.label(sha), file.name, old)
            if self.on_renewed is not None:
                self.on_renewed()
        if self.on_copy is not None:
            self.on_copy(expires)

    # -- the server's listing is the truth -------------------------------------


    async def refresh(self) -> list[str]:
        """List every remote file once and reconcile; returns contents to upload again."""
        return await self._refresher.refresh()

    def forget_copy(self, sha: str) -> None:
        """The server says the copy is gone (403 on use): upload again."""
        self.store.copy_gone(sha, self.clock())

    async def delete_doomed(self, names: list[str] | None = None) -> None:
        """Delete the remote files recorded as doomed (all, or these of them)."""
        doomed = self.store.doomed()
        for name in doomed if names is None else [n for n in names if n in doomed]:
            try:
                await self.client.delete_file(name)
            except ApiError as e:
                if classify(e) == "auth":
                    raise
                if not e.file_gone:
                    log.warning("could not delete %s yet: %s", name, e)
                    continue
            self.store.undoom(name)
            log.debug("deleted remote %s", name)

    def busy(self, sha: str) -> bool:
        """An upload, poll or renewal of this content is under way."""
        entry = self._locks.get(sha)
        return entry is not None and entry.lock.locked()

    def retire(self, c: ContentRow) -> None:
        """No path needs this content any more: delete its remote copies."""
        now = self.clock()
        with self.store.transaction():
            for name in (c.remote_name, c.next_name):
                if name:
                    self.store.doom(name, "no longer needed", now)
            self.store.delete_content(c.sha256)


class _Lock:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders and waiters
