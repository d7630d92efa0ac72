"""Per-model generation quotas, refused the way the live service refuses them.

Requests a minute, input tokens a minute (both over a sliding 60 s window, the
reading hardest on a client that bursts) and requests a day (reset at midnight
Pacific time by the emulator's clock). A refusal is a 429 RESOURCE_EXHAUSTED
worded as ``errors.rate_quota_exceeded`` words it (wire/25–29), in the tier and
shape the emulator was given: ``full`` (late 2025 on, the default), ``novalue``
(mid 2025) or ``bare`` (a Help detail only).

Once the day's quota is gone the RetryInfo still says a few seconds: the live
service's ``retryDelay`` is short and misleading then (wire/27, 29).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import DEFAULT_LIMITS, QUOTA_SHAPES, TIERS, ApiError, rate_quota_exceeded

PACIFIC = ZoneInfo("America/Los_Angeles")


@dataclass(frozen=True)
class QuotaLimits:
    """None: unlimited. ``tier`` names the quotas as the free or the paid tier does."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tier: str = "free"
    shape: str = "full"


def next_reset(now: float) -> float:
    local = datetime.fromtimestamp(now, PACIFIC)
    day = datetime(local.year, local.month, local.day, tzinfo=PACIFIC) + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


class _Model:
    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.day_reset = 0.0
        self.day_count = 0


class Quotas:
    """Thread-safe admission of generateContent calls, per model."""

    def __init__(self, limits: QuotaLimits | None = None) -> None:
        self.limits = limits or QuotaLimits()
        if self.limits.shape not in QUOTA_SHAPES:
            raise ValueError(f"quota shape must be one of {', '.join(QUOTA_SHAPES)}")
        if self.limits.tier not in TIERS:
            raise ValueError(f"quota tier must be one of {', '.join(TIERS)}")
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()
        self.refused: dict[str, dict[str, int]] = {}
        self.admitted: dict[str, int] = {}

    def set(self, **changes: Any) -> None:
        """Change limits while serving (tests): QuotaLimits fields."""
        with self._lock:
            self.limits = QuotaLimits(**{**self.limits.__dict__, **changes})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"admitted": dict(self.admitted),
                    "refused": {m: dict(k) for m, k in self.refused.items()}}

    def admit(self, model: str, tokens: int, now: float) -> None:
        """Count the call, or raise the 429 the live service would send."""
        lim = self.limits
        if lim.rpm is None and lim.tpm is None and lim.rpd is None:
            return
        with self._lock:
            m = self._models.setdefault(model, _Model())
            while m.requests and m.requests[0] <= now - 60:
                m.requests.popleft()
            while m.tokens and m.tokens[0][0] <= now - 60:
                m.tokens.popleft()
            if now >= m.day_reset:
                m.day_reset, m.day_count = next_reset(now), 0
            over: list[str] = []
            if lim.rpd is not None and m.day_count >= lim.rpd:
                over.append("rpd")
            if lim.rpm is not None and len(m.requests) >= lim.rpm:
                over.append("rpm")
            if lim.tpm is not None and sum(n for _, n in m.tokens) + tokens > lim.tpm:
                over.append("tpm")
            if over:
                counts = self.refused.setdefault(model, {})
                for k in over:
                    counts[k] = counts.get(k, 0) + 1
                # Short even when the day is gone: the live service's delay misleads.
                oldest = m.requests[0] if m.requests else now - 60 + (now % 60)
                delay = min(59.0, max(1.0, oldest + 60 - now)) + 0.434392449
                raise self.refusal(model, over, delay)
            m.requests.append(now)
            m.tokens.append((now, tokens))
            m.day_count += 1
            self.admitted[model] = self.admitted.get(model, 0) + 1

    def refusal(self, model: str, over: list[str], delay: float) -> ApiError:
        """The 429 naming the quotas in ``over`` ("rpm", "tpm", "rpd") in this
        emulator's tier and shape; a quota with no limit set (an injected fault)
        names the tier's usual one."""
        lim = self.limits
        values = {"rpm": lim.rpm, "tpm": lim.tpm, "rpd": lim.rpd}
        usual = DEFAULT_LIMITS[lim.tier]
        named = [(kind, values[kind] if values[kind] is not None else usual[kind])
                 for kind in over]
        return rate_quota_exceeded(named, model, delay, tier=lim.tier, shape=lim.shape)
