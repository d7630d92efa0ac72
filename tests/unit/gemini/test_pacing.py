"""A class with no limit known keeps no more than a minute of stamps (a daemon on a
paid key may never see a 429, and runs for months)."""

from __future__ import annotations

import asyncio

from mediasync.gemini import Budgets
from tests.helpers import VClock

CLS = "generate:gemini-2.5-flash"


def test_windows_hold_only_the_last_minute_without_a_limit() -> None:
    clock = VClock(1_750_000_000.0)
    b = Budgets(clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(600):  # one call and answer every 2 s: 20 minutes
            await b.acquire(CLS)
            b.done(CLS, prompt_tokens=300)
            clock.now += 2.0

    asyncio.run(go())
    s = b.state(CLS)
    assert len(s.requests.items) <= 31 and len(s.tokens.items) <= 31
    # What the window says is used is the sum of what it holds (kept as they come
    # and go, not summed per call).
    for w in (s.requests, s.tokens):
        assert w.used(clock.now) == sum(weight for _, weight in w.items) > 0
    clock.now += 120.0
    assert s.requests.used(clock.now) == s.tokens.used(clock.now) == 0
