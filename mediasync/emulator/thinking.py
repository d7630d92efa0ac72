"""Thinking: which knob each model family takes, what it refuses, how many thought tokens.

Live facts (wire/19, 21): 2.5 models think by default and report ``thoughtsTokenCount``,
billed as output and outside ``candidatesTokenCount``; the key is absent (not 0) without
thinking; a thinking budget of 0 turns it off (not on 2.5 Pro); maxOutputTokens counts
thoughts too, so a small one can end in MAX_TOKENS with no text at all.

From documentation and reports (files-api.md, "Models"; docs/service.md): Gemini 3
models take ``thinkingLevel`` (MINIMAL, LOW, MEDIUM, HIGH; Pro only LOW and HIGH) and
still read a ``thinkingBudget`` for older clients; sending both is a 400; 3.x Flash
cannot turn thinking fully off (MINIMAL still thinks a little), Flash-Lite does not
think unless asked. The 400 messages are ours: no capture shows their wording.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .errors import ApiError
from .models import ModelSpec

BOTH = ("thinking_budget and thinking_level are mutually exclusive: set only one of them "
        "in thinkingConfig.")
# Thought tokens per level: a base and a spread, drawn from the request (deterministic).
_LEVEL_TOKENS = {"MINIMAL": (8, 40), "LOW": (100, 300), "MEDIUM": (400, 1000),
                 "HIGH": (1000, 2000)}


def _get(mapping: Any, camel: str, snake: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(camel, mapping.get(snake))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def knobs(config: Any) -> tuple[int | None, str | None]:
    """(thinkingBudget, thinkingLevel) of a generationConfig, either spelling."""
    tc = _get(config, "thinkingConfig", "thinking_config")
    budget = _int(_get(tc, "thinkingBudget", "thinking_budget"))
    level = _get(tc, "thinkingLevel", "thinking_level")
    return budget, (str(level).upper() if level is not None else None)


def check(spec: ModelSpec, config: Any) -> None:
    """Refuse a thinkingConfig this model does not take, as a 400."""
    budget, level = knobs(config)
    if budget is not None and level is not None:
        raise ApiError(400, BOTH)
    name = f"models/{spec.id}"
    if level is not None:
        if spec.family != "3":
            raise ApiError(400, f"Thinking level is not supported for {name}; "
                                "use thinking_budget.")
        if level not in spec.levels:
            raise ApiError(400, f"Thinking level {level} is not supported for {name}. "
                                f"Supported levels: {', '.join(spec.levels)}.")
    if budget is not None:
        if spec.family == "2.0" and budget != 0:
            raise ApiError(400, f"Thinking is not supported for {name}.")
        if spec.family == "2.5" and budget == 0 and not spec.can_turn_off:
            raise ApiError(400, "Budget 0 is invalid. This model only works in thinking mode.")


def _draw(level: str, seed: str) -> int:
    base, spread = _LEVEL_TOKENS[level]
    return base + int(hashlib.sha256((seed + level).encode()).hexdigest()[:8], 16) % spread


def _level_of_budget(budget: int) -> str:
    return "LOW" if budget <= 1024 else "MEDIUM" if budget <= 8192 else "HIGH"


def thought_tokens(spec: ModelSpec, config: Any, seed: str) -> int | None:
    """Deterministic thought tokens for this request, or None when it does not think
    (then ``thoughtsTokenCount`` is absent)."""
    budget, level = knobs(config)
    if spec.family == "2.0":
        return None
    if spec.family == "2.5":
        if budget == 0 or (budget is None and spec.default_level is None):
            return None
        n = 200 + int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 1000
        return min(n, budget) if budget is not None and budget > 0 else n
    if level is None and budget is not None and budget != -1:
        level = "MINIMAL" if budget == 0 else _level_of_budget(budget)
    level = level or spec.default_level
    if level is None or (level == "MINIMAL" and not spec.minimal_thinks):
        return None
    n = _draw(level, seed)
    return min(n, budget) if budget is not None and budget > 0 else n


def max_output_tokens(config: Any) -> int | None:
    value = _int(_get(config, "maxOutputTokens", "max_output_tokens"))
    return value if value is not None and value > 0 else None
