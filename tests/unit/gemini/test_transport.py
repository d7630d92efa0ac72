"""The one request core: the key only on API requests, one retry policy for the
client and its uploads (a command's shorter policy reaches an upload's query too),
and no key in what it raises."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mediasync.emulator import Fault
from mediasync.gemini import ApiError, GeminiClient, RetryPolicy
from mediasync.gemini.transport import Transport

KEY = "transport-test-key-123"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_the_key_goes_on_api_requests_only(emu) -> None:
    seen: list[tuple[str, str | None]] = []

    async def hook(request: httpx.Request) -> None:
        seen.append((request.url.path, request.headers.get("x-goog-api-key")))

    async def go() -> None:
        http = httpx.AsyncClient(event_hooks={"request": [hook]})
        t = Transport(KEY, emu.base_url, "v1beta", retry=RetryPolicy(), budgets=None,
                      http=http)
        await t.call("files.list", "GET", t.url("files"))
        await t.send("GET", t.url("files"), api=False)  # e.g. an upload chunk
        await t.aclose()

    asyncio.run(go())
    assert seen == [("/v1beta/files", KEY), ("/v1beta/files", None)]


def test_a_swapped_retry_policy_reaches_the_uploads(emu) -> None:
    sleeps = Sleeps()
    emu.add_fault(Fault(kind="status", status=503, match="query", times=2))

    async def go(attempts: int) -> None:
        async with GeminiClient(KEY, emu.base_url) as c:
            # As commands/common.py does for someone waiting at a terminal.
            c.retry = RetryPolicy(max_attempts=attempts, sleep=sleeps, random=lambda: 0.5)
            session = await c.start_upload(size=10, mime_type="image/png")
            await c.query_upload(session.url)

    with pytest.raises(ApiError):
        asyncio.run(go(1))  # the first 503 ends it: no retry, no sleep
    assert sleeps.delays == []
    asyncio.run(go(3))  # the second 503, then an answer
    assert sleeps.delays == [0.25]


def test_what_the_core_raises_and_shows_carries_no_key(emu) -> None:
    # An answer that quotes the key back (a proxy, a debug message) is redacted.
    emu.add_fault(Fault(kind="status", status=400, match="list", message=f"bad key {KEY}"))

    async def go() -> None:
        t = Transport(KEY, emu.base_url, "v1beta", retry=RetryPolicy(max_attempts=1),
                      budgets=None, http=httpx.AsyncClient())
        assert KEY not in repr(t) and KEY not in repr(vars(t))
        try:
            await t.call("files.list", "GET", t.url("files"))
        finally:
            await t.aclose()

    with pytest.raises(ApiError) as info:
        asyncio.run(go())
    assert info.value.code == 400 and "bad key ***" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value.details)
