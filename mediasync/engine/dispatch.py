"""The reconciler: for each dirty path, compare what should be with what is and
take the next step. Events and timers only mark paths dirty (docs/architecture.md).

One asyncio thread. Blocking file work (stat, hashing, sidecar writes) runs in
worker threads; uploads and generations are bounded by semaphores; the client's
budgets pace requests by class (file operations; generation per model).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from mediasync.config import Config
from mediasync.engine.batcher import Batcher
from mediasync.engine.clockjump import WallJumps
from mediasync.engine.context import Context
from mediasync.engine.folders import Folders
from mediasync.engine.halt import Halt
from mediasync.engine.identify import Identifier
from mediasync.engine.model_watch import ModelWatch
from mediasync.engine.produce import Producer
from mediasync.engine.reconcile import Reconciler
from mediasync.engine.rest import Rest
from mediasync.engine.settle import Settle
from mediasync.engine.sweep import Sweeper
from mediasync.gemini import ApiError, GeminiClient
from mediasync.local.folderio import FolderIO
from mediasync.local.proxies import ProxyCache
from mediasync.media.proxy import Spec, wants_proxy
from mediasync.remote.mirror import ContentUnavailable, Mirror
from mediasync.rules.failures import classify
from mediasync.rules.rows import ContentRow
from mediasync.store import Meta, Store, is_damage

log = logging.getLogger("mediasync")

MAX_TASKS = 64  # paths reconciled at once; uploads/generations have their own bounds


def instance_id(store: Store) -> str:
    """This state directory's id in remote display names (made once, kept in ``meta``)."""
    value = store.read(Meta.INSTANCE_ID)
    if not value:
        value = secrets.token_hex(4)
        store.write(Meta.INSTANCE_ID, value)
    return value


class Engine:
    """The queue of dirty paths and its dispatcher; builds its parts and hands each
    what it uses (the context, this queue as ``Requeue``, sibling callables)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: GeminiClient,
        *,
        once: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        fs: FolderIO | None = None,
        on_copy: Callable[[float], None] | None = None,
        on_renewed: Callable[[], None] | None = None,
    ) -> None:
        ctx = self._ctx = Context.of(config, store, client, fs=fs, once=once, clock=clock,
                                     monotonic=monotonic)
        self.mirror = Mirror(
            client,
            store,
            renew_before=config.daemon.renew_before,
            upload_slots=ctx.live.upload_slots,
            clock=clock,
            sleep=sleep,
            fs=ctx.fs,
            instance=instance_id(store),
            keeps_alive=self._keeps_alive,
            on_copy=on_copy,  # told each new copy's expiry (the daemon's renewal timer)
            on_renewed=on_renewed,  # a fresh copy replaced one (the daemon's metrics)
            config=lambda: self._ctx.config,  # the storage budget's
            on_kept=self._look_again,  # kept again by the budget, and no copy: make one
            proxy_cache=ProxyCache(config.daemon.state_dir / "proxies"),
            proxy_spec=self._proxy_spec,  # upload = "original" | "proxy" | "auto"
        )
        self._halt = Halt(store)
        self._jumps = WallJumps(store, clock, monotonic)
        # the queue
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: dict[str, float] = {}  # asked for while running: when to look again
        self._wake = asyncio.Event()
        self._stopping = False
        self._noted: set[tuple[str, str]] = set()
        self._turns = 0
        self._idle_once = False  # the first pass over every file ended (a rebuild's too)
        self.damaged: str | None = None  # the state database is damaged: why; the queue stops
        # the parts, each given what it uses
        mirror = self.mirror
        self._settle = Settle(monotonic)
        self._rest = Rest(ctx, quiet=self._quiet)
        self._folders = Folders(ctx, self, at_rest=self._rest.settled)
        ctx.fs.on_recover = self._folders.folder_answers
        self._sweeper = Sweeper(ctx, busy=mirror.busy, retire=mirror.retire,
                                delete_doomed=mirror.delete_doomed, wake=self.wake)
        self._identify = Identifier(ctx, self, away=self._folders.away,
                                    forget_settle=self._settle.forget,
                                    sweep_grace=lambda: self._sweeper.grace)
        self._models = ModelWatch(ctx)
        self.batcher = Batcher(ctx, self, instance=instance_id(store), halt=self._halt,
                               renew=self._fresh_copy, sleep=sleep)
        self._batch_task: asyncio.Task[None] | None = None
        self._producer = Producer(ctx, self, self._halt, exists=self._identify.exists,
                                  jitter=lambda: mirror.jitter(),  # as the mirror's is then
                                  forget_copy=mirror.forget_copy,
                                  thinks=self._models.thinks, batch=self.batcher)
        self._reconciler = Reconciler(
            ctx, self, self._halt,
            take_stat=self._folders.take_stat,
            settle_wait=self._settle.wait,
            identify=self._identify.identify,
            gone=self._identify.gone,
            skip=self._identify.skip,
            ensure_copy=mirror.ensure,
            output=self._producer.output,
            keeps=self._keeps_path,
            using=mirror.using,
            replan=mirror.replan,
            too_long=self._producer.too_long_for_all,
        )

    # -- what the commands and the daemon read ---------------------------------
    @property
    def config(self) -> Config:
        return self._ctx.config

    @property
    def client(self) -> GeminiClient:
        return self._ctx.client

    @property
    def store(self) -> Store:
        return self._ctx.store

    @property
    def fs(self) -> FolderIO:
        return self._ctx.fs

    # -- configuration --------------------------------------------------------
    @property
    def halted(self) -> str | None:
        """Why API calls are halted (the key was refused), or None."""
        return self._halt.why

    @halted.setter
    def halted(self, value: str | None) -> None:
        self._halt.set(value)

    def reconfigure(self, config: Config, client: GeminiClient | None = None) -> None:
        """Take a reloaded config (SIGHUP); the caller rescans afterwards."""
        live = self._ctx.live
        live.reload(config)
        self.mirror.renew_before = config.daemon.renew_before
        self.mirror.upload_slots = live.upload_slots
        if client is not None:
            self.set_client(client)

    def _keeps_alive(self, sha: str) -> bool:
        """A content's copy is renewed while any of its files' folders keeps copies alive,
        and the storage budget keeps it (remote/budget.py)."""
        budget = self.mirror.budget
        if budget is not None and not budget.keeps(sha):
            return False
        config = self._ctx.config
        if config.all_kept_alive():  # the default: no lookup per content
            return True
        return any(config.keeps_alive(Path(p)) for p in self._ctx.store.live_paths_for(sha))

    def _proxy_spec(self, c: ContentRow, path: str) -> Spec | None:
        """The upload proxy this file's settings ask for (media/proxy.py), or None."""
        config = self._ctx.config
        mode = config.upload_mode(Path(path), c.kind)
        folder = config.folder_for(Path(path))
        prompts = folder.prompts_for(c.kind) if folder else ()
        # 360p only when every prompt of the file asks for low media resolution.
        low = bool(prompts) and all(
            config.knobs_for(Path(path), p).media_resolution == "low" for p in prompts)
        return wants_proxy(c.kind, c.size, mode, "low" if low else None)

    def _look_again(self, shas: list[str]) -> None:
        for sha in shas:
            for p in self._ctx.store.live_paths_for(sha):
                self.mark_dirty(p, event=False)

    def _keeps_path(self, path: str, sha: str) -> bool:
        """Whether this file's copy is made before its outputs and kept alive after."""
        budget = self.mirror.budget
        return (self._ctx.config.keeps_alive(Path(path))
                and (budget is None or budget.keeps(sha)))

    async def _fresh_copy(self, sha: str) -> ContentRow | None:
        """A new copy of a content now (a batch job must not outlive its copy)."""
        async with self.mirror.lock(sha):
            c = self._ctx.store.get_content(sha)
            if c is None:
                return None
            try:
                await self.mirror.make_copy(c)
            except ContentUnavailable:
                return None
            return self._ctx.store.get_content(sha)

    def set_client(self, client: GeminiClient) -> None:
        # `halted` stays until a call succeeds, so a still-bad key is logged once.
        self._ctx.live.client = client
        self.mirror.client = client

    # -- the queue ------------------------------------------------------------
    def mark_dirty(self, path: str, *, event: bool = True) -> None:
        """A hint that ``path`` may have changed (watcher thread hands it over here)."""
        if event:
            self._settle.event(path)
            self._folders.stale(path)
        self.schedule(path, self._ctx.monotonic())

    def schedule(self, path: str, due: float) -> None:
        if path in self._running:
            self._again[path] = min(due, self._again.get(path, due))
            return
        current = self._due.get(path)
        if current is not None and current <= due:
            return
        self._due[path] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, path))
        self._wake.set()

    def later(self, path: str, at_wall: float | None) -> None:
        """Look at a path again at a wall-clock time (retries), never in `sync`."""
        if self._ctx.once or at_wall is None:
            return
        self.schedule(path, self._ctx.monotonic() + max(0.0, at_wall - self._ctx.clock()))

    @property
    def turns(self) -> int:
        """How often the dispatcher went to sleep and woke: one that spins shows here."""
        return self._turns

    def _quiet(self, path: str) -> bool:
        """Nothing under way for ``path``: neither queued nor running nor settling."""
        return path not in self._due and path not in self._running and self._settle.quiet(path)

    @property
    def busy(self) -> bool:
        return bool(self._heap or self._running)

    async def run(self, *, until_idle: bool = False) -> None:
        """Dispatch due paths until stopped (or, with ``until_idle``, until nothing is left)."""
        if not until_idle and self._batch_task is None:
            self._batch_task = asyncio.create_task(self.batcher.run(), name="batch jobs")
        while not self._stopping and self.damaged is None:
            now = self._ctx.monotonic()
            while self._heap and self._heap[0][0] <= now and len(self._running) < MAX_TASKS:
                due, _, path = heapq.heappop(self._heap)
                if self._due.get(path) != due:
                    continue  # superseded by an earlier entry
                del self._due[path]
                self._running[path] = asyncio.create_task(self._process(path), name=path)
            # `sync` has no grace period: there the pass's renames must be seen first.
            if self.batcher.gathered and not self._running and (
                    not self._heap or self._heap[0][0] > now):
                await self.batcher.flush()  # out of work: gathered outputs go as jobs
                continue
            blocked = self._ctx.once and bool(self._running)
            sweep_in = self._sweeper.start_if_due(now, blocked=blocked)
            if until_idle and not self._heap and not self._running and not self._sweeper.running:
                await self.mirror.renewals.wait()
                self.mirror.settle_budget()  # the copies the budget keeps come back
                if not self._heap and not self._running:
                    self._first_idle()
                    return
            if not self._running and not (self._heap and self._heap[0][0] <= now):
                self._first_idle()
            timeout = None
            if self._heap and len(self._running) < MAX_TASKS:
                timeout = max(0.0, self._heap[0][0] - now)
            if sweep_in is not None:
                timeout = sweep_in if timeout is None else min(timeout, sweep_in)
            self._wake.clear()
            self._turns += 1
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        if self.damaged is not None:
            await self.stop()  # the other paths' steps would fail alike: end them now

    async def stop(self) -> None:
        """Stop taking work; in-flight steps are cancelled (their offsets are already recorded)."""
        self._stopping = True
        self._wake.set()
        self.mirror.renewals.cancel()
        if self.mirror.budget is not None:
            self.mirror.budget.stop()
        tasks = list(self._running.values())
        if self._batch_task is not None:
            tasks.append(self._batch_task)
        for t in tasks:
            t.cancel()
        tasks += self._sweeper.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def clock_check(self) -> float:
        """Seconds the wall clock stepped back since this was last asked (recorded retry
        times moved with it: engine/clockjump.py); 0.0 when it did not."""
        return self._jumps.taken()

    async def _process(self, path: str) -> None:
        try:
            self._jumps.check()  # before a retry time is compared with the wall clock
            await self._reconciler.reconcile(path)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if is_damage(e):
                # Every path would fail alike: stop, so the database is moved aside
                # and rebuilt (the daemon restarts on a new one; `sync` runs again).
                if self.damaged is None:
                    log.error("the state database is damaged: %s", e)
                self.damaged = str(e)
                return
            log.exception("unexpected error on %s; will look again later", path)
            self.later(path, self._ctx.clock() + 300)
        finally:
            self._running.pop(path, None)
            again = self._again.pop(path, None)
            if again is not None:
                self.schedule(path, again)
            self._wake.set()

    def _first_idle(self) -> None:
        """Nothing is due: every file found has been looked at once. A rebuilt
        database now knows them all; copies of ours it still does not know are
        leftovers again (ownership.plan_refresh)."""
        if self._idle_once:
            return
        if self._folders.unavailable:
            return  # its files are not met yet: their copies are not leftovers
        if not self.mirror.listed:
            return  # no listing read yet: its copies are not met yet either
        self._idle_once = True
        recovery = self._ctx.store.read(Meta.RECOVERY)
        if recovery.get("pending"):
            self._ctx.store.write(Meta.RECOVERY, {**recovery, "pending": False})
            log.info("the rebuilt state database has met every file again")

    # -- scans, sweeps and the remote listing ---------------------------------
    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found."""
        found = await self._folders.scan()
        self.mirror.replan()  # files came and went: plan the storage budget again
        return found

    def sweep_soon(self, delay: float) -> None:
        """Forget vanished paths and retire unneeded contents within ``delay`` seconds."""
        self._sweeper.soon(delay)
        self.wake()

    async def sweep(self) -> None:
        await self._sweeper.sweep()

    def wake(self) -> None:
        self._wake.set()

    async def refresh(self) -> bool:
        """Reconcile with the server's listing: vanished copies, orphans, renewals; and
        look up the configured models (a retired one is held before any generation).
        False when the listing could not be read."""
        try:
            if await self._models.look():
                await self.scan()
            vanished = await self.mirror.refresh()
            await self.mirror.delete_doomed()
        except ApiError as e:
            if classify(e) == "auth":
                self._halt(e)
            else:
                log.warning("could not list the remote files: %s", e)
            return False
        self.mirror.replan()  # the listing shows what other uploads hold
        if self._halt.why:
            log.info("the API key works again; resuming")
            self._halt.set(None)
            await self.scan()
        for sha in vanished:
            for p in self._ctx.store.live_paths_for(sha):
                self.mark_dirty(p, event=False)
        return True

    # -- problems: said once per path, or a halt of every API call -------------
    def note(self, key: str, what: str, msg: str, *args: object) -> None:
        """Log a problem once per path, not on every rescan."""
        if (key, what) not in self._noted:
            self._noted.add((key, what))
            log.warning(msg, *args)

    def halt(self, error: ApiError) -> None:
        """Halt every API call if ``error`` refused the key; else log it."""
        self._halt(error)
