"""The costs-and-limits part of the config: ``[limits]``, ``[prices]`` and the cost knobs.

Kept apart from the rest of the parser (issue 9): the cost knobs of folders and
prompts (:class:`Knobs`, passed through generationConfig), pinned rate limits
(:class:`LimitsConfig`) and the prices the usage ledger charges (:class:`Price`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import ConfigError, as_pos_int, as_str, as_table, check_keys

# The keys of a folder or prompt table that are cost knobs.
COST_KEYS = ("thinking_budget", "media_resolution", "max_output_tokens", "temperature",
             "system_instruction")


MEDIA_RESOLUTIONS = {"low": "MEDIA_RESOLUTION_LOW", "medium": "MEDIA_RESOLUTION_MEDIUM",
                     "high": "MEDIA_RESOLUTION_HIGH"}
# Per model, generation: requests a minute, input tokens a minute, requests a day.
# Published for gemini-2.5-flash: free tier 10 / 250,000 / 250 (lower since);
# Tier 1 1,000 / 1,000,000 / 10,000 (ai.google.dev/gemini-api/docs/rate-limits).
TIERS = {"free": (10, 250_000, 250), "paid": (1_000, 1_000_000, 10_000)}
_LIMIT_KEYS = ("tier", "requests_per_minute", "input_tokens_per_minute", "requests_per_day",
               "file_requests_per_minute", "max_daily_tokens", "max_daily_cost", "models")
_MODEL_LIMIT_KEYS = ("requests_per_minute", "input_tokens_per_minute", "requests_per_day")


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens (thought tokens are billed as output)."""

    input: float
    output: float


# Standard (not batch) paid-tier prices per 1M tokens for text/image/video input,
# from ai.google.dev/gemini-api/docs/pricing as read in 2025, unchanged in listings
# of it checked in November 2026 (prompts ≤ 200k tokens;
# 2.5 Flash audio input costs more, $1.00). Override with [prices."model"].
DEFAULT_PRICES: dict[str, Price] = {
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}


@dataclass(frozen=True)
class Knobs:
    """Cost knobs passed through generationConfig (None: the service's default)."""

    thinking_budget: int | None = None
    media_resolution: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    system_instruction: str | None = None

    def over(self, other: Knobs | None) -> Knobs:
        """These knobs with ``other``'s set ones on top."""
        if other is None:
            return self
        return Knobs(**{k: v if v is not None else getattr(self, k)
                        for k, v in other.__dict__.items()})

    def generation_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.thinking_budget is not None:
            out["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        if self.media_resolution is not None:
            out["mediaResolution"] = MEDIA_RESOLUTIONS[self.media_resolution]
        if self.max_output_tokens is not None:
            out["maxOutputTokens"] = self.max_output_tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out


@dataclass(frozen=True)
class ModelLimits:
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    requests_per_day: int | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Pinned limits; anything unset is learned from the service's 429s."""

    generate: ModelLimits = ModelLimits()
    models: Mapping[str, ModelLimits] = field(default_factory=dict)
    file_requests_per_minute: int = 600
    max_daily_tokens: int | None = None
    max_daily_cost: float | None = None


def parse_knobs(t: Mapping[str, Any], where: str) -> Knobs | None:
    if not any(k in t for k in COST_KEYS):
        return None
    tb = t.get("thinking_budget")
    if tb is not None and (isinstance(tb, bool) or not isinstance(tb, int) or tb < -1):
        raise ConfigError(f"must be an integer ≥ 0 (0 turns thinking off; -1: the model "
                          f"decides), not {tb!r}", key=f"{where}.thinking_budget")
    mr = t.get("media_resolution")
    if mr is not None and mr not in MEDIA_RESOLUTIONS:
        raise ConfigError(f"{mr!r} is not one of {', '.join(MEDIA_RESOLUTIONS)}",
                          key=f"{where}.media_resolution")
    mo = t.get("max_output_tokens")
    if mo is not None:
        mo = as_pos_int(mo, f"{where}.max_output_tokens")
    temp = t.get("temperature")
    if temp is not None and (isinstance(temp, bool) or not isinstance(temp, int | float)
                             or not 0 <= temp <= 2):
        raise ConfigError(f"must be a number from 0 to 2, not {temp!r}",
                          key=f"{where}.temperature")
    si = t.get("system_instruction")
    if si is not None:
        si = as_str(si, f"{where}.system_instruction")
    return Knobs(tb, mr, mo, float(temp) if temp is not None else None, si)


def _opt_pos_int(t: Mapping[str, Any], k: str, where: str) -> int | None:
    return as_pos_int(t[k], f"{where}.{k}") if k in t else None


def _model_limits(t: Mapping[str, Any], where: str, base: ModelLimits) -> ModelLimits:
    return ModelLimits(
        _opt_pos_int(t, "requests_per_minute", where) or base.requests_per_minute,
        _opt_pos_int(t, "input_tokens_per_minute", where) or base.input_tokens_per_minute,
        _opt_pos_int(t, "requests_per_day", where) or base.requests_per_day,
    )


def parse_limits(raw: Any, daemon_rpm: int) -> LimitsConfig:
    """The [limits] table; ``daemon_rpm`` is the parsed daemon.requests_per_minute."""
    t = as_table(raw, "limits")
    check_keys(t, _LIMIT_KEYS, "limits")
    base = ModelLimits()
    if "tier" in t:
        tier = t["tier"]
        if tier not in TIERS:
            raise ConfigError(f"{tier!r} is not one of {', '.join(TIERS)}", key="limits.tier")
        base = ModelLimits(*TIERS[tier])
    generate = _model_limits(t, "limits", base)
    models = {}
    for name, mt in as_table(t.get("models", {}), "limits.models").items():
        where = f"limits.models.{json.dumps(name)}"
        mt = as_table(mt, where)
        check_keys(mt, _MODEL_LIMIT_KEYS, where)
        models[name] = _model_limits(mt, where, ModelLimits())
    # daemon.requests_per_minute is kept: it now paces file operations only.
    files = _opt_pos_int(t, "file_requests_per_minute", "limits") or daemon_rpm
    cost = t.get("max_daily_cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)
                             or cost <= 0):
        raise ConfigError(f"must be a positive number of US dollars, not {cost!r}",
                          key="limits.max_daily_cost")
    return LimitsConfig(generate, models, files, _opt_pos_int(t, "max_daily_tokens", "limits"),
                        float(cost) if cost is not None else None)


def parse_prices(raw: Any) -> dict[str, Price]:
    prices = dict(DEFAULT_PRICES)
    for name, pt in as_table(raw, "prices").items():
        where = f"prices.{json.dumps(name)}"
        pt = as_table(pt, where)
        check_keys(pt, ("input", "output"), where)
        vals = []
        for k in ("input", "output"):
            v = pt.get(k)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"must be US dollars per million tokens, not {v!r}",
                                  key=f"{where}.{k}")
            vals.append(float(v))
        prices[name] = Price(*vals)
    return prices


