"""How quantities read in messages. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from mediasync.gemini.quota import LATEST_SHOWN


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def utc_stamp(ts: float) -> str:
    """``2026-12-03 14:05 UTC`` for an epoch time, any float included: one past what
    datetime can hold reads as its last minute, NaN or one before 1970 as 1970."""
    if not ts == ts or ts < 0:  # NaN, or before the epoch
        ts = 0.0
    return datetime.fromtimestamp(min(ts, LATEST_SHOWN), UTC).strftime("%Y-%m-%d %H:%M UTC")
