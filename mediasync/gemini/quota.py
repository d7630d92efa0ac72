"""The service's quotas: what a 429 says, when the day resets, how a pause reads.

Pure: no I/O, no clock reads (every function takes ``now``). Works on the raw
``details`` list of an error answer so it does not depend on how ``ApiError``
exposes them. The shapes are the live service's (wire/25–29): QuotaFailure
violations with ``quotaId`` such as ``GenerateRequestsPerDayPerProjectPerModel-FreeTier``,
``quotaDimensions.model`` and, only sometimes, ``quotaValue`` (a string); the
message may carry ``* Quota exceeded for metric: …, limit: N, model: M`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"

Kind = Literal["rpm", "tpm", "rpd", "storage", "other"]
_LIMIT_LINE = re.compile(
    r"\*\s*Quota exceeded for metric:\s*(?P<metric>[^,\s]+),\s*limit:\s*(?P<limit>\d+)"
    r"(?:,\s*model:\s*(?P<model>[\w.\-/]+))?"
)


@dataclass(frozen=True)
class Violation:
    """One quota a 429 says was exceeded."""

    kind: Kind
    quota_id: str
    model: str | None = None
    limit: int | None = None  # quotaValue, or the message's "limit: N"; often unknown


def kind_of(quota_id: str, metric: str = "") -> Kind:
    """Which budget a quotaId (or, failing that, a metric name) is about."""
    text = f"{quota_id} {metric}".lower()
    if "storagebytes" in text or "storage_bytes" in text:
        return "storage"
    if "token" in text:
        return "tpm"  # the only token quota the service names is per minute
    if "perday" in text or "per_day" in text:
        return "rpd"
    if "perminute" in text or "per_minute" in text or "requests" in text:
        return "rpm"
    return "other"


def _int(value: Any) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def violations(details: Iterable[Any] | None, message: str = "") -> list[Violation]:
    """Every violation a 429 names; [] for a bare 429 (wire/29).

    ``limit`` comes from ``quotaValue`` when present, else from the message's
    ``limit: N`` line for the same metric (wire/28), else stays None.
    """
    from_message: dict[str, tuple[int, str | None]] = {}
    for m in _LIMIT_LINE.finditer(message or ""):
        from_message[m["metric"]] = (int(m["limit"]), m["model"])
    out: list[Violation] = []
    for d in details or []:
        if not isinstance(d, dict) or d.get("@type") != QUOTA_FAILURE:
            continue
        for v in d.get("violations") or []:
            if not isinstance(v, dict):
                continue
            quota_id = str(v.get("quotaId") or "")
            metric = str(v.get("quotaMetric") or "")
            dims = v.get("quotaDimensions")
            model = dims.get("model") if isinstance(dims, dict) else None
            limit = _int(v.get("quotaValue")) if "quotaValue" in v else None
            if limit is None and metric in from_message:
                limit, model = from_message[metric][0], model or from_message[metric][1]
            out.append(Violation(kind_of(quota_id, metric), quota_id or metric,
                                 str(model) if model else None, limit))
    if not out:
        # No QuotaFailure detail but "limit:" lines in the text: still a named quota.
        for metric, (limit, model) in from_message.items():
            out.append(Violation(kind_of("", metric), metric, model, limit))
    return out


def day_exhausted(found: Iterable[Violation]) -> Violation | None:
    """The per-day violation, if the day's quota is gone (then retryDelay lies)."""
    for v in found:
        if v.kind == "rpd":
            return v
    return None


# -- the day ------------------------------------------------------------------
def next_reset(now: float) -> float:
    """Epoch seconds of the next midnight Pacific time, when per-day quotas reset."""
    local = datetime.fromtimestamp(now, PACIFIC)
    midnight = datetime(local.year, local.month, local.day, tzinfo=PACIFIC) + timedelta(days=1)
    # Build from the date, not by adding 24 h: days of 23 and 25 h exist (DST).
    return datetime(midnight.year, midnight.month, midnight.day, tzinfo=PACIFIC).timestamp()


def pacific_day(now: float) -> str:
    """The quota day ``now`` falls in, e.g. "2025-06-12" (Pacific date)."""
    return datetime.fromtimestamp(now, PACIFIC).strftime("%Y-%m-%d")


def pacific_month(now: float) -> str:
    return datetime.fromtimestamp(now, PACIFIC).strftime("%Y-%m")


def in_words(seconds: float) -> str:
    """ "5 h 12 m", "12 m", "40 s" """
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m = rest // 60
    if h:
        return f"{h} h {m} m"
    if m:
        return f"{m} m"
    return f"{s} s"


# The latest time a message shows as a date: datetime holds years up to 9999, and
# a time recorded from an absurd server delay (wire/03) or a damaged state entry
# must not raise where it is shown (rules/units.py utc_stamp).
LATEST_SHOWN = 253402300799.0  # 9999-12-31 23:59:59 UTC


def pause_message(model: str, what: str, resume_at: float, now: float) -> str:
    """One line for status, the log and systemd's STATUS: why and until when."""
    local = datetime.fromtimestamp(min(resume_at, LATEST_SHOWN - 86400), PACIFIC)
    return (f"{what} for {model} used; resuming at {local:%H:%M} PT "
            f"(in {in_words(resume_at - now)})")


def day_quota_words(v: Violation | None) -> str:
    if v is not None and v.limit is not None:
        return f"daily quota of {v.limit} requests"
    return "daily quota"


# -- learning -----------------------------------------------------------------
def learned_limit(v: Violation, got_through: int) -> int:
    """What to pace at after a 429: the quota's value, else what the window let through."""
    if v.limit is not None and v.limit > 0:
        return v.limit
    return max(1, got_through)


def bare_backoff(strikes: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds a class holds after its ``strikes``-th bare 429 in a row (no details)."""
    return min(cap, base * 2 ** max(0, strikes - 1))


# Bare 429s for this long without a single success: take it as the day's quota (wire/29).
BARE_DAY_AFTER = 1800.0
