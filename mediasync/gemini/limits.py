"""Client-side request rate limiting shared by every caller of one key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Limiter(Protocol):
    async def acquire(self) -> None: ...

    def penalize(self, seconds: float) -> None: ...


class RateLimiter:
    """Token bucket: ``requests_per_minute`` on average, bursts up to ``burst``.

    ``penalize(s)`` (called on a 429) empties the bucket and holds *every*
    waiter for ``s`` seconds, so one throttled request slows all callers.
    Waiters are served in arrival order: one asyncio.Lock queues them.
    """

    def __init__(
        self,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        burst: int | None = None,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.rate = requests_per_minute / 60.0  # tokens per second
        self.capacity = float(burst if burst is not None else max(1, requests_per_minute // 10))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._hold_until = 0.0
        self._lock: asyncio.Lock | None = None  # made lazily: bound to the running loop

    def __repr__(self) -> str:
        return f"RateLimiter({self.rate * 60:g}/min, burst={self.capacity:g})"

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._hold_until:
                    await self._sleep(self._hold_until - now)
                    continue
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def penalize(self, seconds: float) -> None:
        now = self._clock()
        self._refill(now)
        self._tokens = 0.0
        self._hold_until = max(self._hold_until, now + max(0.0, seconds))
        self._stamp = self._hold_until  # no tokens accrue while held
