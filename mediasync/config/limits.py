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

from .families import THINKING_WORDS, Thinking, family, parse_thinking, thinking_request
from .values import ConfigError, as_choice, as_pos_int, as_str, as_table, check_keys

# The keys of a folder or prompt table that are cost knobs.
COST_KEYS = ("thinking", "thinking_budget", "media_resolution", "max_output_tokens",
             "temperature", "system_instruction", "service_tier")
# generateContent's top-level serviceTier: Flex costs half and answers in minutes,
# Priority costs more (docs/service.md, "Service tiers").
SERVICE_TIERS = ("flex", "standard", "priority")

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
    """US dollars per million tokens (thought tokens are billed as output) on the
    standard tier; ``changes``: (first Pacific day, price) of announced changes."""

    input: float
    output: float
    changes: tuple[tuple[str, Price], ...] = ()

    def on(self, day: str) -> Price:
        """The price of a call made on ``day`` (YYYY-MM-DD, Pacific)."""
        current = self
        for first, price in self.changes:
            if day >= first:
                current = price
        return current


# Standard (not batch) paid-tier prices per 1M tokens for text/image/video input, prompts
# ≤ 200k tokens, from ai.google.dev/gemini-api/docs/pricing. Each row's source and the date
# it was read are in docs/service.md ("Prices"); a model not listed here is counted in
# tokens with "price unknown", never at another model's price. Override with
# [prices."model"].
DEFAULT_PRICES: dict[str, Price] = {
    # read 2026-09-20 and 2026-10-07 (the page's own dates: $0.75/$3.75 "through
    # December 31, 2026", $1.50/$7.50 "starting January 1, 2027")
    "gemini-3.8-flash": Price(0.75, 3.75, (("2027-01-01", Price(1.50, 7.50)),)),
    "gemini-3.5-flash": Price(1.50, 9.00),  # read 2026-09-20, 2026-10-07
    "gemini-3.5-flash-lite": Price(0.30, 2.50),  # read 2026-10-07
    "gemini-3.1-pro-preview": Price(2.00, 12.00),  # read 2026-09-20, 2026-10-07
    "gemini-3.1-flash-lite": Price(0.25, 1.50),  # the page of 2026-03-03, as quoted 2026-04
    "gemini-3-flash-preview": Price(0.50, 3.00),  # read early 2026
    # 2025 rows, unchanged in the readings of 2026-10-07; 2.5 Flash and Pro retire on
    # 2026-12-01 (docs/service.md), kept for the ledger of earlier calls
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}
# What a service tier costs against standard (ai.google.dev/gemini-api/docs/optimization,
# read 2026-10): Flex "50% discount"; Priority "75% to 100% more than standard", counted
# at the upper bound so the daily cost cap is never passed because of our estimate.
# The Batch API costs half of interactive (ai.google.dev/gemini-api/docs/batch-mode);
# the ledger keeps its answers under the tier "batch".
TIER_FACTORS = {"flex": 0.5, "standard": 1.0, "priority": 2.0, "batch": 0.5}


@dataclass(frozen=True)
class KnobRequest:
    """What a prompt's knobs send to one model: the generationConfig, the top-level
    serviceTier (None: the service's default, standard) and notes to log once where
    the model cannot do what was asked."""

    generation_config: dict[str, Any]
    service_tier: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Knobs:
    """Cost knobs of a folder or prompt (None: not set here, the service's default)."""

    thinking: Thinking | None = None  # "off", a level, or a token budget (thinking_budget)
    media_resolution: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    system_instruction: str | None = None
    service_tier: str | None = None

    def over(self, other: Knobs | None) -> Knobs:
        """These knobs with ``other``'s set ones on top."""
        if other is None:
            return self
        return Knobs(**{k: v if v is not None else getattr(self, k)
                        for k, v in other.__dict__.items()})

    def request(self, model: str, thinks: bool | None = None) -> KnobRequest:
        """The request fields for ``model``, by its family (config/families.py);
        ``thinks``: the models.get answer's ``thinking`` flag, when known."""
        fam = family(model, thinks)
        out: dict[str, Any] = {}
        notes: list[str] = []
        thinking = thinking_request(self.thinking, fam, model)
        if thinking.config is not None:
            out["thinkingConfig"] = thinking.config
        if thinking.note:
            notes.append(thinking.note)
        if self.media_resolution is not None:
            if fam.resolution:
                out["mediaResolution"] = MEDIA_RESOLUTIONS[self.media_resolution]
            else:
                notes.append(f"{model} does not take media_resolution; it is not sent")
        if self.max_output_tokens is not None:
            out["maxOutputTokens"] = self.max_output_tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        tier = self.service_tier if self.service_tier != "standard" else None
        return KnobRequest(out, tier, tuple(notes))

    def generation_config(self, model: str, thinks: bool | None = None) -> dict[str, Any]:
        return self.request(model, thinks).generation_config


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
    thinking = _thinking(t, where)
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
    tier = t.get("service_tier")
    if tier is not None:
        tier = as_choice(tier, SERVICE_TIERS, f"{where}.service_tier")
    return Knobs(thinking, mr, mo, float(temp) if temp is not None else None, si, tier)


def _thinking(t: Mapping[str, Any], where: str) -> Thinking | None:
    """`thinking` (a word or a budget), or the older `thinking_budget` (a budget)."""
    if "thinking" in t and "thinking_budget" in t:
        raise ConfigError("set thinking or thinking_budget, not both (thinking_budget = N "
                          "is thinking = N)", key=f"{where}.thinking_budget")
    if "thinking_budget" in t:
        tb = t["thinking_budget"]
        if isinstance(tb, bool) or not isinstance(tb, int) or tb < -1:
            raise ConfigError(f"must be an integer ≥ 0 (0 turns thinking off; -1: the model "
                              f"decides), not {tb!r}", key=f"{where}.thinking_budget")
        return tb
    if "thinking" not in t:
        return None
    value = parse_thinking(t["thinking"])
    if value is None:
        raise ConfigError(f"{t['thinking']!r} is not one of {', '.join(THINKING_WORDS)} or a "
                          "token budget (an integer ≥ 0; -1: the model decides)",
                          key=f"{where}.thinking")
    return value


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


