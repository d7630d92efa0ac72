"""Renewals, planned from the recorded expiry times: which copies are due, when the
next window opens, one renewal per content at a time, and a renewal that fails
never takes the working copy away."""

from __future__ import annotations

import asyncio
import logging

from mediasync.gemini import ApiError
from mediasync.remote.locks import ContentLocks
from mediasync.remote.renewals import Renewals
from mediasync.rules.failures import ContentUnavailable
from mediasync.rules.rows import ContentRow
from tests.unit.remote.parts import HOUR, T0

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


class Siblings:
    """The callables a Renewals is given, recording what it asked of them."""

    def __init__(self, ctx, *, kept: set[str] | None = None) -> None:
        self.ctx = ctx
        self.locks = ContentLocks()
        self.kept = kept
        self.made: list[str] = []
        self.deleted: list[list[str]] = []
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def make_copy(self, c: ContentRow) -> None:
        self.made.append(c.sha256)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        now = self.ctx.clock()
        self.ctx.store.promoted(c.sha256, now, f"files/new-{c.sha256[:4]}", "u", now + 48 * HOUR)

    async def delete_doomed(self, names: list[str]) -> None:
        self.deleted.append(names)

    def keeps_alive(self, sha: str) -> bool:
        return self.kept is None or sha in self.kept

    def renewals(self) -> Renewals:
        return Renewals(self.ctx, lock=self.locks.hold, make_copy=self.make_copy,
                        delete_doomed=self.delete_doomed, keeps_alive=self.keeps_alive)


def test_the_next_window_is_the_earliest_still_ahead_and_follows_renew_before(ctx,
                                                                              add_copy) -> None:
    add_copy(A, T0 + 10 * HOUR)  # window at T0+4h
    add_copy(B, T0 + 20 * HOUR)  # window at T0+14h
    add_copy(C, T0 + 2 * HOUR)  # window opened at T0-4h: due now, not ahead
    add_copy(D, T0 + 8 * HOUR)  # window at T0+2h, but its folder lets copies lapse
    renewals = Siblings(ctx, kept={A, B, C}).renewals()
    assert renewals.next_at() == T0 + 4 * HOUR
    ctx.renew_before = 1 * HOUR  # a reload: the parts read it from the shared context
    assert renewals.next_at() == T0 + 1 * HOUR  # C's window is ahead again


def test_due_renews_each_copy_in_its_window_that_a_file_still_needs(ctx, add_copy) -> None:
    old = add_copy(A, T0 + 2 * HOUR)  # in its window
    add_copy(B, T0 + 20 * HOUR)  # not yet
    add_copy(C, T0 + 2 * HOUR, live=False)  # in its window, but no file needs it
    add_copy(D, T0 + 2 * HOUR)  # in its window, but kept only while used
    s = Siblings(ctx, kept={A, B, C})
    renewals = s.renewals()

    async def go() -> int:
        started = renewals.due()
        await renewals.wait()
        return started

    assert asyncio.run(go()) == 1
    assert s.made == [A]
    assert s.deleted == [[old]]  # the replaced copy goes at once, not at the next listing


def test_a_renewal_that_fails_keeps_the_working_copy(ctx, add_copy, caplog) -> None:
    add_copy(A, T0 + 2 * HOUR)
    s = Siblings(ctx)
    renewals = s.renewals()

    async def renew() -> None:
        renewals.start(A)
        await renewals.wait()

    s.fail = ContentUnavailable("upload failed, will retry", T0 + 60)
    asyncio.run(renew())
    s.fail = ApiError(500, "INTERNAL", "boom")
    with caplog.at_level(logging.ERROR, "mediasync"):
        asyncio.run(renew())
    assert s.made == [A, A]
    assert s.deleted == []  # nothing replaced it: the old copy is not deleted
    assert "renewing" in caplog.text and "boom" in caplog.text


def test_a_copy_waiting_to_retry_is_renewed_once_its_time_comes(ctx, add_copy) -> None:
    add_copy(A, T0 + 2 * HOUR)
    ctx.store.copy_failed(A, T0, "upload failed, will retry", T0 + 300, 1)
    s = Siblings(ctx)
    renewals = s.renewals()

    async def go() -> None:
        renewals.due()
        await renewals.wait()

    asyncio.run(go())
    assert s.made == []
    ctx.clock.now = T0 + 301
    asyncio.run(go())
    assert s.made == [A]


def test_a_renewal_under_way_is_not_started_twice(ctx, add_copy) -> None:
    add_copy(A, T0 + 2 * HOUR)
    s = Siblings(ctx)
    s.fail = ContentUnavailable("upload failed, will retry", None)  # still due after it
    renewals = s.renewals()

    async def go() -> None:
        s.gate = asyncio.Event()
        renewals.start(A)
        await asyncio.sleep(0)
        renewals.start(A)  # already under way: not a second one
        s.gate.set()
        await renewals.wait()

    asyncio.run(go())
    assert s.made == [A]


def test_no_renewal_once_another_made_the_copy(ctx, add_copy) -> None:
    add_copy(B, T0 + 2 * HOUR)
    s = Siblings(ctx)
    renewals = s.renewals()

    async def go() -> None:
        async with s.locks.hold(B):  # an upload of B is under way
            renewals.start(B)
            await asyncio.sleep(0)
            # ... and makes B's fresh copy before the renewal gets the lock
            ctx.store.promoted(B, T0, "files/fresh", "u", T0 + 48 * HOUR)
        await renewals.wait()

    asyncio.run(go())
    assert s.made == []
