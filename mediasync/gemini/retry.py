"""Retry policy: which failures to retry, and how long to wait before each try."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .errors import ApiError


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts; capped exponential backoff with full jitter.

    A 429 waits the server's RetryInfo.retryDelay (capped by ``max_retry_delay``,
    beyond which waiting in-process makes no sense and the error surfaces).
    ``sleep`` and ``random`` are injectable so tests never really wait.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_delay: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def should_retry(self, error: ApiError, attempt: int) -> bool:
        """``attempt`` counts tries made so far (1 after the first failure)."""
        if attempt >= self.max_attempts or not error.retryable:
            return False
        delay = error.retry_delay
        return delay is None or delay <= self.max_retry_delay

    def delay(self, error: ApiError, attempt: int) -> float:
        if error.code == 429 and error.retry_delay is not None:
            return error.retry_delay
        # Full jitter (AWS architecture blog): uniform in [0, capped exponential].
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return cap * self.random()
