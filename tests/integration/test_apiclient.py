"""apiclient: the owner's daily cap reads today's usage, not the whole ledger."""

from __future__ import annotations

import time
from pathlib import Path

from mediasync.app.apiclient import make_budgets
from mediasync.app.cap import DailyCap
from mediasync.config import parse_config
from mediasync.gemini.quota import pacific_day
from mediasync.store import Store


def test_usage_of_one_day_and_the_cap_counts_only_today(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    today = pacific_day(time.time())
    for day in ("2020-01-01", "2020-01-02", "2020-01-03"):
        store.add_usage(day, "gemini-2.5-flash", 10_000, 10_000, 0)  # far over, long ago
    store.add_usage(today, "gemini-2.5-flash", 10, 10, 0)
    assert [r[0] for r in store.usage(day=today)] == [today]
    assert len(store.usage()) == 4

    def cfg(tokens: int) -> object:
        return parse_config({"limits": {"max_daily_tokens": tokens},
                             "folders": [{"path": str(tmp_path)}]})

    def cap(tokens: int) -> DailyCap:
        c = cfg(tokens)
        return DailyCap(c.limits, c.prices, store)

    # 20 today, and a call costs 20 today on average: room under 41, none under 39.
    assert cap(41).paused() is None
    assert cap(39).paused() is not None
    pause = cap(20).paused()
    assert pause is not None and "daily token cap of 20" in pause.message(time.time())
    # The cap is no pause the budgets keep: each config reads it afresh.
    assert make_budgets(cfg(20), store).active_pauses() == []
    store.close()
