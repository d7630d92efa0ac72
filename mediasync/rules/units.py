"""How quantities read in messages. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from mediasync.gemini.quota import LATEST_SHOWN
from mediasync.media.sizes import human_bytes

__all__ = ["LATEST_SHOWN", "human_bytes", "utc_stamp"]


def utc_stamp(ts: float) -> str:
    """``2026-12-03 14:05 UTC`` for an epoch time, any float included: one past what
    datetime can hold reads as its last minute, NaN or one before 1970 as 1970."""
    if not ts == ts or ts < 0:  # NaN, or before the epoch
        ts = 0.0
    return datetime.fromtimestamp(min(ts, LATEST_SHOWN), UTC).strftime("%Y-%m-%d %H:%M UTC")
