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
from contextlib import AbstractAsyncContextManager, nullcontext

from mediasync.config import Config
from mediasync.gemini import (
    ApiError,
    File,
    FileChanged,
    GeminiClient,
)
from mediasync.gemini.models import epoch
from mediasync.local.folderio import FolderIO
from mediasync.local.proxies import ProxyCache
from mediasync.media.proxy import Spec
from mediasync.remote.adopt import Adopter
from mediasync.remote.budget import StoreBudget
from mediasync.remote.context import RemoteContext
from mediasync.remote.incomplete import IncompleteAnswers
from mediasync.remote.locks import ContentLocks
from mediasync.remote.proxies import NoUpload, Proxies, ProxySpace
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
    (keep_alive and the storage budget; the engine answers), else it lapses and is
    made again on use. ``on_copy(expires_at)`` hears of every copy made (the daemon
    plans its renewal check by it). ``config``: the current config, for the storage
    budget (``budget``); without it no budget is kept (every copy fits).
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
        on_renewed: Callable[[], None] | None = None,
        jitter: Callable[[], float] = random.random,
        config: Callable[[], Config] | None = None,
        on_kept: Callable[[list[str]], None] | None = None,
        proxy_cache: ProxyCache | None = None,
        proxy_spec: Callable[[ContentRow, str], Spec | None] | None = None,
    ) -> None:
        self.ctx = ctx = RemoteContext(
            client=client, store=store, clock=clock, sleep=sleep, fs=fs or FolderIO(),
            instance=instance, upload_slots=upload_slots, renew_before=renew_before,
            jitter=jitter,
        )
        self._keeps_alive = keeps_alive
        self._on_copy = on_copy
        self._on_renewed = on_renewed  # a fresh copy replaced one (metrics)
        self._locks = ContentLocks()
        self.answers = IncompleteAnswers(ctx)
        self.budget = (StoreBudget(ctx, config=config, busy=self.busy,
                                   delete_doomed=self.delete_doomed, on_kept=on_kept)
                       if config is not None else None)
        self.proxies = (Proxies(ctx, proxy_cache, proxy_spec)
                        if proxy_cache is not None and proxy_spec is not None else None)
        self._uploader = Uploader(ctx, self.answers, promote=self.promote, room=self._room,
                                  proxies=self.proxies)
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

    # -- the storage budget (remote/budget.py) -----------------------------------
    def _room(self, sha: str, size: int) -> AbstractAsyncContextManager[None]:
        return self.budget.room(sha, size) if self.budget is not None else nullcontext()

    def using(self, sha: str) -> AbstractAsyncContextManager[None]:
        """A pass uses this content's copy: it is not deleted to make room meanwhile."""
        return self.budget.using(sha) if self.budget is not None else nullcontext()

    def replan(self) -> None:
        """Files came or went: plan the storage budget again soon."""
        if self.budget is not None:
            self.budget.replan_soon()

    def settle_budget(self) -> None:
        """Make a plan that is due now (`sync`, before it ends)."""
        if self.budget is not None:
            self.budget.settle()

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
                if not (c.next_url or c.next_name):
                    if self._adopter.adopt(c):
                        continue  # a rebuilt database met a copy of ours the listing named
                    await self._adopter.awaits_listing(c)
                    if self._adopter.adopt(c):
                        continue  # named by the listing it waited for
                await self.make_copy(c)
        retry = ctx.clock() + failures.backoff(1, ctx.jitter())
        raise ContentUnavailable("the remote copy keeps disappearing; will retry", retry)

    # -- upload, poll, promote -------------------------------------------------
    async def make_copy(self, c: ContentRow) -> None:
        """Upload (or resume) a fresh copy, wait until it is ACTIVE and promote it;
        a failure is recorded on the row and raised as ContentUnavailable."""
        ctx, sha = self.ctx, c.sha256
        try:
            for tries_left in (2, 1, 0):
                try:
                    await self._copy(c)
                    return
                except ApiError as e:
                    # The store is full: the budget learns how full, makes what room
                    # it can, and the upload waits for room through it (a file never
                    # waits ten minutes for space mediasync can make).
                    if not (e.storage_full and tries_left and self.budget is not None):
                        raise
                    await self.budget.full(e, c.size)
                    c = ctx.store.get_content(sha) or c
                    if (c.remote_name and not self.budget.keeps(sha)
                            and states.usable(c, ctx.clock())):
                        # A renewal the plan, made again from the store's size just
                        # learned, no longer keeps: its copy lapses as planned, and
                        # while this renewal held the content its copy could not make
                        # room for the copies kept.
                        log.info("%s: not renewed (storage budget)", ctx.label(sha))
                        self.budget.wake()  # its copy can make room once we let go
                        return
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
                msg = v.reason + self._no_proxy(sha)
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
        except NoUpload as e:
            # Neither a proxy nor the original can go: a verdict on these bytes.
            ctx.store.copy_failed(sha, ctx.clock(), str(e), None, c.attempts + 1)
            log.error("%s: %s", ctx.label(sha), e)
            raise ContentUnavailable(str(e), None) from e
        except ProxySpace as e:
            # The state directory is full or read-only for now: nothing half-written is
            # left (local/proxies.py); try again later, as any local fault.
            now = ctx.clock()
            v = failures.judge_os(e.error, c.attempts + 1, now, ctx.jitter())
            msg = f"cannot write its upload proxy to the state directory: {v.reason}"
            ctx.store.copy_failed(sha, now, msg, v.retry_at, c.attempts + 1)
            log.error("%s: %s; will try again", ctx.label(sha), msg)
            raise ContentUnavailable(msg, v.retry_at) from e

    def _no_proxy(self, sha: str) -> str:
        return self.proxies.why_not(sha) if self.proxies is not None else ""

    async def _copy(self, c: ContentRow) -> None:
        if not c.next_name:
            await self._uploader.upload(c)
        await self._await_active(c.sha256)
        # A renewal's replaced copy goes at once: it counts against the store (and the
        # budget) until it is deleted, and the next renewal needs that room.
        if c.remote_name and c.remote_name in self.ctx.store.doomed():
            try:
                await self.delete_doomed([c.remote_name])
            except ApiError as e:
                if classify(e) == "auth":
                    raise
                log.warning("could not delete %s yet: %s", c.remote_name, e)

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
            msg = (f"the service could not process it: {file.error_message or 'FAILED'}"
                   + self._no_proxy(sha))
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
        if old and old != file.name and self.budget is not None:
            self.budget.deleting(old, c.remote_bytes or c.size)
        if old and old != file.name:
            log.info("renewed %s: %s replaces %s", ctx.label(sha), file.name, old)
            if self._on_renewed is not None:
                self._on_renewed()
        if self._on_copy is not None:
            self._on_copy(expires)

    # -- the server's listing is the truth -------------------------------------
    @property
    def listed(self) -> bool:
        """A listing of the remote files was read since the start."""
        return self._adopter.listed

    async def refresh(self) -> list[str]:
        """List every remote file once and reconcile; returns contents to upload again."""
        with self._adopter.listing():
            return await self._refresher.refresh()

    def forget_copy(self, sha: str, uri: str | None = None) -> bool:
        """The server says the copy at ``uri`` is gone (403 on use): upload again.
        False when the content names another copy by now (a renewal replaced the one
        the generation used): that one serves, nothing is forgotten."""
        c = self.ctx.store.get_content(sha)
        if c is None or (uri is not None and c.uri != uri):
            return False
        self.ctx.store.copy_gone(sha, self.ctx.clock())
        return True

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
            if self.budget is not None:
                self.budget.wake()  # its room is free now

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
        self.replan()
