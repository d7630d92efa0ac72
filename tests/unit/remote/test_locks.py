"""The per-content lock of the mirror is forgotten once nobody holds or awaits it."""

from __future__ import annotations

import asyncio

from mediasync.remote.locks import ContentLocks


def test_a_content_lock_is_dropped_when_free_and_kept_while_awaited() -> None:
    locks = ContentLocks()

    async def scenario() -> None:
        order: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with locks.hold("a"):
                order.append("first")
                await release.wait()

        async def second() -> None:
            async with locks.hold("a"):
                order.append("second")

        t1 = asyncio.create_task(first())
        await asyncio.sleep(0)
        t2 = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert locks.busy("a") and order == ["first"]  # the second waits: one at a time
        assert len(locks) == 1  # one entry, held and awaited
        release.set()
        await asyncio.gather(t1, t2)
        assert order == ["first", "second"]
        assert len(locks) == 0 and not locks.busy("a")

    asyncio.run(scenario())
