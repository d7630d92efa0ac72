"""How quantities read in messages. Pure."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

from mediasync.gemini.quota import LATEST_SHOWN
from mediasync.media.sizes import human_bytes

__all__ = ["LATEST_SHOWN", "human_bytes", "minute_stamp", "utc_stamp"]


def utc_stamp(ts: float) -> str:
    """``2026-12-03 14:05 UTC`` for an epoch time, any float included: one past what
    datetime can hold reads as its last minute, NaN or one before 1970 as 1970."""
    if not ts == ts or ts < 0:  # NaN, or before the epoch
        ts = 0.0
    return datetime.fromtimestamp(min(ts, LATEST_SHOWN), UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=4096)
def _minute(minute: int) -> str:
    return utc_stamp(minute * 60)


def minute_stamp(ts: float) -> str:
    """``utc_stamp(ts)``, made once per minute: a library's times bunch up, and
    formatting a date per file was a good part of `status` over 100,000 files."""
    if not 0 <= ts < LATEST_SHOWN:  # NaN too
        return utc_stamp(ts)
    return _minute(math.floor(ts / 60))
