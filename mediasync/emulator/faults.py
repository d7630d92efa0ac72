"""Injected faults: what goes wrong, on which endpoint, how many times."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = ("status", "slow", "cut", "short", "lost_finalize", "blocked", "garbage", "truncated",
         "answer", "lost_answer")
# 429 forms (see errors.rate_quota_exceeded): violations to name, or "bare" (Help only,
# wire/29) or "storage" (the 20 GB store, wire/02). Join several with "+".
QUOTAS = ("per_minute", "per_day", "input_tokens", "bare", "storage")
RATE_KINDS = {"per_minute": "rpm", "per_day": "rpd", "input_tokens": "tpm"}  # as quota.py
BLOCK_STAGES = ("prompt", "candidate")
ENDPOINTS = ("start", "chunk", "finalize", "query", "get", "list", "delete", "generate",
             "models.list", "models.get", "batch.create", "batch.get", "batch.list",
             "batch.cancel", "batch.delete", "download", "any")
_DEFAULT_MATCH = {"cut": "chunk", "short": "chunk", "lost_finalize": "finalize",
                  "blocked": "generate", "truncated": "generate", "answer": "generate",
                  "lost_answer": "batch.create"}
_DEFAULT_REASON = {"blocked": "SAFETY", "truncated": "MAX_TOKENS", "answer": "STOP"}
GENERATE_KINDS = ("blocked", "truncated", "answer")  # faults that shape an answer


@dataclass
class Fault:
    """One fault rule.

    kind: "status" (answer ``status`` with an error, a RetryInfo detail when
    ``retry_delay`` is set), "slow" (wait ``delay`` seconds, then answer
    normally), "cut" (chunk: commit ``after_bytes`` of the body, then drop the
    connection), "short" (a chunk that is not the last: read it whole, keep only
    ``after_bytes`` of it, a multiple of the granularity, and answer 200 "active"
    with that count in X-Goog-Upload-Size-Received, as a resumable server may;
    ``counted=False`` leaves the count out, so only a later query tells),
    "lost_finalize" (commit the finalize, then drop the
    connection), "blocked" (generateContent answers 200 with a block: ``stage``
    "prompt" = promptFeedback.blockReason ``reason`` (SAFETY with ratings as wire/23,
    PROHIBITED_CONTENT bare as 22), "candidate" = finishReason ``reason`` and no
    content, as 24), "garbage" (answer 200 with an HTML page, not JSON, as a
    proxy or captive portal in the way may), "truncated" (generateContent answers
    with the first ``keep`` share of its text and finishReason ``reason``, MAX_TOKENS
    by default: an answer cut off), "answer" (generateContent answers ``text`` as
    the candidate's text, finishReason ``reason``, STOP by default: a scripted answer),
    "lost_answer" (batch.create: make the job, then drop the connection: the client
    never hears of it).
    quota: for a 429, answer in the live quota wording (``QUOTAS``, "+"-joined),
    in the emulator's quota tier and shape.
    match: an endpoint name or "any"; "chunk" also hits finalizing chunks.
    Defaults: "chunk" for cut, "finalize" for lost_finalize, "generate" for
    blocked, else "any". times: how many requests it hits; None = all.
    """

    kind: str = "status"
    status: int = 503
    retry_delay: str | None = None
    match: str | None = None
    times: int | None = 1
    after_bytes: int = 0
    delay: float = 0.0
    message: str | None = None
    quota: str | None = None
    reason: str | None = None  # blocked: SAFETY; truncated: MAX_TOKENS; answer: STOP
    stage: str = "prompt"
    counted: bool = True  # short: False leaves X-Goog-Upload-Size-Received out
    keep: float = 0.5  # truncated: the share of the answer's text kept
    text: str | None = None  # answer: the candidate's text

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(KINDS)})")
        for q in self.quotas:
            if q not in QUOTAS:
                raise ValueError(f"unknown quota {q!r} (one of {', '.join(QUOTAS)})")
        if self.retry_delay is not None:
            parse_duration(self.retry_delay)  # refused here, not as a 500 when it fires
        if self.stage not in BLOCK_STAGES:
            raise ValueError(f"unknown block stage {self.stage!r} (prompt or candidate)")
        if self.match is None:
            self.match = _DEFAULT_MATCH.get(self.kind, "any")
        if self.reason is None:
            self.reason = _DEFAULT_REASON.get(self.kind)
        if not 0.0 <= self.keep <= 1.0:
            raise ValueError(f"keep must be a share from 0 to 1, not {self.keep!r}")
        if self.match not in ENDPOINTS:
            raise ValueError(f"unknown fault match {self.match!r} (one of {', '.join(ENDPOINTS)})")

    @property
    def quotas(self) -> list[str]:
        return [q.strip() for q in (self.quota or "").split("+") if q.strip()]

    def hits(self, endpoint: str) -> bool:
        return (
            self.match == "any"
            or self.match == endpoint
            or (self.match == "chunk" and endpoint == "finalize")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**data)


class FaultSet:
    """Thread-safe list of rules; each request takes at most one matching rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, endpoint: str, kinds: tuple[str, ...] = KINDS) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and f.hits(endpoint):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    self.fired += 1
                    return f
        return None


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from "500ms", "2s", "10m", "48h", "1d" or a plain number."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (e.g. 500ms, 2s, 10m, 48h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_fault_spec(spec: str) -> Fault:
    """``503:match=chunk:times=2``, ``429:retry_delay=1s``, ``cut:after_bytes=1000``,
    ``lost_finalize``, ``slow:delay=2`` (``times=all`` hits every request),
    ``429:quota=per_day+per_minute``, ``429:quota=bare``,
    ``blocked:reason=PROHIBITED_CONTENT``, ``blocked:stage=candidate``,
    ``truncated``, ``truncated:reason=RECITATION:keep=0.3``."""
    head, *opts = spec.split(":")
    data: dict[str, Any] = {}
    if head.isdigit():
        data["kind"], data["status"] = "status", int(head)
    else:
        data["kind"] = head
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            raise ValueError(f"fault option {opt!r} is not key=value")
        key = key.strip().replace("-", "_")
        if key in ("status", "after_bytes"):
            data[key] = int(value)
        elif key == "times":
            data[key] = None if value in ("all", "inf", "0") else int(value)
        elif key == "delay":
            data[key] = parse_duration(value)
        elif key == "retry_delay":
            data[key] = f"{parse_duration(value):g}s"
        elif key in ("match", "message", "quota", "reason", "stage", "text"):
            data[key] = value
        elif key == "keep":
            data[key] = float(value)
        else:
            raise ValueError(f"unknown fault option {key!r}")
    return Fault.from_dict(data)
