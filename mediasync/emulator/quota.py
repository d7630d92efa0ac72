"""Per-model generation quotas, refused the way the live service refuses them.

Requests a minute, input tokens a minute (both over a sliding 60 s window, the
reading hardest on a client that bursts) and requests a day (reset at midnight
Pacific time by the emulator's clock). A refusal is a 429 RESOURCE_EXHAUSTED
shaped as wire/25–29:

* ``full`` (default): details in the late-2025 order Help, QuotaFailure,
  RetryInfo; each violation with ``quotaDimensions`` {location, model} and
  ``quotaValue`` (a string); the message lists ``* Quota exceeded for metric:
  …, limit: N, model: M`` and ends ``Please retry in 12.345678901s.`` (wire/28).
* ``novalue``: the same violations without ``quotaValue`` and a message without
  limit lines (wire/25's message, wire/26–27's violations).
* ``bare``: only a Help detail, no QuotaFailure, no RetryInfo (wire/29).

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

from .errors import ApiError
from .generate import media_tokens

PACIFIC = ZoneInfo("America/Los_Angeles")
SHAPES = ("full", "novalue", "bare")
_HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
_HEAD = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/"
    "rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. "
)


@dataclass(frozen=True)
class QuotaLimits:
    """None: unlimited. ``tier`` names the quotas as the free or the paid tier does."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tier: str = "free"
    shape: str = "full"


def _ids(tier: str) -> dict[str, tuple[str, str]]:
    """kind -> (quotaMetric, quotaId) as the live service names them (wire/25–28)."""
    t = "free_tier" if tier == "free" else "paid_tier"
    suffix = "-FreeTier" if tier == "free" else ""
    metric = "generativelanguage.googleapis.com/generate_content_"
    tokens_id = ("GenerateContentInputTokensPerModelPerMinute-FreeTier" if tier == "free"
                 else "GenerateContentPaidTierInputTokensPerModelPerMinute")
    return {
        "rpm": (f"{metric}{t}_requests", f"GenerateRequestsPerMinutePerProjectPerModel{suffix}"),
        "tpm": (f"{metric}{t}_input_token_count", tokens_id),
        "rpd": (f"{metric}{t}_requests", f"GenerateRequestsPerDayPerProjectPerModel{suffix}"),
    }


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
        if self.limits.shape not in SHAPES:
            raise ValueError(f"quota shape must be one of {', '.join(SHAPES)}")
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
                raise self._refusal(model, over, delay)
            m.requests.append(now)
            m.tokens.append((now, tokens))
            m.day_count += 1
            self.admitted[model] = self.admitted.get(model, 0) + 1

    def _refusal(self, model: str, over: list[str], delay: float) -> ApiError:
        lim = self.limits
        if lim.shape == "bare":
            return ApiError(429, _HEAD, "RESOURCE_EXHAUSTED", [_HELP])
        ids = _ids(lim.tier)
        values = {"rpm": lim.rpm, "tpm": lim.tpm, "rpd": lim.rpd}
        violations = []
        lines = []
        for kind in over:
            metric, quota_id = ids[kind]
            v: dict[str, Any] = {
                "quotaMetric": metric,
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
            }
            if lim.shape == "full":
                v["quotaValue"] = str(values[kind])
                lines.append(f"\n* Quota exceeded for metric: {metric}, limit: {values[kind]}"
                             f", model: {model}")
            violations.append(v)
        message = _HEAD + "".join(lines) + f"\nPlease retry in {delay:.9f}s."
        details = [
            _HELP,
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{int(delay)}s"},
        ]
        return ApiError(429, message, "RESOURCE_EXHAUSTED", details)


def input_tokens(records: list[Any], prompt: str) -> int:
    """The request's input tokens, counted as generate.answer counts them."""
    text = max(1, len(prompt) // 4) if prompt else 0
    return text + sum(media_tokens(r)[1] for r in records)
