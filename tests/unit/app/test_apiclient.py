"""What Budgets keeps across a restart: learned limits (with their age and the pins
they were learned under) and today's request count per model (from the ledger)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import pytest

from mediasync.app.apiclient import make_budgets
from mediasync.config import load_config
from mediasync.gemini import Budgets, ClassLimits, QuotaPaused, quota
from mediasync.gemini.pacing import LEARNED_FOR
from mediasync.store import Meta, Store
from tests.helpers import VClock, quota_err, write_config

CLS = "generate:gemini-2.5-flash"
T0 = 1_750_000_000.0  # 2025-06-15 08:06 PDT: mid-day, no Pacific midnight near


def taught(clock: VClock, **kw: Any) -> dict[str, Any]:
    """What a run that was refused with rpm 5 and tpm 1000 leaves behind."""
    saved: list[dict[str, Any]] = []
    b = Budgets(clock=clock, sleep=clock.sleep, **kw)
    b.on_learn = lambda: saved.append(json.loads(json.dumps(b.learned())))
    b.learn(CLS, quota_err("rpm", 5))
    b.learn(CLS, quota_err("tpm", 1000))
    assert len(saved) == 2  # told at each, so the last word is on disk
    return saved[-1]


def test_learned_limits_come_back_after_a_restart_and_pace_at_once() -> None:
    clock = VClock(T0)
    data = taught(clock)
    assert data[CLS]["rpm"] == 5 and data[CLS]["tpm"] == 1000 and data[CLS]["at"] == T0

    clock.now += 3600  # the next hourly cron run
    b = Budgets(clock=clock, sleep=clock.sleep)
    b.restore_learned(data)
    assert b.limits(CLS) == ClassLimits(5, 1000, None)

    async def go() -> None:
        for _ in range(6):
            await b.acquire(CLS)

    asyncio.run(go())
    assert clock.slept and clock.slept[0] > 59  # the 6th waits: paced, not refused
    assert b.learned()[CLS]["at"] == T0  # kept with its age, not made young by a restart


def test_a_learned_limit_older_than_a_week_is_dropped() -> None:
    clock = VClock(T0)
    data = taught(clock)
    clock.now = T0 + LEARNED_FOR + 1
    b = Budgets(clock=clock, sleep=clock.sleep)
    b.restore_learned(data)
    assert b.limits(CLS) == ClassLimits()
    assert b.learned() == {}  # and forgotten at the next write


def test_a_confirmed_limit_is_young_again() -> None:
    clock = VClock(T0)
    b = Budgets(clock=clock, sleep=clock.sleep)
    b.learn(CLS, quota_err("rpm", 5))
    clock.now += 6 * 86400
    b.learn(CLS, quota_err("rpm", 5))
    assert b.learned()[CLS]["at"] == clock.now


def test_pinned_values_win_over_learned_ones() -> None:
    clock = VClock(T0)
    pins = ClassLimits(rpm=20)
    data = taught(clock, generate=pins)
    b = Budgets(generate=pins, clock=clock, sleep=clock.sleep)
    b.restore_learned(data)
    assert b.limits(CLS) == ClassLimits(20, 1000, None)  # rpm pinned, tpm learned


def test_a_changed_tier_or_pin_drops_what_was_learned_under_the_old_one() -> None:
    clock = VClock(T0)
    data = taught(clock, generate=ClassLimits(10, 250_000, 250))  # tier = "free"
    for pins in (ClassLimits(1_000, 1_000_000, 10_000), ClassLimits()):  # "paid"; none
        b = Budgets(generate=pins, clock=clock, sleep=clock.sleep)
        b.restore_learned(data)
        assert b.limits(CLS) == pins


@pytest.mark.parametrize("junk", [
    None, [], "x", {CLS: None}, {CLS: {"rpm": 5}}, {CLS: {"rpm": "5", "at": T0, "pinned": []}},
    {CLS: {"rpm": -1, "at": T0, "pinned": [None, None, None]}},
    {CLS: {"rpm": 5, "at": "soon", "pinned": [None, None, None]}},
])
def test_unreadable_learned_limits_are_ignored(junk: object) -> None:
    b = Budgets(clock=VClock(T0))
    b.restore_learned(junk)
    assert b.limits(CLS) == ClassLimits()


def test_a_stated_day_quota_is_learned_and_kept() -> None:
    clock = VClock(T0)
    b = Budgets(clock=clock, sleep=clock.sleep)
    with pytest.raises(QuotaPaused):
        b.learn(CLS, quota_err("rpd", 250))
    assert b.learned()[CLS]["rpd"] == 250
    fresh = Budgets(clock=clock)
    fresh.restore_learned(b.learned())
    assert fresh.limits(CLS).rpd == 250


def test_todays_requests_count_against_a_day_quota_after_a_restart() -> None:
    clock = VClock(T0)
    b = Budgets(generate=ClassLimits(rpd=3), clock=clock, sleep=clock.sleep)
    b.restore_day(CLS, quota.pacific_day(T0), 2)
    b.restore_day(CLS, quota.pacific_day(T0 - 86400), 50)  # yesterday's: no matter

    async def go() -> None:
        await b.acquire(CLS)
        with pytest.raises(QuotaPaused):
            await b.acquire(CLS)

    asyncio.run(go())


def test_make_budgets_persists_learned_limits_and_reads_the_ledger(tmp_path) -> None:
    cfg = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    store = Store(tmp_path / "state.db")
    b = make_budgets(cfg, store)
    b.learn(CLS, quota_err("rpm", 5))
    assert store.read(Meta.LEARNED_LIMITS)[CLS]["rpm"] == 5

    today = quota.pacific_day(time.time())
    for _ in range(4):
        store.add_usage(today, "gemini-2.5-flash", 10, 10, 0)
    store.add_usage("2000-01-01", "gemini-2.5-flash", 10, 10, 0)
    again = make_budgets(cfg, store)
    assert again.limits(CLS).rpm == 5
    assert again.state(CLS).day_count == 4

    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:  # a damaged entry, as a crash might leave
        db.execute("UPDATE meta SET value='{not json' WHERE key=?", (Meta.LEARNED_LIMITS.name,))
    store = Store(tmp_path / "state.db")
    assert make_budgets(cfg, store).limits(CLS).rpm is None  # ignored, learned anew
    store.close()
