"""What deserves a notification, read from a snapshot (issue 19). Pure.

Each event of ``config.observe.EVENTS`` (but the daily summary, which is a time
of day, not a condition) has a detector here: snapshot → {subject: line}, the
conditions true now, one per file, folder or model. The notifier sends a subject
once when it appears and again only after it cleared. Another cause (the store
budget full, a model missing) is one entry in EVENTS and one detector below.

Only verdicts are conditions: a file in ``waiting`` (5xx, 429, time-outs, a
folder away for a moment) is no event, so a storm of transient errors sends
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mediasync.report.snapshot import Snapshot
from mediasync.rules import failures

Detector = Callable[[Snapshot], dict[str, str]]


def _failed(s: Snapshot) -> dict[str, str]:
    return {r.path: f"{r.path}: {r.message or 'failed'}" for r in s.reports
            if r.state == "failed"}


def _halted(s: Snapshot) -> dict[str, str]:
    return {"daemon": s.halted} if s.halted else {}


def _is_cap(pause: dict[str, object]) -> bool:
    # The owner's cap pauses every model at once (apiclient._check_cap: "all models").
    return "cap" in str(pause.get("quota") or "")


def _quota_used(s: Snapshot) -> dict[str, str]:
    return {str(p.get("model")): str(p.get("message")) for p in s.quota.get("paused", [])
            if not _is_cap(p)}


def _cap_reached(s: Snapshot) -> dict[str, str]:
    cap = s.quota.get("cap") or {}
    reached = cap.get("reached")
    if not reached:
        return {}
    today = cap.get("today") or {}
    cost = today.get("cost_usd")
    spent = f"{today.get('tokens', 0):,} tokens" + (f", ≈ ${cost:.2f}" if cost is not None
                                                    else "")
    return {"cap": f"today's spending reached the {reached} ({spent}); generation waits "
                   "until midnight Pacific"}


def _unavailable(s: Snapshot) -> dict[str, str]:
    return {folder: f"the folder {folder} {why}" for folder, why in s.unavailable.items()}


def _store_full(s: Snapshot) -> dict[str, str]:
    n = sum(1 for r in s.not_done if failures.STORAGE_FULL in (r.message or ""))
    return {"store": f"the project's file store is full: {n} file(s) wait for room"} if n else {}


def _model_missing(s: Snapshot) -> dict[str, str]:
    return dict(s.held)  # "model:X" / "tier:Y" → its HELD line, with the fix


DETECTORS: dict[str, Detector] = {
    "file_failed": _failed,
    "halted": _halted,
    "quota_used": _quota_used,
    "cap_reached": _cap_reached,
    "folder_unavailable": _unavailable,
    "store_full": _store_full,
    "model_missing": _model_missing,
}

# How an event's message begins: (one subject, several).
TITLES: dict[str, tuple[str, str]] = {
    "file_failed": ("a file failed for good", "{n} files failed for good"),
    "halted": ("mediasync halted", "mediasync halted"),
    "quota_used": ("a daily quota is used", "{n} daily quotas are used"),
    "cap_reached": ("the daily spending cap is reached", "the daily spending cap is reached"),
    "folder_unavailable": ("a folder is unavailable", "{n} folders are unavailable"),
    "store_full": ("the file store is full", "the file store is full"),
    "model_missing": ("a configured model is not served", "{n} configured models or tiers are "
                      "held"),
}


def conditions(s: Snapshot, events: frozenset[str] | set[str]) -> dict[str, dict[str, str]]:
    """event → {subject: line} for the events asked for that have a detector."""
    return {e: DETECTORS[e](s) for e in events if e in DETECTORS}


def title(event: str, n: int) -> str:
    one, many = TITLES.get(event, (event, f"{event}: {{n}}"))
    return one if n == 1 else many.format(n=n)


def summary(s: Snapshot, now: float) -> tuple[str, str]:
    """(title, body) of the daily summary."""
    counts = s.counts()
    line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no media files"
    body = [f"{len(s.folders)} folder(s): {line}."]
    cap = s.quota.get("cap") or {}
    today = cap.get("today") or {}
    if today:
        cost = today.get("cost_usd")
        body.append(f"Today: {today.get('tokens', 0):,} tokens"
                    + (f", ≈ ${cost:.2f}" if cost is not None else ""))
    for p in s.quota.get("paused", []):
        body.append(f"Paused: {p.get('message')}")
    if s.halted:
        body.append(f"HALTED: {s.halted}")
    stamp = datetime.fromtimestamp(now).strftime("%Y-%m-%d")
    return f"mediasync summary {stamp}", "\n".join(body)
