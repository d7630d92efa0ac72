"""The storage budget at run time: which copies are kept alive (rules/budget.py
plans it), room made before every upload, copies in use never deleted.

- ``keeps(sha)``: whether the plan keeps this content's copy alive (renewals, and
  the reconciler's upload before the outputs, ask it; the rest lapse as under
  ``keep_alive = "on_use"`` and are uploaded again when a prompt needs them).
- ``room(sha, size)``: held around every upload (a renewal's too) until the copy
  is ACTIVE: waits until this instance's copies plus the upload fit the budget,
  deleting copies outside the plan, least important first, that no pass is using.
  So a file never waits for space while mediasync itself could make it.
- ``using(sha)``: held by a reconciler's pass from the copy to the last output: a
  copy being generated from is never deleted under it.
- ``full(error, size)``: the service said the store is full: learn its size (the
  answer names it) and what others hold, plan again, make room if we can.

The plan is made again (``replan_soon``) when files come and go, when a pass ends
(its outputs written: it no longer needs a copy) and when the listing shows what
other uploads hold. While the whole library fits, nothing is planned per file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from mediasync.config import Config
from mediasync.gemini import ApiError
from mediasync.gemini.quota import violations
from mediasync.remote.context import RemoteContext
from mediasync.remote.refresh import record_usage
from mediasync.rules import budget
from mediasync.rules.units import human_bytes
from mediasync.store import Meta, Store

log = logging.getLogger("mediasync")

REPLAN_EVERY = 0.5  # seconds between two plans at least (more when a plan takes long)
WAIT_CHECK = 30.0  # a wait for room looks again this often, whatever it was told
LIST_EVERY = 60.0  # a full store lists the remote files at most this often
USED_FRESH = 2.0  # our bytes in the store are summed again after this, or when room frees


def store_size(store: Store) -> int:
    return budget.store_size(store.read(Meta.STORE_SIZE))


def others_bytes(store: Store) -> int:
    return budget.others_bytes(store.read(Meta.STORE_USAGE))


def limit_of(store: Store, config: Config) -> int:
    """The bytes this instance may hold now (rules/budget.py limit)."""
    return budget.limit(config, store.read(Meta.STORE_SIZE), store.read(Meta.STORE_USAGE))


class StoreBudget:
    def __init__(
        self,
        ctx: RemoteContext,
        *,
        config: Callable[[], Config],
        busy: Callable[[str], bool],
        delete_doomed: Callable[[list[str]], Awaitable[None]],
        on_kept: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``on_kept(shas)``: contents the plan keeps now and that have no live copy
        (a copy made room earlier, or lapsed): the engine looks at their files again."""
        self.ctx = ctx
        self._on_kept = on_kept
        self._config = config
        self._busy = busy
        self._delete_doomed = delete_doomed
        self.kept: frozenset[str] | None = None  # None: every copy is kept (it all fits)
        self._holdings: list[budget.Holding] | None = None
        self._in_use: Counter[str] = Counter()
        self._held: Counter[str] = Counter()  # bytes reserved per content being uploaded
        self._waiting: Counter[str] = Counter()  # contents waiting in room()
        self._deleting: dict[str, int] = {}  # replaced copies not deleted yet: bytes
        self._cond: asyncio.Condition | None = None
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self.evicted = 0  # copies deleted to make room (for benchmarks and tests)
        # (monotonic time, bytes of our copies, the part of it that the uploads holding
        # room then had made): summed once for many uploads, not once per upload
        self._sums: tuple[float, int, int] | None = None
        # Bytes of the rooms let go since that sum: their copies may have gone live
        # since, so they still count (an upper bound) until the next sum.
        self._released = 0
        self._listed_at = float("-inf")

    # -- the plan ---------------------------------------------------------------
    def keeps(self, sha: str) -> bool:
        return self.kept is None or sha in self.kept

    def limit(self) -> int:
        return limit_of(self.ctx.store, self._config())

    def replan(self) -> None:
        """Plan which copies are kept alive, now."""
        self._dirty = False
        store, config = self.ctx.store, self._config()
        limit = self.limit()
        before, known = self.kept, self._holdings
        if store.library_fits(limit):
            self.kept, self._holdings = None, None  # it all fits: no plan per file
        else:
            kept, hs = budget.kept(store.all_paths(), store.outputs_by_path(), config, limit)
            if kept is not None and kept != self.kept:
                log.info("storage budget %s: keeping %d of %d copies alive",
                         human_bytes(limit), len(kept), len(hs))
            self.kept, self._holdings = kept, (hs if kept is not None else None)
        if before is not None and self.kept != before and self._on_kept is not None:
            # Kept now, outside the plan before: its copy may have lapsed or made room.
            now_kept = self.kept if self.kept is not None else {h.sha for h in known or ()}
            live = {sha for sha, copy, _ in store.copies_held(self.ctx.clock()) if copy}
            back = sorted(now_kept - before - live)
            if back:
                self._on_kept(back)
        self._wake()

    def settle(self) -> None:
        """Plan now if a plan is due (`sync` before it ends: the kept copies come back)."""
        if self._dirty:
            if self._task is not None:
                self._task.cancel()
            self.replan()

    def replan_soon(self) -> None:
        """Plan again shortly: several changes in a row make one plan."""
        self._dirty = True
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._replanner(),
                                                                    name="storage budget")
            except RuntimeError:  # no loop (a command outside the daemon): plan now
                self._dirty = False
                self.replan()

    async def _replanner(self) -> None:
        while self._dirty:
            self._dirty = False
            started = time.monotonic()
            self.replan()
            # A plan of 100,000 files takes a while: never more than a fifth of the time.
            await asyncio.sleep(max(REPLAN_EVERY, 4 * (time.monotonic() - started)))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- copies in use, room for uploads ------------------------------------------
    @asynccontextmanager
    async def using(self, sha: str) -> AsyncIterator[None]:
        self._in_use[sha] += 1
        try:
            yield
        finally:
            self._in_use[sha] -= 1
            if self._in_use[sha] <= 0:
                del self._in_use[sha]
            self.replan_soon()  # its outputs may be written: it may need no copy now
            self._wake(resum=False)  # no room freed; a wait for a copy in use may end

    def _used(self, now: float, *, exact: bool = False) -> int:
        """This instance's bytes in the store, uploads under way included: at most
        that (an upload finished since the last sum counts as live, failed or not),
        exactly with ``exact``. Summing is a scan of every content row: once per
        admission it made a first sync of 100,000 files slow down as it went."""
        sums = self._sums
        if exact or sums is None or time.monotonic() - sums[0] > USED_FRESH:
            # Freed room clears this at once (_wake); what it misses meanwhile is room
            # freed by expiry or by others, so it errs on the full side.
            total, making = self.ctx.store.held_bytes(now, list(self._held))
            sums = self._sums = (time.monotonic(), total, making)
            self._released = 0
        # An upload holding room counts by what it holds until it lets go, then by
        # what its copy may be.
        used = sums[1] - sums[2] + self._released
        if self._deleting:
            # A replaced copy holds its room until its deletion is done.
            doomed = self.ctx.store.still_doomed(list(self._deleting))
            self._deleting = {n: b for n, b in self._deleting.items() if n in doomed}
            used += sum(self._deleting.values())
        return used + sum(self._held.values())

    def deleting(self, name: str, size: int) -> None:
        """A renewal replaced this copy: it counts until it is deleted (until then the
        service counts it too, and the next upload admitted would be refused)."""
        self._deleting[name] = size
        self._sums = None

    @asynccontextmanager
    async def room(self, sha: str, size: int) -> AsyncIterator[None]:
        """Room for an upload of ``size`` bytes, held until the caller is done."""
        cond = self._condition()
        async with cond:
            self._waiting[sha] += 1
            try:
                await self._wait_for_room(cond, sha, size)
            finally:
                self._waiting[sha] -= 1
                if self._waiting[sha] <= 0:
                    del self._waiting[sha]
            self._held[sha] += size
        try:
            yield
        finally:
            self._held[sha] -= size
            if self._held[sha] <= 0:
                del self._held[sha]
            self._released += size
            self._wake(resum=False)

    async def _wait_for_room(self, cond: asyncio.Condition, sha: str, size: int) -> None:
        while True:
            limit, now = self.limit(), self.ctx.clock()
            if self._used(now) + size <= limit or self._used(now, exact=True) + size <= limit:
                break
            if await self._evict(1):
                continue
            if not self._held and not self._freeing(sha):
                # Nothing of ours will free anything: let the service decide (a
                # full store is then said plainly and waited for).
                log.debug("%s: over the storage budget with nothing to delete",
                          self.ctx.label(sha))
                break
            try:
                await asyncio.wait_for(cond.wait(), WAIT_CHECK)
            except TimeoutError:
                pass

    def _freeing(self, sha: str) -> bool:
        """Whether something of ours other than ``sha`` will free room once done: a
        replaced copy being deleted, a pass using a copy, or a copy outside the plan
        whose upload or renewal is under way (a renewal started before the plan
        dropped it), unless that one is itself waiting for room (two waiting on each
        other would wait for ever)."""
        if self._deleting or any(s != sha for s in self._in_use if self._holds_copy(s)):
            return True
        return any(s != sha and s not in self._waiting and not self.keeps(s) and self._busy(s)
                   for s, live, _ in self.ctx.store.copies_held(self.ctx.clock()) if live)

    def _holds_copy(self, sha: str) -> bool:
        c = self.ctx.store.get_content(sha)
        return c is not None and (c.remote_name is not None or c.next_name is not None)

    async def full(self, error: ApiError, size: int) -> None:
        """The service refused an upload of ``size`` bytes: its store is full. Learn
        its size and what others hold (so the budget is at most what is left), plan
        again and make what room can be made now. The caller then tries again through
        ``room``, which waits for copies in use to be done with, or goes on when
        nothing of ours can make room (then the service's answer is waited for)."""
        store, now = self.ctx.store, self.ctx.clock()
        for v in violations(error.details, error.message):
            if v.kind == "storage" and v.limit:
                if v.limit != store_size(store):
                    log.info("the service's file store holds %s", human_bytes(v.limit))
                store.write(Meta.STORE_SIZE, {"bytes": v.limit, "at": now})
        # Who holds the rest: one listing (at most one a minute), not a guess from our
        # own count, which uploads of ours under way make wrong.
        if now - self._listed_at >= LIST_EVERY:
            self._listed_at = now
            try:
                # A page at a time, keeping only what the count needs (a full store of
                # a large library lists 100,000 files).
                listing = [(f.name, f.display_name, f.size_bytes or 0)
                           async for page in self.ctx.client.file_pages() for f in page]
            except ApiError as e:
                log.warning("could not list the remote files: %s", e)
            else:
                record_usage(self.ctx, listing, store.known_remote_names(), now)
        self.replan()
        cond = self._condition()
        async with cond:
            while self._used(now) + size > self.limit() and await self._evict(1):
                pass

    async def _evict(self, n: int) -> int:
        """Delete up to ``n`` copies outside the plan that nothing uses; how many went."""
        store, now = self.ctx.store, self.ctx.clock()
        held = {sha: live for sha, live, _ in store.copies_held(now) if live}
        if not held:
            return 0
        hs = self._holdings
        if hs is None:  # everything was kept: rank them now
            hs = budget.holdings(store.all_paths(), store.outputs_by_path(), self._config())
        known = {h.sha for h in hs}
        # A copy no live file refers to (a rename in its grace, a lapsed leftover) first.
        strays = [budget.Holding(sha, size, False, False, 0, False)
                  for sha, size in held.items() if sha not in known]
        # While the whole library fits, every copy a folder keeps alive is kept.
        kept = self.kept if self.kept is not None else frozenset(h.sha for h in hs if h.wanted)
        order = [sha for sha in budget.evict_order(
            [*strays, *hs], kept, self._config().daemon.keep_first, self.limit())
            if sha in held]
        gone = 0
        in_jobs = store.copies_held_by_jobs()  # an open batch job reads them by URI
        for sha in order:
            if gone >= n:
                break
            if self._in_use.get(sha) or self._held.get(sha) or self._busy(sha) or (
                    sha in in_jobs):
                continue
            c = store.get_content(sha)
            if c is None or not c.remote_name:
                continue
            with store.transaction():
                store.doom(c.remote_name, "storage budget", now)
                store.copy_gone(sha, now)
            self._sums = None  # that room counts at once
            log.info("%s: its remote copy makes room (storage budget)", self.ctx.label(sha))
            try:
                await self._delete_doomed([c.remote_name])
            except ApiError as e:
                log.warning("could not delete %s yet: %s", c.remote_name, e)
            gone += 1
            self.evicted += 1
        return gone

    # -- waking those who wait for room --------------------------------------------
    def wake(self) -> None:
        """Something may have freed room (an upload or renewal let its content go)."""
        self._wake()

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    def _wake(self, *, resum: bool = True) -> None:
        if resum:
            self._sums = None  # room may have freed: sum again before the next admission
        cond = self._cond
        if cond is None:
            return

        async def notify() -> None:
            async with cond:
                cond.notify_all()

        try:
            asyncio.get_running_loop().create_task(notify())
        except RuntimeError:
            pass
