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
from mediasync.engine.folders import Folders
from mediasync.engine.identify import Identifier
from mediasync.engine.produce import Producer
from mediasync.engine.reconcile import Reconciler
from mediasync.engine.settle import Settle
from mediasync.engine.sweep import Sweeper
from mediasync.gemini import ApiError, GeminiClient
from mediasync.local.folderio import FolderIO
from mediasync.remote.mirror import Mirror
from mediasync.rules.failures import classify
from mediasync.rules.rows import LocalFacts
from mediasync.store import Meta, Store

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
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        # Every file call that touches a watched folder goes through here (hung shares).
        self.fs = fs or FolderIO()
        self.once = once  # `sync`: no retries scheduled for later, vanished paths swept at once
        self.clock = clock
        self.monotonic = monotonic
        self.upload_slots = asyncio.Semaphore(config.daemon.max_uploads)
        self.generate_slots = asyncio.Semaphore(config.daemon.max_generations)
        self.mirror = Mirror(
            client,
            store,
            renew_before=config.daemon.renew_before,
            upload_slots=self.upload_slots,
            clock=clock,
            sleep=sleep,
            fs=self.fs,
            instance=instance_id(store),
            keeps_alive=self._keeps_alive,
            on_copy=on_copy,  # told each new copy's expiry (the daemon's renewal timer)
        )
        self._halted: str | None = None
        # A new process tries the key afresh; a key still refused halts again on its
        # first call. Without this, `status` would show a halt an earlier run left.
        store.write(Meta.HALTED, "")
        self.suffixes = config.sidecar_suffixes()
        self.settle = Settle(monotonic)
        self.scanned: dict[str, LocalFacts] = {}  # stat taken by the last scan
        self.folders = Folders(self)
        self.fs.on_recover = self.folders.folder_answers
        self.identify = Identifier(self)
        self.producer = Producer(self)
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: dict[str, float] = {}  # asked for while running: when to look again
        self._wake = asyncio.Event()
        self._stopping = False
        self.sweeper = Sweeper(self)
        self.reconciler = Reconciler(self)
        self._noted: set[tuple[str, str]] = set()

    # -- configuration --------------------------------------------------------
    @property
    def halted(self) -> str | None:
        """Why API calls are halted (the key was refused), or None."""
        return self._halted

    @halted.setter
    def halted(self, value: str | None) -> None:
        # One truth: every change writes through to the store `status` reads, so a
        # reload that clears the halt clears it there too.
        self._halted = value or None
        self.store.write(Meta.HALTED, value or "")

    def reconfigure(self, config: Config, client: GeminiClient | None = None) -> None:
        """Take a reloaded config (SIGHUP); the caller rescans afterwards."""
        self.config = config
        self.suffixes = config.sidecar_suffixes()
        self.mirror.renew_before = config.daemon.renew_before
        # New bounds for new work; steps holding a slot of the old ones finish as they are.
        self.upload_slots = asyncio.Semaphore(config.daemon.max_uploads)
        self.generate_slots = asyncio.Semaphore(config.daemon.max_generations)
        self.mirror.upload_slots = self.upload_slots
        if client is not None:
            self.set_client(client)

    def _keeps_alive(self, sha: str) -> bool:
        """A content's copy is renewed while any of its files' folders keeps copies alive."""
        if self.config.all_kept_alive():  # the default: no lookup per content
            return True
        return any(self.config.keeps_alive(Path(p)) for p in self.store.live_paths_for(sha))

    def set_client(self, client: GeminiClient) -> None:
        # `halted` stays until a call succeeds, so a still-bad key is logged once.
        self.client = client
        self.mirror.client = client

    # -- the queue ------------------------------------------------------------
    def mark_dirty(self, path: str, *, event: bool = True) -> None:
        """A hint that ``path`` may have changed (watcher thread hands it over here)."""
        if event:
            self.settle.event(path)
            self.scanned.pop(path, None)  # the scan's stat is stale now
        self.schedule(path, self.monotonic())

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
        if self.once or at_wall is None:
            return
        self.schedule(path, self.monotonic() + max(0.0, at_wall - self.clock()))

    @property
    def busy(self) -> bool:
        return bool(self._heap or self._running)

    async def run(self, *, until_idle: bool = False) -> None:
        """Dispatch due paths until stopped (or, with ``until_idle``, until nothing is left)."""
        while not self._stopping:
            now = self.monotonic()
            while self._heap and self._heap[0][0] <= now and len(self._running) < MAX_TASKS:
                due, _, path = heapq.heappop(self._heap)
                if self._due.get(path) != due:
                    continue  # superseded by an earlier entry
                del self._due[path]
                self._running[path] = asyncio.create_task(self._process(path), name=path)
            # `sync` has no grace period: there the pass's renames must be seen first.
            sweep_in = self.sweeper.start_if_due(now, blocked=self.once and bool(self._running))
            if until_idle and not self._heap and not self._running and not self.sweeper.running:
                await self.mirror.renewals.wait()
                if not self._heap and not self._running:
                    return
            timeout = None
            if self._heap and len(self._running) < MAX_TASKS:
                timeout = max(0.0, self._heap[0][0] - now)
            if sweep_in is not None:
                timeout = sweep_in if timeout is None else min(timeout, sweep_in)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop taking work; in-flight steps are cancelled (their offsets are already recorded)."""
        self._stopping = True
        self._wake.set()
        self.mirror.renewals.cancel()
        tasks = list(self._running.values())
        for t in tasks:
            t.cancel()
        tasks += self.sweeper.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _process(self, path: str) -> None:
        try:
            await self.reconciler.reconcile(path)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error on %s; will look again later", path)
            self.later(path, self.clock() + 300)
        finally:
            self._running.pop(path, None)
            again = self._again.pop(path, None)
            if again is not None:
                self.schedule(path, again)
            self._wake.set()

    # -- scans, sweeps and the remote listing ---------------------------------
    async def scan(self) -> int:
        """Queue every candidate file and every recorded path; returns files found."""
        return await self.folders.scan()

    def sweep_soon(self, delay: float) -> None:
        """Forget vanished paths and retire unneeded contents within ``delay`` seconds."""
        self.sweeper.soon(delay)
        self.wake()

    async def sweep(self) -> None:
        await self.sweeper.sweep()

    def wake(self) -> None:
        self._wake.set()

    async def refresh(self) -> None:
        """Reconcile with the server's listing: vanished copies, orphans, renewals."""
        try:
            vanished = await self.mirror.refresh()
            await self.mirror.delete_doomed()
        except ApiError as e:
            if classify(e) == "auth":
                self.halt(e)
            else:
                log.warning("could not list the remote files: %s", e)
            return
        if self.halted:
            log.info("the API key works again; resuming")
            self.halted = None
            await self.scan()
        for sha in vanished:
            for p in self.store.live_paths_for(sha):
                self.mark_dirty(p, event=False)

    # -- problems: said once per path, or a halt of every API call -------------
    def note(self, key: str, what: str, msg: str, *args: object) -> None:
        """Log a problem once per path, not on every rescan."""
        if (key, what) not in self._noted:
            self._noted.add((key, what))
            log.warning(msg, *args)

    def halt(self, error: ApiError) -> None:
        if classify(error) != "auth":
            log.error("unexpected API error: %s", error)
            return
        if not self.halted:
            self.halted = (
                f"the API key was refused ({error.reason or error.status}); "
                "fix it and reload (systemctl reload mediasync)"
            )
            log.error("%s", self.halted)
