"""StoreBudget.room (remote/budget.py): room before an upload counts what the
service counts."""

from __future__ import annotations

import asyncio

from mediasync.config import parse_config
from mediasync.remote.budget import StoreBudget
from mediasync.store import Meta
from tests.unit.remote.parts import HOUR, T0


def test_a_replaced_copy_holds_its_room_until_it_is_deleted(ctx, add_copy, tmp_path) -> None:
    # A 25-byte store holding a renewed 10-byte copy and the copy it replaced, whose
    # deletion is under way: the service counts both, so a 10-byte upload admitted now
    # would be refused. It waits, and goes once the replaced copy is deleted.
    cfg = parse_config({"daemon": {"storage_budget": "100%"},
                        "folders": [{"path": str(tmp_path / "inbox")}]})
    ctx.store.write(Meta.STORE_SIZE, {"bytes": 25, "at": T0})
    add_copy("a" * 64, T0 + 48 * HOUR)

    async def nothing(names: list[str]) -> None:
        return None

    async def scenario() -> list[str]:
        budget = StoreBudget(ctx, config=lambda: cfg, busy=lambda sha: sha == "a" * 64,
                             delete_doomed=nothing)
        events: list[str] = []
        ctx.store.doom("files/replaced", "renewed", T0)
        budget.deleting("files/replaced", 10)

        async def upload() -> None:
            async with budget.room("b" * 64, 10):
                events.append("admitted")

        task = asyncio.create_task(upload())
        await asyncio.sleep(0.1)
        events.append("deleted")
        ctx.store.undoom("files/replaced")
        budget.wake()
        await asyncio.wait_for(task, 5)
        return events

    assert asyncio.run(scenario()) == ["deleted", "admitted"]
