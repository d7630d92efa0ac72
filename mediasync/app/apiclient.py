"""The API client as the commands build it: the key, pacing budgets whose pauses and
learned limits are kept in the store (for `status` and the next start), the usage
ledger and the owner's daily cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mediasync.config import Config, ModelLimits, resolve_api_key
from mediasync.gemini import (
    Budgets,
    ClassLimits,
    ConfigPause,
    FlexFallback,
    GeminiClient,
    Pause,
    Usage,
    generate_class,
)
from mediasync.gemini.quota import pacific_day
from mediasync.gemini.redact import register_secret
from mediasync.report import costs
from mediasync.store import Meta, Store

EventHook = Callable[..., Any]  # an httpx event hook (sync or async)


def _class_limits(m: ModelLimits) -> ClassLimits:
    return ClassLimits(m.requests_per_minute, m.input_tokens_per_minute, m.requests_per_day)


def load_pauses(store: Store) -> list[Pause]:
    try:
        return [Pause.from_json(d) for d in store.read(Meta.QUOTA_PAUSES)]
    except (ValueError, KeyError, TypeError):
        return []  # unreadable: the next 429 says it again


def load_held(store: Store) -> list[ConfigPause]:
    held = []
    for d in store.read(Meta.HELD):
        try:
            held.append(ConfigPause.from_json(d))
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: the start-up look or the next 404 says it again
    return held


def load_learned(store: Store) -> object:
    return store.read(Meta.LEARNED_LIMITS)  # unreadable: {}; the next 429 teaches again


def make_budgets(config: Config, store: Store) -> Budgets:
    """Pacing by class. Pauses and learned limits go to the store (for `status`, and
    for a restart); today's requests per model come back from the usage ledger."""
    lim = config.limits

    def persist(_: Pause) -> None:
        store.write(Meta.QUOTA_PAUSES, [p.to_json() for p in budgets.active_pauses()])

    def persist_learned() -> None:
        store.write(Meta.LEARNED_LIMITS, budgets.learned())

    budgets = Budgets(
        files_rpm=lim.file_requests_per_minute,
        generate=_class_limits(lim.generate),
        per_model={m: _class_limits(v) for m, v in lim.models.items()},
        on_pause=persist,
        on_learn=persist_learned,
    )
    budgets.restore(load_pauses(store))
    budgets.restore_learned(load_learned(store))
    budgets.restore_held(load_held(store))
    budgets.on_hold = lambda: store.write(Meta.HELD, [p.to_json() for p in
                                                      budgets.held.values()])
    today = pacific_day(time.time())
    made: dict[str, int] = {}
    for _, model, requests, *_, tier in store.usage(day=today):
        if tier != "batch":  # batch answers count against the Batch API's own limits
            made[model] = made.get(model, 0) + requests  # every interactive tier
    for model, requests in made.items():
        budgets.restore_day(generate_class(model), today, requests)
    _check_cap(config, store, budgets)
    return budgets


def _check_cap(config: Config, store: Store, budgets: Budgets) -> None:
    """The owner's daily cap: once today's spend reaches it, no generation until tomorrow."""
    if config.limits.max_daily_tokens is None and config.limits.max_daily_cost is None:
        return
    # Called after every answer: read today's rows only, not the whole ledger.
    now = time.time()
    today = store.usage(day=pacific_day(now))
    what = costs.cap_reached(costs.today(today, config.prices, now), config.limits)
    if what is not None:
        budgets.pause("generate:*", what, "all models")


def make_client(config: Config, env: Mapping[str, str], *, store: Store | None = None,
                budgets: Budgets | None = None,
                event_hooks: Mapping[str, list[EventHook]] | None = None) -> GeminiClient:
    """The client of the configured service and key. ``event_hooks`` (httpx's) see
    every raw request and answer, e.g. for `check --live`."""
    key = resolve_api_key(config.api, env)
    register_secret(key)
    if budgets is None and store is not None:
        budgets = make_budgets(config, store)
    http = None
    if event_hooks:
        http = httpx.AsyncClient(timeout=httpx.Timeout(config.api.timeout),
                                 event_hooks=dict(event_hooks))
    client = GeminiClient(
        key,
        config.api.base_url,
        config.api.api_version,
        budgets=budgets,
        timeout=config.api.timeout,
        http=http,
        flex=FlexFallback(config.api.flex_fallback, config.api.flex_fallback_after),
        flex_timeout=config.api.flex_timeout,
    )
    if store is not None and budgets is not None:
        def on_usage(model: str, usage: Usage, tier: str) -> None:
            store.add_usage(pacific_day(time.time()), model, usage.prompt_tokens,
                            usage.candidates_tokens, usage.thoughts_tokens, tier)
            _check_cap(config, store, budgets)

        client.on_usage = on_usage
    return client


def pause_lines(budgets: Budgets | None) -> list[str]:
    if budgets is None:
        return []
    now = time.time()
    return [p.message(now) for p in budgets.active_pauses()]


def held_lines(budgets: Budgets | None) -> list[str]:
    """One line per model or tier held for the config (the STATUS line, `sync`)."""
    return [] if budgets is None else [p.message for p in budgets.held.values()]
