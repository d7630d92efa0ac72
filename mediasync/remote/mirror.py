"""The remote side of a content: upload (resumable, across restarts), wait for
ACTIVE, renew before expiry, reconcile with the server's listing, delete.

Every step is recorded in the store before and after it runs, so a crash at any
point resumes from the database (docs/architecture.md, "State machines").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from mediasync.gemini import (
    ApiError,
    File,
    FileChanged,
    GeminiClient,
)
from mediasync.gemini.models import epoch
from mediasync.local.folderio import FolderIO
from mediasync.remote.adopt import Adopter
from mediasync.remote.context import RemoteContext
from mediasync.remote.incomplete import IncompleteAnswers
from mediasync.remote.locks import ContentLocks
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
    """Composes the parts of the remote copy around one shared RemoteContext.

    ``keeps_alive(sha)``: whether a content's copy is renewed before it expires
    (keep_alive; the engine answers from its config), else it lapses and is made
    again on use. ``on_copy(expires_at)`` hears of every copy made (the daemon
    plans its renewal check by it).
    """

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
        keeps_alive: Callable[[str], bool] = lambda sha: True,
        on_copy: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.ctx = ctx = RemoteContext(
            client=client, store=store, clock=clock, sleep=sleep, fs=fs or FolderIO(),
            instance=instance, upload_slots=upload_slots, renew_before=renew_before,
            jitter=jitter,
        )
        self._keeps_alive = keeps_alive
        self._on_copy = on_copy
        self._locks = ContentLocks()
        self.answers = IncompleteAnswers(ctx)
        self._uploader = Uploader(ctx, self.answers, promote=self.promote)
        self.renewals = Renewals(ctx, lock=self.lock, make_copy=self.make_copy,
                                 delete_doomed=self.delete_doomed, keeps_alive=keeps_alive)
        self._adopter = Adopter(ctx, on_copy)
        self._refresher = Refresher(ctx, keeps_alive=keeps_alive, renew_due=self.renewals.due,
                                    offer=self._adopter.offer)

    # -- what a reload changes (every part sees it: they share the context) ----
    @property
    def client(self) -> GeminiClient:
        return self.ctx.client

    @client.setter
    def client(self, client: GeminiClient) -> None:
        self.ctx.client = client

    @property
    def renew_before(self) -> float:
        return self.ctx.renew_before

    @renew_before.setter
    def renew_before(self, seconds: float) -> None:
        self.ctx.renew_before = seconds

    @property
    def upload_slots(self) -> asyncio.Semaphore:
        return self.ctx.upload_slots

    @upload_slots.setter
    def upload_slots(self, slots: asyncio.Semaphore) -> None:
        self.ctx.upload_slots = slots

    @property
    def jitter(self) -> Callable[[], float]:
        """The randomness of retry times (the engine's backoffs use it too)."""
        return self.ctx.jitter

    def lock(self, sha: str) -> AbstractAsyncContextManager[None]:
        """One upload, poll or renewal of a content at a time."""
        return self._locks.hold(sha)

    # -- the copy a generation uses --------------------------------------------
    async def ensure(self, sha: str) -> ContentRow:
        """A content with a usable ACTIVE remote copy; uploads it when needed.

        Raises ContentUnavailable when there is none now (failed, or waiting to
        retry), and lets ApiError of kind "auth" through to the engine.
        """
        ctx = self.ctx
        for _ in range(4):
            c = ctx.store.get_content(sha)
            assert c is not None
            step = steps.remote_step(c, ctx.clock(), ctx.renew_before)
            if step in ("ready", "renew"):
                if step == "renew" and self._keeps_alive(sha):
                    self.renewals.start(sha)
                return c
            if step == "failed":
                raise ContentUnavailable(c.error or "failed", None)
            if step == "wait":
                raise ContentUnavailable(c.error or "waiting to retry", c.retry_at)
            async with self.lock(sha):
                c = ctx.store.get_content(sha)
                assert c is not None
                if steps.remote_step(c, ctx.clock(), ctx.renew_before) in ("ready", "renew"):
                    continue
                if not (c.next_url or c.next_name) and self._adopter.adopt(c):
                    continue  # a rebuilt database met a copy of ours the listing named
                await self.make_copy(c)
        retry = ctx.clock() + failures.backoff(1, ctx.jitter())
        raise ContentUnavailable("the remote copy keeps disappearing; will retry", retry)

    # -- upload, poll, promote -------------------------------------------------
    async def make_copy(self, c: ContentRow) -> None:
        """Upload (or resume) a fresh copy, wait until it is ACTIVE and promote it;
        a failure is recorded on the row and raised as ContentUnavailable."""
        ctx, sha = self.ctx, c.sha256
        try:
            if not c.next_name:
                await self._uploader.upload(c)
            await self._await_active(sha)
        except CopyVanished:
            return  # next_name is dropped: the caller's next look uploads again
        except ApiError as e:
            # Judged at the time of the failure: an upload may have taken an hour.
            now = ctx.clock()
            # A renewal that fails never takes the working copy away (issue 8, row 9).
            v = failures.judge_api(e, c.attempts + 1, now, ctx.jitter(),
                                   serving=states.usable(c, now))
            if v.kind == "config":
                raise
            if v.kind == "permanent":
                msg = v.reason
                ctx.store.session_dropped(sha, now)
            elif e.storage_full:
                msg = v.reason
            elif not v.counts:
                msg = f"waiting: {v.reason}"  # paused until the quota's reset
            else:
                msg = f"upload failed, will retry: {v.reason}"
            ctx.store.copy_failed(sha, now, msg, v.retry_at, c.attempts + (1 if v.counts else 0))
            (log.error if v.counts else log.warning)("%s: %s", ctx.label(sha), msg)
            raise ContentUnavailable(msg, v.retry_at) from e
        except (FileChanged, FileNotFoundError, PermissionError) as e:
            ctx.store.session_dropped(sha, ctx.clock())
            msg = f"the file changed or vanished during upload: {e}"
            raise ContentUnavailable(msg, None, changed=True) from e

    async def _await_active(self, sha: str) -> None:
        ctx = self.ctx
        c = ctx.store.get_content(sha)
        assert c is not None
        if not c.next_name:
            return
        try:
            file = await ctx.client.wait_processed(c.next_name, sleep=ctx.sleep)
        except ApiError as e:
            if classify(e) != "gone":
                raise
            # Purged or expired before it became ACTIVE: it never will (issue 8, row 3).
            ctx.store.processing_dropped(sha, ctx.clock())
            log.warning("%s: the copy being processed is gone; uploading again",
                        ctx.label(sha))
            raise CopyVanished from e
        self.promote(sha, file)

    def promote(self, sha: str, file: File) -> None:
        """A processed upload's verdict: ACTIVE makes it the serving copy (the one
        it replaces is doomed); FAILED records why, unless a working copy serves."""
        ctx = self.ctx
        now = ctx.clock()
        c = ctx.store.get_content(sha)
        if c is None:  # retired while it was uploaded: nothing needs it
            ctx.store.doom(file.name, "no longer needed", now)
            return
        if file.state == "FAILED":
            msg = f"the service could not process it: {file.error_message or 'FAILED'}"
            # Permanent for these bytes, unless a working copy still serves (a renewal).
            retry = None
            if states.usable(c, now):
                retry = now + failures.backoff(c.attempts + 1, ctx.jitter())
            ctx.store.doom(file.name, "processing failed", now)
            ctx.store.processing_dropped(sha, now, error=msg, retry_at=retry,
                                         attempts=c.attempts + 1)
            log.error("%s: %s", ctx.label(sha), msg)
            return
        if file.state != "ACTIVE":
            self.answers.warn_once("nostate", f"the service's answer for {file.name} names no "
                                   f"state ({file.state}); using the copy as ACTIVE")
        old = c.remote_name
        expires = epoch(file.expiration_time) or c.next_expires_at or self.answers.expiry(file)
        with ctx.store.transaction():
            ctx.store.promoted(sha, now, file.name,
                               file.uri or c.next_uri or ctx.client.file_uri(file.name),
                               expires)
            if old and old != file.name:
                ctx.store.doom(old, "renewed", now)
        if old and old != file.name:
            log.info("renewed %s: %s replaces %s", ctx.label(sha), file.name, old)
        if self._on_copy is not None:
            self._on_copy(expires)

    # -- the server's listing is the truth -------------------------------------
    async def refresh(self) -> list[str]:
        """List every remote file once and reconcile; returns contents to upload again."""
        return await self._refresher.refresh()

    def forget_copy(self, sha: str) -> None:
        """The server says the copy is gone (403 on use): upload again."""
        self.ctx.store.copy_gone(sha, self.ctx.clock())

    async def delete_doomed(self, names: list[str] | None = None) -> None:
        """Delete the remote files recorded as doomed (all, or these of them)."""
        store = self.ctx.store
        doomed = store.doomed()
        for name in doomed if names is None else [n for n in names if n in doomed]:
            try:
                await self.ctx.client.delete_file(name)
            except ApiError as e:
                if classify(e) == "auth":
                    raise
                if not e.file_gone:
                    log.warning("could not delete %s yet: %s", name, e)
                    continue
            store.undoom(name)
            log.debug("deleted remote %s", name)

    def busy(self, sha: str) -> bool:
        """An upload, poll or renewal of this content is under way."""
        return self._locks.busy(sha)

    def retire(self, c: ContentRow) -> None:
        """No path needs this content any more: delete its remote copies."""
        store, now = self.ctx.store, self.ctx.clock()
        with store.transaction():
            for name in (c.remote_name, c.next_name):
                if name:
                    store.doom(name, "no longer needed", now)
            store.delete_content(c.sha256)
