"""Settle: a file is taken once it stopped changing for `settle` seconds, by its
mtime, by the watcher's events and by its stat across our own looks."""

from __future__ import annotations

from mediasync.engine.settle import Settle
from mediasync.rules.rows import LocalFacts
from tests.unit.engine.conftest import MONO, SETTLE, WALL, Ticks

PATH = "/inbox/a.png"


def facts(age: float, size: int = 10) -> LocalFacts:
    """A file last written ``age`` seconds before the wall clock's now."""
    return LocalFacts(size=size, mtime_ns=int((WALL - age) * 1e9), inode=7)


def test_a_file_untouched_for_settle_seconds_is_taken_at_once() -> None:
    assert Settle(Ticks(MONO)).wait(PATH, facts(age=10), WALL, SETTLE) == 0


def test_a_fresh_file_waits_out_the_rest_of_settle() -> None:
    assert Settle(Ticks(MONO)).wait(PATH, facts(age=0.5), WALL, SETTLE) == SETTLE - 0.5


def test_a_watcher_event_restarts_the_wait_whatever_the_mtime_says() -> None:
    mono = Ticks(MONO)
    settle = Settle(mono)
    settle.event(PATH)
    mono.now += 0.5
    assert settle.wait(PATH, facts(age=10), WALL, SETTLE) == SETTLE - 0.5
    assert settle.wait("/inbox/other.png", facts(age=10), WALL, SETTLE) == 0  # per path


def test_a_stat_that_changed_since_the_last_look_waits_a_whole_settle() -> None:
    settle = Settle(Ticks(MONO))
    assert settle.wait(PATH, facts(age=1.0), WALL, SETTLE) == SETTLE - 1.0
    # Written again, its mtime put back (a copy keeping times): still changing.
    assert settle.wait(PATH, facts(age=10, size=20), WALL, SETTLE) == SETTLE
    assert settle.wait(PATH, facts(age=10, size=20), WALL, SETTLE) == 0


def test_a_future_mtime_is_settled_by_a_stat_unchanged_across_one_wait() -> None:
    settle = Settle(Ticks(MONO))
    ahead = facts(age=-3600)  # a camera's clock an hour ahead
    assert settle.wait(PATH, ahead, WALL, SETTLE) == SETTLE
    assert settle.wait(PATH, ahead, WALL, SETTLE) == 0


def test_a_file_taken_starts_afresh_next_time() -> None:
    """What was kept between looks goes once the file is taken (or forgotten)."""
    settle = Settle(Ticks(MONO))
    ahead = facts(age=-3600)
    settle.wait(PATH, ahead, WALL, SETTLE)
    assert settle.wait(PATH, ahead, WALL, SETTLE) == 0  # taken: forgets its stat
    assert settle.wait(PATH, ahead, WALL, SETTLE) == SETTLE  # no earlier look to trust


def test_forget_drops_the_paths_event_and_stat() -> None:
    settle = Settle(Ticks(MONO))
    settle.event(PATH)
    settle.wait(PATH, facts(age=-3600), WALL, SETTLE)
    settle.forget(PATH)
    assert settle.wait(PATH, facts(age=10), WALL, SETTLE) == 0
