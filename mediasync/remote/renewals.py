"""Renewal: upload a fresh copy before the service's 48-hour expiry, switch to it
once it is ACTIVE and delete the old one; planned from recorded expiry times.
A renewal that fails never takes the working copy away (failures.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mediasync.gemini import ApiError
from mediasync.rules import steps
from mediasync.rules.failures import ContentUnavailable

if TYPE_CHECKING:
    from mediasync.remote.mirror import Mirror

log = logging.getLogger("mediasync")


class Renewals:
    def __init__(self, mirror: Mirror) -> None:
        self.m = mirror
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
        async with self.m.lock(sha):
            c = self.m.store.get_content(sha)
            if c is None or not self.m.store.live_paths_for(sha) or not self.m.keeps_alive(sha):
                return
            if steps.remote_step(c, self.m.clock(), self.m.renew_before) != "renew":
                return
            if c.retry_at is not None and c.retry_at > self.m.clock():
                return
            try:
                await self.m.make_copy(c)
            except ContentUnavailable:
                return  # recorded on the row; the current copy still serves
            except ApiError as e:
                log.error("renewing %s failed: %s", self.m.label(sha), e)
                return
        # The replaced copy goes now, not at the next listing hours later: it
        # counts against the project's 20 GB until it is deleted.
        if c.remote_name:
            try:
                await self.m.delete_doomed([c.remote_name])
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
        now = self.m.clock()
        windows = [c.expires_at - self.m.renew_before for c in self.m.store.all_contents()
                   if c.remote_name and c.expires_at and c.expires_at - self.m.renew_before > now
                   and self.m.keeps_alive(c.sha256)]
        return min(windows, default=None)

    def due(self) -> int:
        """Start a renewal for every copy in its renewal window (the database only,
        no API call): an idle library is renewed on time whatever the listing does."""
        now, started = self.m.clock(), 0
        for c in self.m.store.all_contents():
            # Cheap test first: only a copy due for renewal needs its paths looked up.
            if (
                c.remote_name
                and steps.remote_step(c, now, self.m.renew_before) == "renew"
                and self.m.store.live_paths_for(c.sha256)
                and self.m.keeps_alive(c.sha256)
            ):
                self.start(c.sha256)
                started += 1
        return started

