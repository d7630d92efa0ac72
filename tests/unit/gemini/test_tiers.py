"""Flex refused for load, and the fall back to standard the owner may allow (pure)."""

from __future__ import annotations

from mediasync.gemini import ApiError, ConfigPaused, FlexFallback, QuotaPaused, flex_refusal
from mediasync.gemini.errors import TransportError
from mediasync.gemini.pacing import Pause, model_pause

SHED = ApiError(503, "UNAVAILABLE", "The flex service tier is at capacity.")


def test_a_refusal_is_any_transient_failure_of_a_flex_call() -> None:
    assert flex_refusal(SHED)
    assert flex_refusal(ApiError(429, "RESOURCE_EXHAUSTED", "busy"))
    assert flex_refusal(TransportError("DEADLINE_EXCEEDED", "read timed out"))
    assert not flex_refusal(ApiError(400, "INVALID_ARGUMENT", "bad request"))
    assert not flex_refusal(QuotaPaused(Pause("generate:m", 10.0, "q", "m"), 0.0))
    assert not flex_refusal(ConfigPaused(model_pause("m", "404", 0.0)))


def test_no_fall_back_unless_allowed() -> None:
    f = FlexFallback(allowed=False, after=2)
    for _ in range(5):
        assert not f.refused("m", SHED)
    assert f.tier("m", "flex") == "flex" and f.fallbacks == 0


def test_after_n_refusals_in_a_row_standard_for_a_while_then_flex_again() -> None:
    now = [1000.0]
    f = FlexFallback(allowed=True, after=3, hold=600.0, clock=lambda: now[0])
    assert not f.refused("m", SHED)
    f.served("m")  # a success in between: the count starts again
    assert not f.refused("m", SHED) and not f.refused("m", SHED)
    assert f.refused("m", SHED)  # the third in a row
    assert f.tier("m", "flex") == "standard" and f.tier("other", "flex") == "flex"
    assert f.tier("m", "priority") == "priority" and f.tier("m", None) is None
    now[0] += 601
    assert f.tier("m", "flex") == "flex" and f.fallbacks == 1
