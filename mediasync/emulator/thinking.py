"""Thought tokens: which models think, how much, and what maxOutputTokens leaves over.

Live facts (wire/19, 21): 2.5 models think by default and report
``thoughtsTokenCount``, billed as output and outside ``candidatesTokenCount``;
the key is absent (not 0) without thinking; a thinking budget of 0 turns it off;
maxOutputTokens counts thoughts too, so a small one can end in MAX_TOKENS with
no text at all.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _get(mapping: Any, camel: str, snake: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(camel, mapping.get(snake))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def thinks_by_default(model: str) -> bool:
    """2.5 Flash/Pro and later think unless told not to; Flash-Lite, 2.0 and 1.5 do not."""
    name = model.removeprefix("models/")
    if "lite" in name or not name.startswith("gemini-"):
        return False
    version = name.removeprefix("gemini-").split("-", 1)[0]
    try:
        return float(version) >= 2.5
    except ValueError:
        return False


def thought_tokens(model: str, config: Any, seed: str) -> int | None:
    """Deterministic thought tokens for this request, or None when it does not think."""
    budget = _int(
        _get(_get(config, "thinkingConfig", "thinking_config"), "thinkingBudget", "thinking_budget")
    )
    if budget == 0 or (budget is None and not thinks_by_default(model)):
        return None
    n = 200 + int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 1000
    return min(n, budget) if budget is not None and budget > 0 else n


def max_output_tokens(config: Any) -> int | None:
    value = _int(_get(config, "maxOutputTokens", "max_output_tokens"))
    return value if value is not None and value > 0 else None
