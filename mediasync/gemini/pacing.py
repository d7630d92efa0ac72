"""Request pacing shared by every caller of one key: budgets by class, learned from 429s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediasync.gemini.quota import (
    BARE_DAY_AFTER,
    bare_backoff,
    day_exhausted,
    day_quota_words,
    learned_limit,
    next_reset,
    pacific_day,
    pause_message,
    violations,
)

from .errors import ApiError

log = logging.getLogger("mediasync.gemini")


# -- budgets by class, as the service keeps them ----------------------------------
# The service limits generation per project *and model* (requests a minute, input
# tokens a minute, requests a day; wire/25–28) and file operations apart. One budget
# per class, each learned from the first 429 that names it (mediasync.gemini.quota).

FILES = "files"
# The Batch API's calls (create, get, list, cancel, delete) have limits of their own
# (concurrent jobs, enqueued tokens): a 429 there holds them, not uploads and listings.
# Paced as file calls are.
BATCHES = "batches"
WINDOW = 60.0
WINDOW_MARGIN = 1.0  # our clock stamps a call before the server sees it
MAX_QUOTA_RETRIES = 20  # 429s retried in a row before the call gives up
# A learned limit is kept across restarts this long. Limits change only when the
# owner changes the key's tier (billing), which the service never announces; a
# week bounds how long a stale lower limit slows an upgraded key, and costs one
# fresh 429 per model a week to learn it again.
LEARNED_FOR = 7 * 86400.0


def _count(v: object) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"not a limit: {v!r}")
    return v


def generate_class(model: str) -> str:
    return f"generate:{model.removeprefix('models/')}"


@dataclass
class ClassLimits:
    """What is known of one class: pinned by config, or learned from a 429."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None

    def values(self) -> list[int | None]:
        return [self.rpm, self.tpm, self.rpd]


@dataclass(frozen=True)
class Pause:
    """A class (or all generation: ``generate:*``) stops until ``resume_at``."""

    cls: str
    resume_at: float
    what: str  # "daily quota of 250 requests", "daily token cap of 1000000"
    model: str

    def message(self, now: float) -> str:
        return pause_message(self.model, self.what, self.resume_at, now)

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "resume_at": self.resume_at, "what": self.what,
                "model": self.model}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Pause:
        return cls(str(d["class"]), float(d["resume_at"]), str(d["what"]), str(d["model"]))


class QuotaPaused(ApiError):
    """The day's quota (or spending cap) is used: no call until ``pause.resume_at``.

    A 429 the client raises itself, without asking the service: transient, and
    never a failure of the file it happened to.
    """

    def __init__(self, pause: Pause, now: float) -> None:
        super().__init__(429, "RESOURCE_EXHAUSTED", pause.message(now))
        self.pause = pause

    @property
    def resume_at(self) -> float:
        return self.pause.resume_at


# How a paused model or tier is said: the owner's fix, not the file's fault.
MODEL_FIX = ("set api.model or the prompt's model; `mediasync check` lists the available "
             "ones")
TIER_FIX = ("set api.service_tier (or the folder's or prompt's service_tier) to \"standard\" "
            "or \"flex\"")


@dataclass(frozen=True)
class ConfigPause:
    """Calls that cannot succeed until the config changes: a model the service does not
    serve (``key`` "model:<id>") or a tier the key may not use ("tier:priority").

    No resume time: lifted by a reload, by a look that finds the model again, or by a
    restart whose start-up look finds it (app/ and engine/model_watch.py)."""

    key: str
    message: str  # one line for the log and `status`
    why: str  # what the service said
    since: float

    @property
    def subject(self) -> str:
        return self.key.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "message": self.message, "why": self.why, "since": self.since}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ConfigPause:
        return cls(str(d["key"]), str(d["message"]), str(d.get("why") or ""),
                   float(d.get("since") or 0.0))


def model_pause(model: str, why: str, now: float) -> ConfigPause:
    model = model.removeprefix("models/")
    return ConfigPause(f"model:{model}", f"model {model} is not available: {MODEL_FIX}",
                       why, now)


def tier_pause(tier: str, why: str, now: float) -> ConfigPause:
    return ConfigPause(f"tier:{tier}", f"service_tier = \"{tier}\" is refused for this key "
                       f"(Priority needs paid tier 2 or 3): {TIER_FIX}", why, now)


class ConfigPaused(ApiError):
    """A call not sent: its model or tier is paused (a :class:`ConfigPause`). Raised by the
    client itself, like :class:`QuotaPaused`; never a failure of the file it was for."""

    def __init__(self, pause: ConfigPause) -> None:
        super().__init__(404 if pause.key.startswith("model:") else 400,
                         "NOT_FOUND" if pause.key.startswith("model:") else
                         "INVALID_ARGUMENT", pause.message)
        self.pause = pause

    @property
    def model_missing(self) -> str | None:
        return self.pause.subject if self.pause.key.startswith("model:") else None

    @property
    def tier_refused(self) -> bool:
        return self.pause.key.startswith("tier:")


class _Window:
    """Weights (1 per request, or tokens) stamped in a sliding window."""

    def __init__(self) -> None:
        self.items: deque[tuple[float, float]] = deque()
        # The weights in the window, kept as they come and go: a sum over the items
        # per request was a cost per call that grew with the rate (thousands a minute
        # in a first sync of a large library against a generous quota).
        self._sum = 0.0

    def _expire(self, now: float) -> None:
        while self.items and self.items[0][0] <= now - (WINDOW + WINDOW_MARGIN):
            self._sum -= self.items.popleft()[1]
        if not self.items:
            self._sum = 0.0  # no rounding left over from token weights

    def used(self, now: float) -> float:
        self._expire(now)
        return self._sum

    def wait(self, now: float, limit: float, weight: float) -> float:
        """Seconds until ``weight`` more fits under ``limit`` (0: now)."""
        used = self.used(now)
        if used + weight <= limit or not self.items:
            return 0.0
        for t, w in self.items:
            used -= w
            if used + weight <= limit:
                return max(0.0, t + WINDOW + WINDOW_MARGIN - now)
        return max(0.0, self.items[-1][0] + WINDOW + WINDOW_MARGIN - now)

    def add(self, now: float, weight: float) -> None:
        # Expired here too: with no limit known, nothing else would ever read the window.
        self._expire(now)
        self.items.append((now, weight))
        self._sum += weight


@dataclass
class _State:
    limits: ClassLimits
    pinned: ClassLimits
    requests: _Window = field(default_factory=_Window)
    tokens: _Window = field(default_factory=_Window)
    day: str = ""
    day_count: int = 0
    hold_until: float = 0.0
    bare_strikes: int = 0
    bare_since: float | None = None
    last_tokens: float = 0.0  # recent prompt tokens per call: the estimate for the next
    lock: asyncio.Lock | None = None
    learned: ClassLimits = field(default_factory=ClassLimits)  # from 429s (persisted)
    learned_at: float = 0.0


class Budgets:
    """Pacing per class. Starts fast (only pinned limits apply) and learns.

    ``acquire(cls)`` waits for the class's windows, or raises QuotaPaused while
    the class is paused for the day. ``learn(cls, error)`` takes a 429 and says
    whether to retry. ``done(cls, prompt_tokens)`` records a success.
    ``on_pause`` is told of every new pause (the daemon persists it for `status`);
    ``on_learn`` of every limit a 429 taught (the daemon persists ``learned()``).
    A restart hands them back: ``restore``, ``restore_learned``, ``restore_day``.
    """

    def __init__(
        self,
        *,
        files_rpm: int | None = None,
        generate: ClassLimits | None = None,
        per_model: Mapping[str, ClassLimits] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_pause: Callable[[Pause], None] | None = None,
        on_learn: Callable[[], None] | None = None,
    ) -> None:
        self._default = generate or ClassLimits()
        self._per_model = dict(per_model or {})
        self._files = ClassLimits(rpm=files_rpm)
        self._clock = clock
        self.sleep = sleep  # how pacing waits (tests share it with the retry policy)
        self.on_pause = on_pause
        self.on_learn = on_learn
        self._states: dict[str, _State] = {}
        self.pauses: dict[str, Pause] = {}
        self.refused: dict[str, int] = {}  # 429s per class this run (benchmarks, tests)
        self.held: dict[str, ConfigPause] = {}  # models and tiers paused until a fix
        self.on_hold: Callable[[], None] | None = None  # told of every change of ``held``

    def clock(self) -> float:
        return self._clock()

    def _pinned(self, cls: str) -> ClassLimits:
        if cls in (FILES, BATCHES):
            return self._files
        model = cls.partition(":")[2]
        mine = self._per_model.get(model)
        d = self._default
        if mine is None:
            return d
        return ClassLimits(mine.rpm or d.rpm, mine.tpm or d.tpm, mine.rpd or d.rpd)

    def state(self, cls: str) -> _State:
        s = self._states.get(cls)
        if s is None:
            pinned = self._pinned(cls)
            s = self._states[cls] = _State(ClassLimits(pinned.rpm, pinned.tpm, pinned.rpd),
                                           pinned)
        return s

    def limits(self, cls: str) -> ClassLimits:
        return self.state(cls).limits

    # -- pauses ---------------------------------------------------------------
    def paused(self, cls: str) -> Pause | None:
        now = self._clock()
        for key in (cls, "generate:*" if cls.startswith("generate:") else None):
            p = self.pauses.get(key) if key else None
            if p is not None and p.resume_at > now:
                return p
            if p is not None:
                del self.pauses[key]  # the day turned
        return None

    def active_pauses(self) -> list[Pause]:
        now = self._clock()
        return [p for p in self.pauses.values() if p.resume_at > now]

    def pause(self, cls: str, what: str, model: str) -> Pause:
        now = self._clock()
        p = Pause(cls, next_reset(now), what, model)
        old = self.pauses.get(cls)
        self.pauses[cls] = p
        if old is None or old.resume_at != p.resume_at:
            log.warning("%s", p.message(now))
            if self.on_pause is not None:
                self.on_pause(p)
        return p

    def restore(self, pauses: list[Pause]) -> None:
        """Pauses an earlier run recorded: a restart honours them."""
        now = self._clock()
        for p in pauses:
            if p.resume_at > now:
                self.pauses[p.cls] = p

    # -- models and tiers that only a config change brings back ------------------
    def hold(self, pause: ConfigPause) -> ConfigPause:
        """Stop every call under ``pause.key``; said once (a pause already held is kept)."""
        old = self.held.get(pause.key)
        if old is not None:
            return old
        self.held[pause.key] = pause
        log.error("%s (%s)", pause.message, pause.why)
        if self.on_hold is not None:
            self.on_hold()
        return pause

    def release(self, key: str) -> bool:
        """Lift a held pause (the model is served again, the config changed)."""
        if self.held.pop(key, None) is None:
            return False
        if self.on_hold is not None:
            self.on_hold()
        return True

    def holding(self, key: str) -> ConfigPause | None:
        return self.held.get(key)

    def restore_held(self, pauses: list[ConfigPause]) -> None:
        """Held pauses an earlier run recorded (the start-up look confirms or lifts them)."""
        for p in pauses:
            self.held.setdefault(p.key, p)

    def _check_held(self, cls: str) -> None:
        if cls.startswith("generate:"):
            p = self.held.get("model:" + cls.partition(":")[2])
            if p is not None:
                raise ConfigPaused(p)

    # -- what a restart keeps ---------------------------------------------------
    def learned(self) -> dict[str, Any]:
        """Limits learned from 429s, per class, as JSON: with when, and under which
        pins (a changed config drops them on restore)."""
        return {cls: {"rpm": s.learned.rpm, "tpm": s.learned.tpm, "rpd": s.learned.rpd,
                      "at": s.learned_at, "pinned": s.pinned.values()}
                for cls, s in self._states.items() if any(s.learned.values())}

    def restore_learned(self, data: object) -> None:
        """What ``learned()`` said in an earlier run. Pinned values win; a limit
        older than LEARNED_FOR, or learned under other pins (the owner changed
        the tier or a pin), is dropped; anything unreadable is ignored (the next
        429 teaches again)."""
        if not isinstance(data, dict):
            return
        now = self._clock()
        for cls, d in data.items():
            try:
                at = float(d["at"])
                got = ClassLimits(*(_count(d.get(k)) for k in ("rpm", "tpm", "rpd")))
                pins = list(d["pinned"])
            except (TypeError, ValueError, KeyError, AttributeError):
                continue
            s = self.state(str(cls))
            if not 0 <= now - at <= LEARNED_FOR or pins != s.pinned.values():
                continue
            s.learned, s.learned_at = got, at
            p = s.pinned
            s.limits = ClassLimits(p.rpm or got.rpm, p.tpm or got.tpm, p.rpd or got.rpd)

    def restore_day(self, cls: str, day: str, requests: int) -> None:
        """Requests already made on Pacific ``day`` (the usage ledger): a day quota
        counts them, so a restart does not overrun it."""
        s = self.state(cls)
        if day == pacific_day(self._clock()) and requests > 0:
            s.day, s.day_count = day, max(s.day_count if s.day == day else 0, requests)

    def _learned(self, s: _State, now: float) -> None:
        s.learned_at = now
        if self.on_learn is not None:
            self.on_learn()

    # -- the call -------------------------------------------------------------
    async def acquire(self, cls: str) -> None:
        self._check_held(cls)
        s = self.state(cls)
        if s.lock is None:
            s.lock = asyncio.Lock()
        async with s.lock:  # waiters of one class in arrival order; other classes go on
            while True:
                self._check_held(cls)  # held while this one waited its turn
                now = self._clock()
                p = self.paused(cls)
                if p is not None:
                    raise QuotaPaused(p, now)
                wait = max(0.0, s.hold_until - now)
                lim = s.limits
                if lim.rpm:
                    wait = max(wait, s.requests.wait(now, lim.rpm, 1))
                if lim.tpm and s.last_tokens:
                    wait = max(wait, s.tokens.wait(now, lim.tpm, min(s.last_tokens, lim.tpm)))
                if wait <= 0:
                    self._roll_day(s, now)
                    if lim.rpd and s.day_count >= lim.rpd:
                        model = cls.partition(":")[2] or cls
                        p = self.pause(cls, f"daily quota of {lim.rpd} requests", model)
                        raise QuotaPaused(p, now)
                    s.requests.add(now, 1)
                    s.day_count += 1
                    return
                if wait >= 1.0:
                    log.debug("%s: paced; next request in %.0fs", cls, wait)
                await self.sleep(wait)

    @staticmethod
    def _roll_day(s: _State, now: float) -> None:
        day = pacific_day(now)
        if s.day != day:
            s.day, s.day_count = day, 0

    def done(self, cls: str, prompt_tokens: int = 0) -> None:
        s = self.state(cls)
        s.bare_strikes, s.bare_since = 0, None
        if prompt_tokens > 0:
            s.tokens.add(self._clock(), prompt_tokens)
            # Weighted toward the latest: a folder of similar files costs alike.
            s.last_tokens = prompt_tokens if not s.last_tokens else (
                0.5 * s.last_tokens + 0.5 * prompt_tokens)

    def learn(self, cls: str, error: ApiError) -> float | None:
        """A 429 for ``cls``: learn the limit, or hold the class.

        Returns how long to wait before retrying (acquire() does the pacing), or
        raises QuotaPaused when the day's quota is gone, whatever retryDelay says.
        """
        now = self._clock()
        s = self.state(cls)
        self.refused[cls] = self.refused.get(cls, 0) + 1
        found = [v for v in violations(error.details, error.message) if v.kind != "storage"]
        model = cls.partition(":")[2] or cls
        day = day_exhausted(found)
        if day is not None:
            if day.limit:
                # Only a stated value: a count of ours would undercount a shared key
                # and stop every later day early.
                s.limits.rpd = s.learned.rpd = day.limit
                self._learned(s, now)
            raise QuotaPaused(self.pause(cls, day_quota_words(day), model), now)
        if not found and error.retry_delay is not None:
            # No quota named but a delay given: take it, for this class alone.
            s.hold_until = max(s.hold_until, now + error.retry_delay)
            return error.retry_delay
        if not found:
            # A bare 429 (wire/29): back this class off alone; if it never lets up,
            # it is the day's quota without saying so.
            s.bare_strikes += 1
            s.bare_since = s.bare_since if s.bare_since is not None else now
            if now - s.bare_since >= BARE_DAY_AFTER:
                raise QuotaPaused(self.pause(cls, "daily quota (unnamed)", model), now)
            hold = bare_backoff(s.bare_strikes)
            s.hold_until = max(s.hold_until, now + hold)
            log.info("%s: refused without details; holding %s for %.0fs", model, cls, hold)
            return hold
        taught = False
        for v in found:
            if v.kind == "rpm":
                got = learned_limit(v, round(s.requests.used(now)))
                if s.limits.rpm != got:
                    log.info("%s: learned a limit of %d requests a minute", model, got)
                s.limits.rpm = s.learned.rpm = got
                taught = True
            elif v.kind == "tpm":
                got = learned_limit(v, round(s.tokens.used(now)))
                if s.limits.tpm != got:
                    log.info("%s: learned a limit of %d input tokens a minute", model, got)
                s.limits.tpm = s.learned.tpm = got
                taught = True
            else:
                s.hold_until = max(s.hold_until, now + (error.retry_delay or 1.0))
        if taught:
            self._learned(s, now)  # a confirmed limit is fresh again
        return 0.0
