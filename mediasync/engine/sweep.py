"""Removal: forget paths gone for longer than a rename takes, and delete the remote
copies no file needs any more. Runs on time whatever else runs (one slow video
must not hold back deletions), in its own task so its HTTP calls never stall the
dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mediasync.engine.context import Context
from mediasync.gemini import ApiError
from mediasync.rules import steps
from mediasync.rules.rows import ContentRow

log = logging.getLogger("mediasync")

BUSY_WAIT = 1.0  # a content still being uploaded is retired on a later sweep


def grace(settle: float, *, once: bool) -> float:
    """Long enough for a renamed file's new name to settle and be recognised;
    none in `sync`, which sees the whole pass before it sweeps."""
    return 0.0 if once else 2 * settle + 2.0


class Sweeper:
    def __init__(
        self,
        ctx: Context,
        *,
        busy: Callable[[str], bool],
        retire: Callable[[ContentRow], None],
        delete_doomed: Callable[[list[str] | None], Awaitable[None]],
        wake: Callable[[], None],
    ) -> None:
        """The remote copies, as the mirror keeps them: ``busy(sha)`` while an upload of
        it runs, ``retire(content)`` dooms its copies, ``delete_doomed(names)`` deletes
        them (None: every doomed one). ``wake``: the dispatcher, when a sweep ends."""
        self._ctx = ctx
        self._busy = busy
        self._retire = retire
        self._delete_doomed = delete_doomed
        self._wake = wake
        self.at: float | None = None  # monotonic time the next sweep is due
        # False while the next sweep only waits for a busy content: it retries no
        # refused delete (that would be once a second for as long as an upload runs)
        self._full = True
        self._task: asyncio.Task[None] | None = None

    @property
    def grace(self) -> float:
        return grace(self._ctx.config.daemon.settle, once=self._ctx.once)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def soon(self, delay: float, *, busy: bool = False) -> None:
        """Sweep within ``delay`` seconds (never later than already planned);
        ``busy``: only to retire a content whose upload is under way."""
        at = self._ctx.monotonic() + delay
        self.at = at if self.at is None else min(self.at, at)
        if not busy:
            self._full = True

    def start_if_due(self, now: float, blocked: bool) -> float | None:
        """Start a due sweep unless ``blocked``; seconds until the next one, if planned."""
        if self.at is None or self.running or blocked:
            return None  # a sweep or task that ends wakes the dispatcher
        if now < self.at:
            return self.at - now
        self.at = None
        full, self._full = self._full, False
        self._task = asyncio.create_task(self._in_background(full), name="sweep")
        return None

    async def join(self) -> None:
        """Until the sweep under way, if any, has ended (it logs its own errors)."""
        if self._task is not None:
            await self._task

    def cancel(self) -> list[asyncio.Task[None]]:
        if self._task is None:
            return []
        self._task.cancel()
        return [self._task]

    async def _in_background(self, full: bool) -> None:
        try:
            await self.sweep(full=full)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("removing vanished files failed; will try again")
            self.soon(self.grace + BUSY_WAIT)
        finally:
            self._wake()

    async def sweep(self, *, full: bool = True) -> None:
        """Forget paths gone for longer than a rename takes; retire unneeded contents.

        ``full``: delete every doomed remote file, else only those it retired now.
        """
        store = self._ctx.store
        gone = {r.path: r.gone_at or 0.0 for r in store.gone_paths()}
        expired = steps.removable(gone, self._ctx.clock(), self.grace)
        for p in expired:
            store.delete_path(p)
        retired: list[str] = []
        for c in store.unreferenced_contents():
            if self._busy(c.sha256):
                # an upload of it is under way: retire it once that ends
                self.soon(BUSY_WAIT, busy=True)
                continue
            log.info("no file needs %s any more; deleting its remote copy",
                     c.remote_name or c.sha256[:12])
            retired += [n for n in (c.remote_name, c.next_name) if n]
            self._retire(c)
        if len(gone) > len(expired):
            self.soon(self.grace)
        try:
            await self._delete_doomed(None if full else retired)
        except ApiError as err:
            log.warning("could not delete remote files yet: %s", err)
