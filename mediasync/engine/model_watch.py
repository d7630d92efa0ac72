"""The models the config names, as the service lists them (issue 16).

A model the service no longer serves answers every call with 404 (wire/41): a fact about
the config, not about any file. The first 404 holds the model in the budgets
(``Budgets.hold``: no later call goes out, one log line, kept in the store for
`status`); this part looks the configured models up with ``models.get`` when the engine
starts, on every reload and at every listing, so that
- a restart with the same bad model holds it before any generation (no wave at all);
- a model that exists but does not answer generateContent is held the same way;
- a hold ends when the config no longer names the model (a reload with a good one), or
  when the service lists it again; then every path is looked at again.
A look that fails for a transient cause changes nothing: never "missing" for a 503.
"""

from __future__ import annotations

import logging

from mediasync.engine.context import Context
from mediasync.gemini import ApiError, ModelInfo, model_pause
from mediasync.rules.failures import classify

log = logging.getLogger("mediasync")


class ModelWatch:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._infos: dict[str, ModelInfo] = {}
        self._said: set[str] = set()  # holds confirmed and logged in this run
        self._earlier: set[str] | None = None  # holds an earlier run recorded (said by none)

    def thinks(self, model: str) -> bool | None:
        """The models.get answer's ``thinking`` flag, when one was read."""
        info = self._infos.get(model.removeprefix("models/"))
        return info.thinking if info is not None else None

    async def look(self) -> bool:
        """Look up every configured model; True when a hold ended (look at paths again).
        Raises ApiError only for a refused key (the caller halts)."""
        client = self._ctx.client
        budgets = client.budgets
        if budgets is None:
            return False
        configured = self._ctx.config.models()
        if self._earlier is None:
            self._earlier = set(budgets.held)
        lifted = False
        for key, pause in list(budgets.held.items()):
            # A reload is the owner's fix: holds of models no longer named, and of tiers,
            # end here (a tier still refused is held again by its first answer).
            if key.startswith("tier:") or pause.subject not in configured:
                lifted |= budgets.release(key)
        for model, where in configured.items():
            try:
                info = await client.get_model(model)
            except ApiError as e:
                if classify(e) == "auth":
                    raise
                if e.model_missing:
                    self._hold(model, f"{where}: {e}")
                else:
                    log.info("could not look up model %s now (%s); trying it anyway", model, e)
                continue
            self._infos[model] = info
            if not info.generates:
                methods = ", ".join(info.methods) or "none"
                self._hold(model, f"{where}: {model} does not support generateContent "
                                  f"(it supports {methods})")
            elif budgets.release(f"model:{model}"):
                log.info("model %s is available again; resuming its outputs", model)
                lifted = True
        return lifted

    def _hold(self, model: str, why: str) -> None:
        budgets = self._ctx.client.budgets
        assert budgets is not None
        key = f"model:{model}"
        already = budgets.holding(key)
        budgets.hold(model_pause(model, why, self._ctx.clock()))  # says it when new
        if already is not None and key in (self._earlier or ()) and key not in self._said:
            log.error("%s (%s)", already.message, why)  # held by an earlier run: say it once
        self._said.add(key)
