"""Notifications through Apprise (issue 19): what to send, when, and the sending.

``Notifications.observe`` is the decision, pure but for its memory: each snapshot's
conditions (report/alerts.py) against what was already told. A subject (a file, a
folder, a model) is told once when its condition appears, and again only after it
cleared. New subjects of one event are gathered until they stop coming (``notify.gather``)
or ten times that at most, and an event is told at most once per ``hold``: a
thousand failures make one message with a count, never a thousand messages.

``Sender`` sends off the event loop (Apprise blocks) with a time-out, to each URL
on its own. A message that reached one of them is done (a service that was down
misses it, rather than the others getting it again every few minutes); one that
reached none is kept and tried again. A service that is down is logged once, and
the daemon never waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from mediasync.config import NotifyConfig, describe_url
from mediasync.report import alerts
from mediasync.report.snapshot import Snapshot

log = logging.getLogger("mediasync")

MAX_GATHER = 10  # new subjects of an event are gathered until none came for
# notify.gather, or this many times notify.gather at most
HOLD = 600.0  # an event is told at most this often
RETRY = 300.0  # a message that could not be sent is tried again after this
LISTED = 10  # subjects named in one message; the rest are counted


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    body: str
    subjects: tuple[str, ...] = ()


def digest(subject: str) -> str:
    """What is remembered of a told subject (a path may be long; 100,000 may fail)."""
    return hashlib.blake2b(subject.encode("utf-8", "surrogateescape"),
                           digest_size=8).hexdigest()


@dataclass
class _Event:
    told: set[str] = field(default_factory=set)  # digests of subjects already sent
    since: dict[str, float] = field(default_factory=dict)  # subject → first seen true
    pending: dict[str, str] = field(default_factory=dict)  # subject → line, to send
    first_pending: float = 0.0
    last_new: float = 0.0
    sent_at: float = float("-inf")


class Notifications:
    def __init__(self, config: NotifyConfig, *, hold: float = HOLD) -> None:
        self.config = config
        self.quiet, self.max_gather = config.gather, MAX_GATHER * config.gather
        self.hold = hold
        self._events: dict[str, _Event] = {}
        self._summary_day: str | None = None
        self.changed = False  # told sets changed since told() was last read

    def restore(self, told: object) -> None:
        """What an earlier run already sent (Meta.NOTIFIED): not sent again."""
        if not isinstance(told, dict):
            return
        for event, digests in told.items():
            if isinstance(digests, list):
                self._event(str(event)).told = {str(d) for d in digests}

    def told(self) -> dict[str, list[str]]:
        self.changed = False
        return {e: sorted(s.told) for e, s in self._events.items() if s.told}

    def _event(self, name: str) -> _Event:
        return self._events.setdefault(name, _Event())

    def observe(self, snap: Snapshot, now: float) -> list[Message]:
        """The messages due now. Call ``sent(message, now)`` once one is delivered."""
        out = []
        for event, conds in alerts.conditions(snap, self.config.on).items():
            st = self._event(event)
            self._track(event, st, conds, now)
            if st.pending and self._due(st, now):
                out.append(self._message(event, st))
        summary = self._summary(snap, now)
        if summary is not None:
            out.append(summary)
        return out

    def _track(self, event: str, st: _Event, conds: dict[str, str], now: float) -> None:
        after = self.config.unavailable_after if event == "folder_unavailable" else 0.0
        for subject in [s for s in st.since if s not in conds]:
            del st.since[subject]  # cleared: told again if it comes back
        for subject in [s for s in st.pending if s not in conds]:
            del st.pending[subject]  # healed before it was told
        live = {digest(s) for s in conds}
        if st.told - live:
            st.told &= live
            self.changed = True
        for subject, line in conds.items():
            seen = st.since.setdefault(subject, now)
            if subject in st.pending or now - seen < after or digest(subject) in st.told:
                continue
            if not st.pending:
                st.first_pending = now
            st.pending[subject] = line
            st.last_new = now

    def _due(self, st: _Event, now: float) -> bool:
        gathered = now - st.last_new >= self.quiet or now - st.first_pending >= self.max_gather
        return gathered and now - st.sent_at >= self.hold

    def _message(self, event: str, st: _Event) -> Message:
        subjects = tuple(st.pending)
        lines = [st.pending[s] for s in subjects[:LISTED]]
        if len(subjects) > LISTED:
            lines.append(f"… and {len(subjects) - LISTED:,} more: see `mediasync status` or "
                         "the status page")
        return Message(event, f"mediasync: {alerts.title(event, len(subjects))}",
                       "\n".join(lines), subjects)

    def sent(self, message: Message, now: float) -> None:
        if message.event == "daily_summary":
            return
        st = self._event(message.event)
        st.sent_at = now
        for s in message.subjects:
            st.pending.pop(s, None)
            st.told.add(digest(s))
        self.changed = True

    def failed(self, message: Message, now: float) -> None:
        """Not delivered: the subjects stay pending, tried again after RETRY."""
        if message.event == "daily_summary":
            self._summary_day = None
            return
        self._event(message.event).sent_at = now - self.hold + RETRY

    def _summary(self, snap: Snapshot, now: float) -> Message | None:
        if "daily_summary" not in self.config.on:
            return None
        local = datetime.fromtimestamp(now)
        day = local.strftime("%Y-%m-%d")
        h, m = self.config.summary_at
        if self._summary_day is None:
            # A start after today's time waits for tomorrow's: no summary at every restart.
            self._summary_day = day if (local.hour, local.minute) >= (h, m) else ""
        if self._summary_day == day or (local.hour, local.minute) < (h, m):
            return None
        self._summary_day = day
        title, body = alerts.summary(snap, now)
        return Message("daily_summary", title, body)


class Sender:
    """Apprise in a thread of its own, with a time-out; never raises."""

    def __init__(self, urls: Iterable[str], timeout: float) -> None:
        self.urls = tuple(urls)
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")
        self._busy: asyncio.Future[list[str]] | None = None
        self._failing = False

    def _send(self, title: str, body: str) -> list[str]:
        """Each URL on its own; the ones it could not reach."""
        import apprise

        missed = []
        for url in self.urls:
            a = apprise.Apprise()
            a.add(url)
            if not a.notify(title=title, body=body):
                missed.append(url)
        return missed

    async def send(self, title: str, body: str) -> bool:
        """True once Apprise delivered it to at least one URL."""
        if not self.urls:
            return False
        if self._busy is not None and not self._busy.done():
            return False  # the last one still hangs: this one is tried again later
        loop = asyncio.get_running_loop()
        self._busy = loop.run_in_executor(self._pool, self._send, title, body)
        missed: list[str] = list(self.urls)
        try:
            missed = await asyncio.wait_for(asyncio.shield(self._busy), self.timeout)
            why = "the service refused it or could not be reached"
        except TimeoutError:
            why = f"no answer within {self.timeout:.0f} s"
        except Exception as e:  # a plugin's bug must not stop the daemon
            why = f"{type(e).__name__}"
        ok = len(missed) < len(self.urls)
        if missed and not self._failing:
            self._failing = True
            where = ", ".join(describe_url(u) for u in missed)
            log.warning("a notification to %s could not be sent (%s); mediasync keeps "
                        "trying, without saying so again until one gets through", where, why)
        elif not missed and self._failing:
            self._failing = False
            log.info("notifications get through again")
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def deliver(notes: Notifications, sender: Sender, snap: Snapshot,
                  clock: Callable[[], float] = time.time) -> int:
    """Send what is due now; how many messages got through."""
    done = 0
    for message in notes.observe(snap, clock()):
        if await sender.send(message.title, message.body):
            notes.sent(message, clock())
            done += 1
        else:
            notes.failed(message, clock())
    return done
