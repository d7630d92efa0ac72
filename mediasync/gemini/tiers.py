"""Service tiers on the client's side: Flex refused for load, and the fall back to
standard the owner may allow (``api.flex_fallback``).

Flex "may be refused under load" (files-api.md, "Service tiers"): a refusal is transient
(a 503 or a 429 that names no quota; time-outs too) and never a verdict on the file.
After ``after`` refusals in a row of one model, with the fall back allowed, that model's
calls go at standard for ``hold`` seconds, then Flex is tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .errors import ApiError
from .pacing import ConfigPaused, QuotaPaused

log = logging.getLogger("mediasync.gemini")

FLEX = "flex"
STANDARD_FOR = 1800.0  # after a fall back, Flex is tried again this much later


def flex_refusal(error: ApiError) -> bool:
    """Whether a Flex call's failure is the tier shedding load (transient), not the
    request's own fault."""
    if isinstance(error, QuotaPaused | ConfigPaused):
        return False
    return error.retryable and not error.storage_full


class FlexFallback:
    """Consecutive Flex refusals per model, and the standard tier while falling back."""

    def __init__(self, allowed: bool = False, after: int = 3, *,
                 hold: float = STANDARD_FOR, clock: Callable[[], float] = time.time) -> None:
        self.allowed = allowed
        self.after = max(1, after)
        self.hold = hold
        self._clock = clock
        self._refusals: dict[str, int] = {}
        self._standard_until: dict[str, float] = {}
        self.fallbacks = 0  # times a fall back began (benchmarks, tests)

    def tier(self, model: str, asked: str | None) -> str | None:
        """The tier to ask for: ``asked``, or standard while falling back from Flex."""
        if asked != FLEX or not self.allowed:
            return asked
        return "standard" if self._clock() < self._standard_until.get(model, 0.0) else FLEX

    def refused(self, model: str, error: ApiError) -> bool:
        """A Flex call of ``model`` was refused; True when the call should go again now,
        at standard (the fall back began)."""
        n = self._refusals[model] = self._refusals.get(model, 0) + 1
        if not self.allowed or n < self.after:
            log.info("%s: Flex refused (%s); %d in a row", model, error, n)
            return False
        self._refusals[model] = 0
        self._standard_until[model] = self._clock() + self.hold
        self.fallbacks += 1
        log.warning("%s: Flex refused %d times in a row; standard tier for the next %.0f "
                    "minutes (api.flex_fallback = true)", model, n, self.hold / 60)
        return True

    def served(self, model: str) -> None:
        self._refusals.pop(model, None)
