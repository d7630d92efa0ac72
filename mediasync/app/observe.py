"""What the daemon shows and tells about itself (issue 19): a snapshot of `status` kept
fresh in the background, the HTTP endpoint that serves it (app/http.py), the
Prometheus registry and the notifications (app/notify.py).

The snapshot is read in a worker thread from a read-only connection of its own
(report/snapshot.py), only when the store changed, and no more often than keeps
that reading under ~5 % of the time (``pace``): 100,000 files take seconds to
decode, and neither requests nor the sync may wait for that. Off entirely when
neither ``[daemon] http`` nor ``[notify] urls`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from mediasync import __version__
from mediasync.app.notify import Notifications, Sender, deliver
from mediasync.app.traffic import TrafficCounter
from mediasync.config import Config, http_token
from mediasync.gemini.redact import register_secret
from mediasync.report import metrics, snapshot
from mediasync.report.snapshot import Snapshot
from mediasync.store import Meta, Store

if TYPE_CHECKING:
    from mediasync.app.http import Endpoint

log = logging.getLogger("mediasync")

TICK = 2.0  # how often the loop looks: store changed? notifications due?
MAX_AGE = 600.0  # a snapshot is read again after this even if nothing was written (times
# pass: a copy expires, a pause ends)
SHARE = 20  # wait at least this many times the last reading's duration between readings
MAX_PACE = 300.0  # …but never longer than this while the store changes
BEAT = 1.0  # the heartbeat that measures how late the loop runs


def pace(took: float) -> float:
    """Seconds between two readings of a changing store: about 5 % of one core."""
    return min(MAX_PACE, max(1.0, SHARE * took))


def check(config: Config, env: Mapping[str, str]) -> str | None:
    """The endpoint's token (or None); a ConfigError when an address beyond loopback
    has none. Called at start and before a reload is taken."""
    return http_token(config.daemon.http, config.daemon.http_token, env)


class Observer:
    def __init__(self, config: Config, store: Store, env: Mapping[str, str], *,
                 traffic: TrafficCounter | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store  # the daemon's: its change counter and meta, never a reading
        self.db = Path(store.path)
        self.env = env
        self.clock = clock
        self.traffic = traffic or TrafficCounter(clock)
        # Why API calls are halted: each a reason or None. The engine's refused key is
        # the first; another cause (a model missing) is one more entry.
        self.halt_reasons: list[Callable[[], str | None]] = []
        self.problem: str | None = None  # the endpoint could not start (the STATUS line)
        self.registry: CollectorRegistry = metrics.registry(
            self.current, self._traffic, clock)
        self._snap: Snapshot | None = None
        self._read_at = float("-inf")  # monotonic time of the last reading
        self._changes = -1
        self.readings = 0  # snapshots read since start (/metrics)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self.lag = 0.0
        self._beat_at = time.monotonic()
        self.endpoint: Endpoint | None = None
        self.notes: Notifications | None = None
        self.sender: Sender | None = None
        self._token = check(config, env)
        self._configure_notify(config)

    def _traffic(self) -> metrics.Traffic:
        self.traffic.traffic.readings = self.readings
        return self.traffic.traffic

    @property
    def enabled(self) -> bool:
        return self.config.daemon.http is not None or bool(self.config.notify.urls)

    # -- life -------------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled:
            return
        self._task = asyncio.create_task(self._loop(), name="observer")
        self._beat_task = asyncio.create_task(self._beat(), name="heartbeat")
        await self._start_endpoint()

    async def stop(self) -> None:
        for task in (self._task, self._beat_task):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, self._beat_task) if t),
                             return_exceptions=True)
        self._task = self._beat_task = None
        if self.endpoint is not None:
            await self.endpoint.stop()
            self.endpoint = None
        if self.sender is not None:
            self.sender.close()

    async def reconfigure(self, config: Config) -> None:
        """A reload: a new address or token restarts the endpoint; notifications follow."""
        old = self.config
        self._token = check(config, self.env)
        self.config = config
        if self.notes is None or config.notify != old.notify:
            if self.sender is not None:
                self.sender.close()
            self._configure_notify(config)
        was_on = self._task is not None
        if not self.enabled:
            await self.stop()
            self.problem = None
            return
        if not was_on:
            await self.start()
            return
        moved = (config.daemon.http, self._token) != (old.daemon.http, self._endpoint_token())
        if moved or self.endpoint is None:  # a port that was taken is tried again too
            if self.endpoint is not None:
                await self.endpoint.stop()
                self.endpoint = None
            await self._start_endpoint()
        self._read_at = float("-inf")  # folders may have changed: read again now
        self._wake.set()

    def _endpoint_token(self) -> str | None:
        return self.endpoint.token if self.endpoint is not None else None

    def _configure_notify(self, config: Config) -> None:
        n = config.notify
        self.notes = Notifications(n) if n.urls else None
        self.sender = Sender(n.urls, n.timeout) if n.urls else None
        if self.notes is not None:
            self.notes.restore(self.store.read(Meta.NOTIFIED))
        if n.urls and not log.isEnabledFor(logging.DEBUG):
            # Apprise logs each failed send itself; ours says it once (Sender.send).
            logging.getLogger("apprise").setLevel(logging.CRITICAL)

    async def _start_endpoint(self) -> None:
        listen = self.config.daemon.http
        self.problem = None
        if listen is None:
            return
        if self._token:
            register_secret(self._token)
        # aiohttp is loaded only when the endpoint is asked for (about 9 MiB otherwise idle).
        from mediasync.app.http import Endpoint

        endpoint = Endpoint(self, listen, self._token, self.clock)
        try:
            where = await endpoint.start()
        except OSError as e:
            # asyncio's own text repeats the address; the errno's words say it plainly
            reason = os.strerror(e.errno).lower() if e.errno else str(e)
            self.problem = f"status page off: cannot listen on {listen}: {reason}"
            log.error("daemon.http: cannot listen on %s: %s; syncing goes on without the "
                      "status page, /metrics and /healthz", listen, reason)
            return
        self.endpoint = endpoint
        url = where if where.startswith("unix:") else f"http://{where}/"
        log.info("status page, /metrics and /healthz on %s%s", url,
                 " (token required)" if self._token else "")

    # -- the snapshot -------------------------------------------------------------
    def current(self, *, fresh: bool = False) -> Snapshot:
        """The last snapshot (an empty one before the first). ``fresh``: a request
        wants one; when the store changed since and the pace allows, one is read in
        the background. Never waits."""
        if fresh and self._stale():
            self._wake.set()
        return self._snap if self._snap is not None else snapshot.empty(self.config,
                                                                          self.clock())

    def states(self) -> dict[str, int] | None:
        """Files per state from the last snapshot, for the STATUS line (None while there
        is none, or when the observer is off): the daemon then decodes nothing itself."""
        if self._snap is None or self._task is None:
            return None
        return self._snap.counts()

    def _stale(self) -> bool:
        age = time.monotonic() - self._read_at
        if self._snap is None or age >= max(MAX_AGE, pace(self._snap.took)):
            return True
        return self.store.changes != self._changes and age >= pace(self._snap.took)

    async def refresh(self) -> Snapshot:
        """Read the store now (in a thread) and keep the result."""
        changes, config = self.store.changes, self.config
        self._read_at = time.monotonic()
        snap = await asyncio.to_thread(snapshot.build, self.db, config, self.clock())
        self._snap, self._changes = snap, changes
        self.readings += 1
        return snap

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
            self._wake.clear()
            try:
                if self._stale():
                    await self.refresh()
                await self._notify()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A reading that failed (the store busy past its time-out, a bug) is
                # tried again next tick; the page shows the last good one meanwhile.
                log.exception("reading the status for the page and notifications failed")

    async def _notify(self) -> None:
        if self.notes is None or self.sender is None or self._snap is None:
            return
        await deliver(self.notes, self.sender, self._snap, self.clock)
        if self.notes.changed:
            self.store.write(Meta.NOTIFIED, self.notes.told())

    # -- health -------------------------------------------------------------------
    async def _beat(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(BEAT)
            self._beat_at = time.monotonic()
            self.lag = max(0.0, self._beat_at - start - BEAT)

    def health(self) -> dict[str, Any]:
        """/healthz: 503 while halted (a general reason string, one per cause)."""
        now = self.clock()
        reasons = [r for r in (f() for f in self.halt_reasons) if r]
        t = self.traffic.traffic
        snap = self._snap
        return {
            "healthy": not reasons,
            "status": "halted" if reasons else "ok",
            "halted": "; ".join(reasons) or None,
            "reasons": reasons,
            "loop": {"alive": True, "lag_seconds": round(self.lag, 3),
                     "last_beat_seconds_ago": round(time.monotonic() - self._beat_at, 3)},
            "last_api_success": t.last_api_success,
            "last_api_success_seconds_ago": (round(now - t.last_api_success, 1)
                                             if t.last_api_success else None),
            "last_listing": t.last_listing,
            "snapshot_age_seconds": round(now - snap.taken_at, 1) if snap else None,
            "endpoint_problem": self.problem,
            "version": __version__,
        }
