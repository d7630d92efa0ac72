"""StoreBudget.room (remote/budget.py): room before an upload counts what the
service counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mediasync.config import parse_config
from mediasync.remote.budget import StoreBudget
from mediasync.store import Meta
from tests.unit.remote.parts import HOUR, T0


async def _nothing(names: list[str]) -> None:
    return None


def _budget(ctx, tmp_path, store_bytes: int,  # noqa: ANN001
            busy: Callable[[str], bool] = lambda sha: False) -> StoreBudget:
    """A budget of the whole store (``storage_budget = "100%"``) of ``store_bytes``,
    deleting nothing itself."""
    cfg = parse_config({"daemon": {"storage_budget": "100%"},
                        "folders": [{"path": str(tmp_path / "inbox")}]})
    ctx.store.write(Meta.STORE_SIZE, {"bytes": store_bytes, "at": T0})
    return StoreBudget(ctx, config=lambda: cfg, busy=busy, delete_doomed=_nothing)


@pytest.mark.parametrize("in_a_job", [False, True])
def test_a_replaced_copy_holds_its_room_until_it_is_deleted(ctx, add_copy, tmp_path,
                                                            in_a_job) -> None:
    # A 25-byte store holding a renewed 10-byte copy and the copy it replaced, whose
    # deletion is under way: the service counts both, so a 10-byte upload admitted now
    # would be refused. It waits, and goes once the replaced copy is deleted. A copy an
    # open batch job still reads is not deleted yet (store.doomed leaves it out): it
    # holds its room all the same.
    from mediasync.rules.batching import OPEN, WAITING, ItemRow, JobRow

    add_copy("a" * 64, T0 + 48 * HOUR)
    if in_a_job:
        ctx.store.put_job(JobRow("k1", "m", OPEN, T0, 3600.0, name="batches/x"),
                          [ItemRow("k1", "r1", "/f/a.png", ".c.md", "a" * 64, "p", "m",
                                   "http://h/v1beta/files/replaced", WAITING)])

    async def scenario() -> list[str]:
        budget = _budget(ctx, tmp_path, 25, busy=lambda sha: sha == "a" * 64)
        events: list[str] = []
        ctx.store.doom("files/replaced", "renewed", T0)
        budget.deleting("files/replaced", 10)

        async def upload() -> None:
            async with budget.room("b" * 64, 10):
                events.append("admitted")

        task = asyncio.create_task(upload())
        for _ in range(50):  # turns of the loop, no wall time: it runs until it waits
            await asyncio.sleep(0)
        assert events == [] and not task.done()  # waiting (admitted at once: fails here)
        events.append("deleted")
        ctx.store.undoom("files/replaced")
        budget.wake()
        await asyncio.wait_for(task, 5)
        return events

    assert asyncio.run(scenario()) == ["deleted", "admitted"]


@pytest.mark.parametrize("job_sha, other", [("a" * 64, "c" * 64), ("c" * 64, "a" * 64)])
def test_a_copy_an_open_batch_job_reads_never_makes_room(ctx, add_copy, tmp_path, job_sha,
                                                         other) -> None:
    # A 25-byte store with two 10-byte copies no live file needs: the one an open batch
    # job names (its requests read it by URI for up to a day) stays; the other goes.
    from mediasync.rules.batching import OPEN, WAITING, ItemRow, JobRow

    add_copy(job_sha, T0 + 48 * HOUR, live=False)
    add_copy(other, T0 + 48 * HOUR, live=False)
    ctx.store.put_job(JobRow("k1", "m", OPEN, T0, 3600.0, name="batches/x"),
                      [ItemRow("k1", "r1", "/f/a.png", ".c.md", job_sha, "p", "m",
                               f"http://h/v1beta/files/{job_sha[:6]}", WAITING)])

    async def scenario() -> None:
        budget = _budget(ctx, tmp_path, 25)
        async with budget.room("b" * 64, 10):
            pass

    asyncio.run(scenario())
    assert ctx.store.get_content(job_sha).remote_name == f"files/{job_sha[:6]}"
    assert ctx.store.get_content(other).remote_name is None


def test_admissions_sum_the_store_once_not_per_upload(ctx, add_copy, tmp_path,
                                                      monkeypatch) -> None:
    # A first sync of 100,000 files admits an upload for each: summing every content row
    # per admission made it slow down as it went. Finished uploads count as live until
    # the next sum (an upper bound); only a bound over the budget is summed exactly.
    add_copy("a" * 64, T0 + 48 * HOUR)
    sums = []
    real = ctx.store.held_bytes
    monkeypatch.setattr(ctx.store, "held_bytes", lambda *a: sums.append(a) or real(*a))

    async def scenario() -> list[str]:
        budget = _budget(ctx, tmp_path, 1000)
        for i in range(20):  # 1-byte uploads; every other one fails
            sha = f"{i:064x}"
            async with budget.room(sha, 1):
                if i % 2:
                    ctx.store.ensure_content(sha, 1, "image/png", "image", T0)
                    ctx.store.promoted(sha, T0, f"files/n{i}", "u", T0 + 48 * HOUR)
        first = len(sums)
        # 10 (a) + 10 live: a 5-byte upload fits a 26-byte store. The bound (every
        # finished upload live: 30) says no, so the sum is taken again, once.
        ctx.store.write(Meta.STORE_SIZE, {"bytes": 26, "at": T0})
        admitted = []
        async with budget.room("f" * 64, 5):
            admitted.append("f")
        return [str(first), str(len(sums) - first), *admitted]

    assert asyncio.run(scenario()) == ["1", "1", "f"]
    assert ctx.store.get_content("a" * 64).remote_name is not None  # nothing made room
