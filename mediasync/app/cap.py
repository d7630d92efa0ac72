"""The owner's daily cap (``max_daily_tokens``, ``max_daily_cost``), held before each
generation rather than noticed after it (issue 18, item 9).

Each call reserves what a call costs today on average before it goes out; the
reservation gives way to the call's real usage (the ledger) when it ends. A call
that would pass the cap waits while others are in flight (they may leave room),
and with none in flight the cap is reached for the day: a :class:`QuotaPaused`
until midnight Pacific, as the service's own day quotas. So the calls in flight
(up to ``max_generations``) cannot overshoot it together.

Nothing of the cap is kept as a pause: it is read from the config it is built
with and the usage ledger each time, so raising or removing it (SIGHUP, a
restart) lets generation go on at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping

from mediasync.config import LimitsConfig, Price
from mediasync.gemini import Pause, QuotaPaused
from mediasync.gemini.quota import next_reset, pacific_day
from mediasync.report import costs
from mediasync.store import Store

log = logging.getLogger("mediasync")

CAP_CLASS = "generate:*"  # the cap holds every model
ALL_MODELS = "all models"


class DailyCap:
    """The client's gate for generation (GeminiClient.gate)."""

    def __init__(self, limits: LimitsConfig, prices: Mapping[str, Price], store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self._limits = limits
        self._prices = prices
        self._store = store
        self._clock = clock
        self._held: dict[int, costs.Spend] = {}  # reservations of the calls in flight
        self._tickets = itertools.count()
        self._changed = asyncio.Condition()

    @property
    def capped(self) -> bool:
        return self._limits.max_daily_tokens is not None or (
            self._limits.max_daily_cost is not None)

    def _today(self) -> costs.Spend:
        now = self._clock()
        return costs.today(self._store.usage(day=pacific_day(now)), self._prices, now)

    def paused(self, model: str | None = None) -> Pause | None:
        """Why no call would be admitted now under the current config (the cap reached,
        or the next call would pass it and none is in flight); None while there is room."""
        if not self.capped:
            return None
        spent = self._today()
        if self._held:  # calls in flight: only the cap reached holds the next one back
            reached = costs.cap_reached(spent, self._limits)
        else:
            reached = costs.cap_holds(spent, self._store.usage(), self._prices, self._limits,
                                      model or "")
        return self._pause(reached) if reached is not None else None

    def _pause(self, what: str) -> Pause:
        return Pause(CAP_CLASS, next_reset(self._clock()), what, ALL_MODELS)

    async def admit(self, model: str) -> int | None:
        """Reserve a call's share of the cap, waiting for calls in flight if they hold
        the rest; raises QuotaPaused when the cap is reached for today."""
        if not self.capped:
            return None
        async with self._changed:
            while True:
                spent = self._today()
                reached = costs.cap_reached(spent, self._limits)
                if reached is not None:
                    raise QuotaPaused(self._pause(reached), self._clock())
                need = costs.call_estimate(spent, self._store.usage(), self._prices, model)
                held = costs.Spend()
                for h in self._held.values():
                    held.merge(h)
                over = costs.cap_passed(spent, held, need, self._limits)
                if over is None:
                    ticket = next(self._tickets)
                    self._held[ticket] = need
                    return ticket
                if not self._held:
                    # Nothing in flight to leave room: the next call would pass the cap.
                    log.info("%s: %s", model, over)
                    raise QuotaPaused(self._pause(costs.cap_words(self._limits)),
                                      self._clock())
                await self._changed.wait()

    async def release(self, ticket: int | None) -> None:
        """The call ended (its usage is in the ledger already, if any): free its share."""
        if ticket is None:
            return
        async with self._changed:
            self._held.pop(ticket, None)
            self._changed.notify_all()
