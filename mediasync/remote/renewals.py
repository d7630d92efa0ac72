"""Renewal: upload a fresh copy before the service's 48-hour expiry, switch to it
once it is ACTIVE and delete the old one; planned from recorded expiry times.
A renewal that fails never takes the working copy away (rules/failures.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from mediasync.gemini import ApiError
from mediasync.remote.context import RemoteContext
from mediasync.rules import steps
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow
from mediasync.rules.states import renew_at

log = logging.getLogger("mediasync")


class Renewals:
    """Renewal tasks, one per content at most. ``lock`` holds a content (no upload
    or poll of it meanwhile); ``make_copy`` uploads and promotes a fresh copy;
    ``delete_doomed`` deletes the named doomed copies; ``keeps_alive`` says whether
    a content's copy is renewed at all (keep_alive)."""

    def __init__(
        self,
        ctx: RemoteContext,
        *,
        lock: Callable[[str], AbstractAsyncContextManager[None]],
        make_copy: Callable[[ContentRow], Awaitable[None]],
        delete_doomed: Callable[[list[str]], Awaitable[None]],
        keeps_alive: Callable[[str], bool],
    ) -> None:
        self.ctx = ctx
        self.lock = lock
        self.make_copy = make_copy
        self.delete_doomed = delete_doomed
        self.keeps_alive = keeps_alive
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, sha: str) -> None:
        task = self._tasks.get(sha)
        if task is None or task.done():
            task = self._tasks[sha] = asyncio.create_task(self._renew(sha),
                                                          name=f"renew {sha[:12]}")
            # Forget it once done: a daemon renews every file every two days.
            task.add_done_callback(lambda t: self._tasks.pop(sha, None)
                                   if self._tasks.get(sha) is t else None)

    async def _renew(self, sha: str) -> None:
        ctx = self.ctx
        async with self.lock(sha):
            c = ctx.store.get_content(sha)
            if c is None or not ctx.store.live_paths_for(sha) or not self.keeps_alive(sha):
                return
            if steps.remote_step(c, ctx.clock(), ctx.renew_before) != "renew":
                return
            if c.retry_at is not None and c.retry_at > ctx.clock():
                return
            try:
                await self.make_copy(c)
            except ContentUnavailable:
                return  # recorded on the row; the current copy still serves
            except ApiError as e:
                log.error("renewing %s failed: %s", ctx.label(sha), e)
                return
        # The replaced copy goes now, not at the next listing hours later: it
        # counts against the project's 20 GB until it is deleted.
        if c.remote_name:
            try:
                await self.delete_doomed([c.remote_name])
            except ApiError as e:
                log.warning("could not delete %s yet: %s", c.remote_name, e)

    async def wait(self) -> None:
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def cancel(self) -> None:
        for t in self._tasks.values():
            t.cancel()

    def next_at(self) -> float | None:
        """When the next live copy enters its renewal window (wall clock), if any."""
        now, before = self.ctx.clock(), self.ctx.renew_before
        windows = (renew_at(c.expires_at, before) for c in self.ctx.store.each_content()
                   if c.remote_name and c.expires_at and renew_at(c.expires_at, before) > now
                   and self.keeps_alive(c.sha256))
        return min(windows, default=None)

    def due(self) -> int:
        """Start a renewal for every copy in its renewal window (the database only,
        no API call): an idle library is renewed on time whatever the listing does."""
        ctx = self.ctx
        now, started = ctx.clock(), 0
        for c in ctx.store.each_content():
            # Cheap test first: only a copy due for renewal needs its paths looked up.
            if (
                c.remote_name
                and steps.remote_step(c, now, ctx.renew_before) == "renew"
                and ctx.store.live_paths_for(c.sha256)
                and self.keeps_alive(c.sha256)
            ):
                self.start(c.sha256)
                started += 1
        return started
