"""The API client as the commands build it: the key, pacing budgets whose pauses and
learned limits are kept in the store (for `status` and the next start), the usage
ledger and the owner's daily cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mediasync.app.cap import CAP_CLASS, DailyCap
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
from mediasync.store import Meta, Store

EventHook = Callable[..., Any]  # an httpx event hook (sync or async)


def _class_limits(m: ModelLimits) -> ClassLimits:
    return ClassLimits(m.requests_per_minute, m.input_tokens_per_minute, m.requests_per_day)


def load_pauses(store: Store) -> list[Pause]:
    """The service's pauses an earlier run recorded. The owner's cap is not one of
    them: it is read from the current config (app/cap.py), so an old cap pause, as
    earlier versions kept it, is dropped here (it outlived the owner's fix)."""
    try:
        pauses = [Pause.from_json(d) for d in store.read(Meta.QUOTA_PAUSES)]
    except (ValueError, KeyError, TypeError):
        return []  # unreadable: the next 429 says it again
    return [p for p in pauses if p.cls != CAP_CLASS]


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

    def persist(_: Pause | None = None) -> None:
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
    if [p.to_json() for p in budgets.active_pauses()] != store.read(Meta.QUOTA_PAUSES):
        persist()  # what is kept is what holds: an old cap pause, a day gone by, dropped
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
    return budgets


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

        client.on_usage = on_usage
        # The owner's cap, from this config: a reload or restart re-reads it.
        client.gate = DailyCap(config.limits, config.prices, store)
    return client


def pause_lines(budgets: Budgets | None, client: GeminiClient | None = None) -> list[str]:
    """Why generation (or file calls) wait now: the service's pauses and the cap."""
    now = time.time()
    pauses = budgets.active_pauses() if budgets is not None else []
    cap = client.gate.paused() if client is not None and isinstance(
        client.gate, DailyCap) else None
    return [p.message(now) for p in [*pauses, *([cap] if cap else [])]]


def held_lines(budgets: Budgets | None) -> list[str]:
    """One line per model or tier held for the config (the STATUS line, `sync`)."""
    return [] if budgets is None else [p.message for p in budgets.held.values()]
