"""rules/batching.py: which outputs go by batch, poll backoff, a job's end, our names."""

from __future__ import annotations

import pytest

from mediasync.rules import batching


@pytest.mark.parametrize(("mode", "pending", "minimum", "want"), [
    ("off", 500, 50, False),
    ("auto", 49, 50, False),  # a small backlog (a lone new file) stays interactive
    ("auto", 50, 50, True),
    ("always", 1, 50, True),
    ("always", 0, 50, False),
])
def test_submit(mode: str, pending: int, minimum: int, want: bool) -> None:
    assert batching.submit(mode, pending, minimum) is want


def test_goes_by_batch_never_again_after_a_job_ended_without_it() -> None:
    assert batching.goes_by_batch("auto", released=False, interactive=False)
    assert not batching.goes_by_batch("always", released=False, interactive=True)
    assert not batching.goes_by_batch("auto", released=True, interactive=False)
    assert not batching.goes_by_batch("off", released=False, interactive=False)


def test_poll_backoff_seconds_then_minutes() -> None:
    delays = [batching.poll_delay(n) for n in range(10)]
    assert delays[0] == 2 and delays == sorted(delays)
    assert delays[-1] == batching.POLL_CAP == 600


def test_copy_must_outlive_the_job_and_overdue() -> None:
    now, wait = 1000.0, 30 * 3600.0
    assert batching.needs_renewal(now + wait, now, wait)  # no margin
    assert not batching.needs_renewal(now + wait + 2 * 3600, now, wait)
    assert batching.needs_renewal(None, now, wait)
    assert batching.overdue(0.0, wait, wait) and not batching.overdue(0.0, wait - 1, wait)
    # max_wait near 48 h: a copy just made is kept (renewing it again gains nothing),
    # one past its first hour is renewed.
    longest = 47.9 * 3600
    assert not batching.needs_renewal(now + 48 * 3600 - 0.02, now, longest)
    assert batching.needs_renewal(now + 46 * 3600, now, longest)


def test_outcome_and_display_names() -> None:
    assert batching.outcome("SUCCEEDED") == "results"
    assert {batching.outcome(s) for s in ("FAILED", "CANCELLED", "EXPIRED")} == {"interactive"}
    assert batching.outcome("RUNNING") is None and batching.outcome(None) is None
    # Ended in a state we do not know, or none: over; a results file named is read.
    assert batching.outcome("PARTIALLY_SUCCEEDED", ended=True) == "interactive"
    assert batching.outcome(None, ended=True, results=True) == "results"
    assert batching.outcome("CANCELLED", ended=True, results=True) == "results"
    name = batching.display_name("ab12", "k1")
    assert batching.key_of(name, "ab12") == "k1"
    assert batching.key_of(name, "other") is None  # another state directory's job
    assert batching.key_of("my-batch-job", "ab12") is None


def test_the_ledger_prices_batch_answers_at_half() -> None:
    from mediasync.config import DEFAULT_PRICES
    from mediasync.report import costs

    row = ("2026-12-01", "gemini-2.5-flash", 1, 1_000_000, 1_000_000, 0)
    std = costs.Spend()
    std.add((*row, "standard"), DEFAULT_PRICES["gemini-2.5-flash"])
    batch = costs.Spend()
    batch.add((*row, "batch"), DEFAULT_PRICES["gemini-2.5-flash"])
    assert std.cost == pytest.approx(0.30 + 2.50) and batch.cost == pytest.approx(std.cost / 2)
