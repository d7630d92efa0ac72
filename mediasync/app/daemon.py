"""Wiring: the engine, the watcher, the scheduler's jobs, signals and sd_notify.

No business logic here: ``run`` keeps the engine fed until SIGTERM (the one-pass
``sync`` is ``commands/sync.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mediasync.app.apiclient import held_lines, make_budgets, make_client, pause_lines
from mediasync.app.instance import InstanceLocked, instance_lock, state_dir
from mediasync.app.logs import setup_logging
from mediasync.app.observe import Observer, check
from mediasync.app.sdnotify import Notifier
from mediasync.app.statedir import StateGuard, open_state
from mediasync.app.traffic import TrafficCounter
from mediasync.app.watch import Watcher
from mediasync.config import Config, ConfigError, load_config
from mediasync.engine.dispatch import Engine
from mediasync.gemini import (
    ApiError,
    GeminiClient,
)
from mediasync.report import status
from mediasync.rules.states import renew_at
from mediasync.store import is_damage

log = logging.getLogger("mediasync")

CLOSE_AFTER = 900.0  # a replaced HTTP client is closed when its requests end, or after this
STATUS_EVERY = 30.0  # at most this long between recounts of the STATUS line
STATE_CHECK_EVERY = 5.0  # seconds between looks at the lock file and the database file
RESTART_CALM = 600.0  # a rebuilt database that served this long was no disk going bad
RESTART_WAIT_MAX = 300.0  # the longest wait before starting again on a new database
# A listing that failed is read again this soon, not refresh_every hours later: a
# rebuilt database uploads nothing until it has read one (remote/adopt.py).
REFRESH_AGAIN = 120.0


def _quiet(job: Callable[[], Awaitable[None]], what: str,
           damaged: Callable[[str], None]) -> Callable[[], Awaitable[None]]:
    """A scheduler job that ends in one log line, never in APScheduler's traceback:
    a time-out is said plainly, and a job cut off by shutdown ends silently; a
    damaged state database is handed to ``damaged``."""

    async def run() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            return  # SIGTERM while it ran: the stop is under way, nothing went wrong
        except TimeoutError:
            log.warning("the %s timed out; it runs again at its next turn", what)
        except Exception as e:
            if not is_damage(e):
                raise
            damaged(str(e))

    run.__name__ = run.__qualname__ = f"{what} job"
    return run


RENEW_CHECK_MAX = 600.0  # the expiry times are read again at least this often (no API call)


def renew_check_delay(due: float | None, now: float) -> float:
    """Seconds until the renewal check: when the next copy's window opens, but not
    later than RENEW_CHECK_MAX (a copy made meanwhile) nor sooner than a second."""
    if due is None:
        return RENEW_CHECK_MAX
    return max(1.0, min(RENEW_CHECK_MAX, due - now))


class RenewalTimer:
    """Wakes when the next recorded copy enters its renewal window, or in 10 minutes.

    Renewals come from the expiry times the service gave, not from the listing
    (every `refresh_every`, hours apart), so an idle library is renewed in time.
    """

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self._at = 0.0

    def plan(self) -> None:
        """Plan the next check (at start-up and on reload)."""
        self._next()

    def _next(self) -> None:
        self._check_at(self.d.engine.mirror.renewals.next_at())

    def _check_at(self, due: float | None) -> None:
        now = time.time()
        self._at = now + renew_check_delay(due, now)
        self.d.scheduler.add_job(_quiet(self._renew, "renewal check", self.d.restart),
                                 "date", id="renew",
                                 replace_existing=True,
                                 run_date=datetime.fromtimestamp(self._at, UTC))

    def copy_made(self, expires_at: float) -> None:
        """A new copy: check sooner if its window opens before the planned check
        (none is planned before start-up's plan(), which reads every expiry)."""
        due = renew_at(expires_at, self.d.config.daemon.renew_before)
        if due < self._at:
            self._check_at(due)

    async def _renew(self) -> None:
        engine = self.d.engine
        try:
            if engine.halted:
                await self.d.refresh_job()  # a fixed key file is noticed within 10 minutes
                return
            started = engine.mirror.renewals.due()
            if started:
                log.info("renewing %d remote copies before they expire", started)
            try:
                await engine.mirror.delete_doomed()  # leftovers of failed deletes
            except ApiError as e:
                engine.halt(e)
        finally:
            self._next()


class Daemon:
    """`mediasync run`: watch, reconcile, renew, until SIGTERM."""

    def __init__(self, config: Config, config_path: Path | None, env: Mapping[str, str]) -> None:
        self.config = config
        self.config_path = config_path
        self.env = env
        self.notifier = Notifier.from_env(env)
        self._stop = asyncio.Event()
        self._rescan_pending = False
        self._list_again_at: float | None = None  # a failed listing is read again then
        self._long_lived: set[asyncio.Future[object]] = set()  # never waited for on reload
        self._closing: set[asyncio.Task[None]] = set()  # replaced clients, closed when idle
        self.renewal_timer = RenewalTimer(self)
        self._reopen: str | None = None  # the state database is damaged: restart on a new one
        self._quit = False  # SIGTERM or SIGINT: no restart on a new database either
        self._stolen: str | None = None  # another mediasync took the state directory
        # (store changes, monotonic time, seconds it took, files per state); see _states
        self._state_cache: tuple[int, float, float, dict[str, int]] | None = None

    async def run(self) -> int:
        directory = state_dir(self.config, self.env)
        check(self.config, self.env)  # a bad [daemon] http is a config error, before anything
        with instance_lock(directory) as lock:
            damaged: str | None = None
            quick = 0  # restarts in a row that each came soon after the last
            while True:  # once, unless the database is found damaged while serving
                started = time.monotonic()
                self.store = open_state(directory, damaged=damaged)
                self.guard = StateGuard(lock, self.store)
                self.budgets = make_budgets(self.config, self.store)
                self.traffic = TrafficCounter()  # /metrics and /healthz count the API traffic
                client = make_client(self.config, self.env, store=self.store,
                                     budgets=self.budgets, event_hooks=self.traffic.hooks())
                self.engine = Engine(self.config, self.store, client,
                                     on_copy=self.renewal_timer.copy_made,
                                     on_renewed=self.traffic.renewed)
                self.observer = Observer(self.config, self.store, self.env,
                                         traffic=self.traffic)
                self.observer.halt_reasons.append(lambda: self.engine.halted)
                try:
                    await self.observer.start()  # /healthz answers during the start-up scan
                    code = await self._serve()
                finally:
                    await self.observer.stop()
                    for t in self._closing:
                        t.cancel()  # each closes its client when cancelled
                    await asyncio.gather(*self._closing, return_exceptions=True)
                    await self.engine.client.aclose()
                    self.store.close()
                if self._stolen:
                    raise InstanceLocked(self._stolen)
                damaged, self._reopen = self._reopen, None
                if damaged is None or self._quit:
                    return code
                self._stop.clear()
                self._state_cache = None
                # Damaged again soon after a rebuild: a disk going bad. Each start lists
                # the remote side, so wait longer each time (SIGTERM still stops at once).
                quick = quick + 1 if time.monotonic() - started < RESTART_CALM else 0
                if quick > 1:
                    delay = min(RESTART_WAIT_MAX, 5.0 * 2 ** (quick - 2))
                    log.warning("the state database was damaged again within %.0f s; "
                                "starting again in %.0f s", RESTART_CALM, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
                    if self._quit:
                        return 0
                    self._stop.clear()

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.terminate)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        me = asyncio.current_task()
        if me is not None:
            self._long_lived.add(me)
        # Start-up waits on folders (watch set-up, walks) at their time-outs; SIGTERM
        # meanwhile ends it at once.
        startup = asyncio.gather(self._start_watcher(), self.refresh_job(), self.engine.scan())
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not startup.done():
            startup.cancel()
            await asyncio.gather(startup, return_exceptions=True)
            if hasattr(self, "watcher"):
                self.watcher.stop()
            await self.engine.stop()
            return 0
        stop.cancel()
        try:
            _, _, found = startup.result()
        except Exception as e:
            if not is_damage(e):
                raise
            self.restart(str(e))
            self.watcher.stop()
            await self.engine.stop()
            return 0
        log.info("watching %d folder(s), %d media file(s)", len(self.config.folders), found)
        dispatcher = asyncio.create_task(self.engine.run(), name="engine")
        self._long_lived.add(dispatcher)
        self.scheduler = AsyncIOScheduler(event_loop=loop)
        self._schedule_jobs()
        self.scheduler.start()
        ticker = asyncio.create_task(self._ticker(), name="state check")
        self._long_lived.add(ticker)
        self.notifier.ready(self.status_line())
        await self._stop.wait()
        ticker.cancel()
        if self._reopen is not None:
            log.error("the state database is damaged (%s); starting again on a new one",
                      self._reopen)
        else:
            log.info("stopping: finishing nothing new, recording upload offsets")
            self.notifier.stopping()
        self.scheduler.shutdown(wait=False)
        self.watcher.stop()
        await self.engine.stop()
        dispatcher.cancel()
        await asyncio.gather(dispatcher, return_exceptions=True)
        return 0

    async def _start_watcher(self) -> None:
        loop = asyncio.get_running_loop()
        self.watcher = Watcher(
            self.config.folders,
            self.config.sidecar_suffixes(),
            loop,
            self.engine.mark_dirty,
            self.request_rescan,
            fs=self.engine.fs,
        )
        for problem in await self.watcher.start():
            log.error("%s; relying on the periodic rescan", problem)

    def _schedule_jobs(self) -> None:
        d = self.config.daemon
        opts = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self.scheduler.add_job(_quiet(self.rescan, "rescan", self.restart), "interval",
                               seconds=d.rescan_every, id="rescan", replace_existing=True, **opts)
        self.scheduler.add_job(_quiet(self.refresh_job, "refresh", self.restart), "interval",
                               seconds=d.refresh_every, id="refresh", replace_existing=True,
                               **opts)
        self.scheduler.add_job(_quiet(self._health, "health check", self.restart), "interval",
                               seconds=5, id="health", replace_existing=True, **opts)
        self.renewal_timer.plan()
        self._plan_list_again()  # the start-up listing failed
        if self.notifier.watchdog_interval:
            self.scheduler.add_job(self.notifier.watchdog, "interval",
                                   seconds=self.notifier.watchdog_interval, id="watchdog",
                                   replace_existing=True, **opts)

    # -- jobs (each bounded so a stuck request cannot block the scheduler) ------
    async def rescan(self) -> None:
        """Walk every folder again (the periodic job, and after a watch was re-armed)."""
        # No time-out of its own: every file call of a scan is bounded (a walk of a
        # large share may take folders.WALK_TIMEOUT), and cutting it short would
        # throw the whole walk away, every time.
        self._rescan_pending = False
        await self.engine.scan()

    async def refresh_job(self) -> None:
        if self.engine.halted:
            await self._retry_key()
        try:
            listed = await asyncio.wait_for(self.engine.refresh(), timeout=300)
        except TimeoutError:
            log.warning("listing the remote files timed out; will try again")
            listed = False
        if not listed and not self.engine.halted:  # a refused key is tried by its timer
            self._list_again_at = time.time() + REFRESH_AGAIN
            if getattr(self, "scheduler", None) is not None:  # else _schedule_jobs plans it
                self._plan_list_again()

    def _plan_list_again(self) -> None:
        if self._list_again_at is None:
            return
        self.scheduler.add_job(
            _quiet(self.refresh_job, "refresh", self.restart), "date", id="refresh-again",
            replace_existing=True, run_date=datetime.fromtimestamp(self._list_again_at, UTC))
        self._list_again_at = None

    async def _health(self) -> None:
        if not await self.watcher.healthy():
            log.error("a folder watcher stopped or lost its folder; re-arming it and rescanning")
            self.watcher.stop()
            await self._start_watcher()
            self.request_rescan("watcher restarted")
        self.notifier.status(self.status_line())

    async def _ticker(self) -> None:
        """Every few seconds by the monotonic clock (the scheduler plans by the wall
        clock, which may step): the wall clock, the lock and the database file."""
        check = _quiet(self._check_state, "state check", self.restart)
        while True:
            await asyncio.sleep(STATE_CHECK_EVERY)
            try:
                await check()
            except Exception:  # a bug must not end the checks for the rest of the run
                log.exception("the state check failed; it runs again in %.0f s",
                              STATE_CHECK_EVERY)

    async def _check_state(self) -> None:
        """The lock file and the database file are still ours (app/statedir.py); a
        wall clock that stepped back delays no job (they are planned again from now)."""
        if self.engine.clock_check():
            self._schedule_jobs()
        stolen = self.guard.check()
        if stolen is not None:
            log.error("%s", stolen)
            self._stolen = stolen
            self._stop.set()
        elif self.engine.damaged is not None:
            self.restart(self.engine.damaged)

    def terminate(self) -> None:
        """SIGTERM or SIGINT: stop, and start no new database after a damaged one."""
        self._quit = True
        self._stop.set()

    def restart(self, why: str) -> None:
        """The state database is damaged: stop serving, move it aside, start again."""
        if self._reopen is None:
            self._reopen = why
        self._stop.set()

    def request_rescan(self, why: str) -> None:
        if self._rescan_pending:
            return
        self._rescan_pending = True
        log.info("rescanning: %s", why)
        # A short delay lets a burst of directory events collapse into one scan.
        # Quiet as the periodic rescan: damage found by it restarts on a new database.
        rescan = _quiet(self.rescan, "rescan", self.restart)
        asyncio.get_running_loop().call_later(1.0, lambda: asyncio.ensure_future(rescan()))

    async def _retry_key(self) -> None:
        """Re-read the key (the key file may have been fixed) before the next try."""
        try:
            client = make_client(self.config, self.env, store=self.store, budgets=self.budgets,
                                 event_hooks=self.traffic.hooks())
        except ConfigError as e:
            log.debug("%s", e)  # still missing: stay halted; already said why
            return
        old = self.engine.client
        self.engine.set_client(client)
        self._close_when_idle(old)

    async def reload(self) -> None:
        """SIGHUP: read the config again without a restart; keep the old one if it is bad."""
        self.notifier.reloading(time.monotonic_ns() // 1000)
        try:
            if self.config_path is None:
                raise ValueError("no config file to reload")
            config = load_config(self.config_path)
            # New limits apply; pauses the service imposed stay (they are facts, not config).
            budgets = make_budgets(config, self.store)
            budgets.restore(self.budgets.active_pauses())
            client = make_client(config, self.env, store=self.store, budgets=budgets,
                                 event_hooks=self.traffic.hooks())
            check(config, self.env)
        except Exception as e:
            log.error("reload failed, keeping the running config: %s", e)
            self.notifier.ready(self.status_line())
            return
        old_client, old_config = self.engine.client, self.config
        self.config = config
        self.budgets = budgets
        self.engine.reconfigure(config, client)
        self.engine.halted = None  # a new config deserves a fresh try
        self._close_when_idle(old_client)
        self._apply_restart_only(old_config, config)
        await self.observer.reconfigure(config)
        self.watcher.stop()
        await self._start_watcher()
        self._schedule_jobs()
        # The listing too: a reload is how an owner says "look again now" (after a
        # purge, say), and the next scheduled one may be hours away.
        await asyncio.gather(self.refresh_job(), self.engine.scan())
        log.info("reloaded %s", self.config_path)
        self.notifier.ready(self.status_line())

    def _apply_restart_only(self, old: Config, new: Config) -> None:
        """Settings a reload cannot apply in place: the log level is, the rest is said."""
        if new.daemon.log_level != old.daemon.log_level:
            setup_logging(new.daemon.log_level, env=self.env)
        if new.daemon.state_dir != old.daemon.state_dir:
            log.warning("daemon.state_dir changed; it takes effect after a restart "
                        "(systemctl restart mediasync)")

    def _close_when_idle(self, client: GeminiClient) -> None:
        """Close a replaced client once every task that may be using it has ended.

        Requests in flight (an upload, a generation, a renewal, a listing) finish on
        the old client; new ones already go to the new one.
        """
        me = asyncio.current_task()
        users = {t for t in asyncio.all_tasks() if t is not me and t not in self._long_lived}
        users -= self._closing

        async def close() -> None:
            try:
                if users:
                    await asyncio.wait(users, timeout=CLOSE_AFTER)
            finally:
                await client.aclose()

        task = asyncio.create_task(close(), name="close replaced client")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def status_line(self) -> str:
        halted = self.engine.halted
        why = "; ".join(filter(None, [halted, *held_lines(self.budgets),
                                      *pause_lines(self.budgets, self.engine.client),
                                      self.observer.problem])) or None
        return status.status_line(len(self.config.folders), self._states(), why)

    def _states(self) -> dict[str, int]:
        """Files per state, from `status`'s own decoder. Decoding every file costs
        about 40 ms per 1,000 on the event loop: it is redone only when the store
        changed, and no more often than keeps it under 1 % of the loop's time."""
        observed = self.observer.states()  # the status page's reading, when it runs
        if observed is not None:
            return observed
        changes, now = self.store.changes, time.monotonic()
        cached = self._state_cache
        if cached is not None:
            last_changes, last_at, took, states = cached
            if last_changes == changes or now - last_at < min(STATUS_EVERY, 100 * took):
                return states
        states = status.counts(status.each(self.store, self.config))  # one file at a time
        self._state_cache = (changes, now, time.monotonic() - now, states)
        return states
